"""Models by name, for the command line: `get_model("nin-digits", num_classes=10, in_channels=1)`."""
import inspect

from .nin import nin_28, nin_32, nin_cifar10, nin_d2l, nin_digits, nin_small
from .efficientnet import (VARIANTS, efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3, efficientnet_b4,
                           efficientnet_b5, efficientnet_b6, efficientnet_b7, efficientnet_small)
from .googlenet import googlenet, googlenet_small
from .mobilenetv1 import mobilenet_v1, mobilenet_v1_small
from .mobilenetv2 import mobilenet_v2, mobilenet_v2_small

# name → (builder, height = width of the images it is designed for)
MODELS = {
    "nin": (nin_d2l, 224),
    "nin-cifar10": (nin_cifar10, 32),
    "nin-small": (nin_small, 28),
    "nin-digits": (nin_digits, 8),
    "nin-28": (nin_28, 28),
    "nin-32": (nin_32, 32),
    # the networks after NiN: torchvision's names (and layouts) for the full-size ones
    "googlenet": (googlenet, 224),
    "googlenet-small": (googlenet_small, 28),
    "mobilenet_v1": (mobilenet_v1, 224),
    "mobilenet_v1-small": (mobilenet_v1_small, 28),
    "mobilenet_v2": (mobilenet_v2, 224),
    "mobilenet_v2-small": (mobilenet_v2_small, 28),
    **{builder.__name__: (builder, VARIANTS[builder.__name__[-2:]][2])
       for builder in (efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3, efficientnet_b4,
                       efficientnet_b5, efficientnet_b6, efficientnet_b7)},
    "efficientnet-small": (efficientnet_small, 28),
}


def _spec(name):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def get_model(name, num_classes=10, in_channels=None, **options):
    """A new model; in_channels=None takes the model's own default (1 for grey, 3 for colour models).
    `options` go to the builder (final_relu, init)."""
    builder, _ = _spec(name)
    if in_channels is not None:
        options["in_channels"] = in_channels
    return builder(num_classes=num_classes, **options)


def input_shape(name, in_channels=None):
    """(C, H, W) of one image as the model is designed for."""
    builder, size = _spec(name)
    channels = in_channels or inspect.signature(builder).parameters["in_channels"].default
    return (channels, size, size)
