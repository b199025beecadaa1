"""Building blocks shared by the networks after NiN, named as torchvision's so that state dicts match:
`make_divisible` (channel rounding), `Conv2dNormActivation` (conv → batch norm → activation) and
`SqueezeExcitation` (channel attention), and `initialise_like_torchvision`.
"""
import math

from .. import nn


def make_divisible(value, divisor=8, min_value=None):
    """`value` rounded to the nearest multiple of `divisor` (at least `min_value`, default `divisor`), and never
    below 90% of `value` — torchvision's `_make_divisible`, the one rule for every width multiplier here."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class Conv2dNormActivation(nn.Sequential):
    """k×k conv ("0"), then norm_layer ("1") and activation_layer ("2"), either left out when None; padding
    (k − 1)/2·dilation keeps the size at stride 1, and the conv has a bias only without a norm layer."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                 norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU, dilation=1, bias=None):
        padding = (kernel_size - 1) // 2 * dilation if padding is None else padding
        bias = norm_layer is None if bias is None else bias
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation,
                            groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer())
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): each channel scaled by a gate computed from all channels' means,

        s = scale_activation(fc2(activation(fc1(mean_{h,w} x)))),   y = s · x

    fc1 and fc2 are 1×1 convolutions (C → squeeze → C) on the (N, C, 1, 1) means: 2·C·squeeze + C + squeeze
    parameters and as many MACs per image, whatever the image size."""

    def __init__(self, input_channels, squeeze_channels, activation=nn.ReLU, scale_activation=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, input):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(input)))))
        return scale * input


def initialise_like_torchvision(model, linear_init):
    """torchvision's initialisation of its mobile networks: He-normal convolutions over fan_out with zero biases,
    batch norms at weight 1 and bias 0, and `linear_init(layer)` for the fully connected layers. Returns the model."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            linear_init(m)
    return model


def normal_linear(layer, std=0.01):
    """N(0, std²) weights and zero bias (MobileNet's classifier)."""
    nn.init.normal_(layer.weight, 0.0, std)
    nn.init.zeros_(layer.bias)


def uniform_linear(layer):
    """U(±1/√out_features) weights and zero bias (EfficientNet's classifier)."""
    bound = 1 / math.sqrt(layer.out_features)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)

