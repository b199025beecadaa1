"""EfficientNet-B0…B7 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks") from one builder, with torchvision's parameter names, order and shapes (`efficientnet_b0`…`b7`),
and a small variant for 8×8–32×32 images.

Compound scaling. One coefficient φ scales depth by α^φ, width by β^φ and resolution by γ^φ, with α = 1.2,
β = 1.1, γ = 1.15 found by a grid search on B0 under α·β²·γ² ≈ 2, so each step of φ about doubles the FLOPs
(FLOPs grow with depth, with width², with resolution²). The released B1…B7 round those multipliers to the
(width, depth, resolution, dropout) of `VARIANTS`; every stage's repeats become ceil(n·depth) and every width
make_divisible(c·width, 8).

MBConv (MobileNetV2's inverted residual with squeeze-and-excitation and SiLU):

    x (C) → 1×1 conv to t·C, BN, SiLU → depthwise k×k (stride s), BN, SiLU → SE (squeeze to max(1, C/4))
          → 1×1 conv to C', BN → stochastic depth → (+ x when s = 1 and C = C')

Block i of the L blocks drops its residual branch with probability 0.2·i/L while training.

Stage table of B0 (224×224): t, kernel, stride, in, out, repeats:

    features.0   conv 3×3/2, BN, SiLU                 3 → 32        112²
    features.1   MBConv1  3×3  s1   32 →  16  × 1                   112²
    features.2   MBConv6  3×3  s2   16 →  24  × 2                   56²
    features.3   MBConv6  5×5  s2   24 →  40  × 2                   28²
    features.4   MBConv6  3×3  s2   40 →  80  × 3                   14²
    features.5   MBConv6  5×5  s1   80 → 112  × 3                   14²
    features.6   MBConv6  5×5  s2  112 → 192  × 4                   7²
    features.7   MBConv6  3×3  s1  192 → 320  × 1                   7²
    features.8   conv 1×1, BN, SiLU             320 → 1280          7²
    avgpool, classifier (dropout, linear 1280 → classes)

Parameters (1000 classes) and MACs per image at each model's resolution, from `ninx summary`:
B0 5,288,548 (224², 0.39 G), B1 7,794,184 (240², 0.69 G), B2 9,109,994 (260², 0.99 G), B3 12,233,232
(300², 1.83 G), B4 19,341,616 (380², 4.39 G), B5 30,389,784 (456², 10.27 G), B6 43,040,704 (528², 19.07 G),
B7 66,347,960 (600², 37.75 G).
"""
import copy
import math
from dataclasses import dataclass
from functools import partial

from .. import nn
from .blocks import Conv2dNormActivation, SqueezeExcitation, initialise_like_torchvision, make_divisible, uniform_linear

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # depth, width and resolution bases of compound scaling

# name: (width multiplier, depth multiplier, resolution, dropout), as released (and in torchvision)
VARIANTS = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
            "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
            "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5)}

# B0's stages: expand ratio, kernel, stride, in, out, repeats (the paper's Table 1)
B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))
# efficientnet-small, for 8×8–32×32 images: B0's first five stages, narrower, at strides 1, 2, 2, 2, 1
SMALL_STAGES = ((1, 3, 1, 16, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 2),
                (6, 5, 1, 80, 112, 1))


def compound_scaling(phi):
    """(depth, width, resolution) multipliers α^φ, β^φ, γ^φ, and the FLOPs factor (α·β²·γ²)^φ ≈ 2^φ."""
    return ALPHA ** phi, BETA ** phi, GAMMA ** phi, (ALPHA * BETA ** 2 * GAMMA ** 2) ** phi


@dataclass
class MBConvConfig:
    """One stage: expand ratio, kernel, stride, input and output channels and repeats, after scaling."""
    expand_ratio: float
    kernel: int
    stride: int
    input_channels: int
    out_channels: int
    num_layers: int

    @classmethod
    def scaled(cls, expand_ratio, kernel, stride, input_channels, out_channels, num_layers, width, depth):
        return cls(expand_ratio, kernel, stride, make_divisible(input_channels * width),
                   make_divisible(out_channels * width), int(math.ceil(num_layers * depth)))


class MBConv(nn.Module):
    """Expansion (left out at ratio 1), depthwise k×k, squeeze-and-excitation, linear projection — `block` — and
    the residual through stochastic depth when the stride is 1 and the widths agree."""

    def __init__(self, cnf, stochastic_depth_prob, norm_layer):
        super().__init__()
        if cnf.stride not in (1, 2):
            raise ValueError(f"MBConv: stride must be 1 or 2, got {cnf.stride}")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        expanded = make_divisible(cnf.input_channels * cnf.expand_ratio)
        layers = []
        if expanded != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, expanded, 1, norm_layer=norm_layer,
                                               activation_layer=nn.SiLU))
        layers += [Conv2dNormActivation(expanded, expanded, cnf.kernel, cnf.stride, groups=expanded,
                                        norm_layer=norm_layer, activation_layer=nn.SiLU),
                   SqueezeExcitation(expanded, max(1, cnf.input_channels // 4), activation=nn.SiLU),
                   Conv2dNormActivation(expanded, cnf.out_channels, 1, norm_layer=norm_layer, activation_layer=None)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, input):
        result = self.block(input)
        return self.stochastic_depth(result) + input if self.use_res_connect else result


class EfficientNet(nn.Module):
    """Stem conv, one Sequential of MBConvs per stage, last 1×1 conv to 4× the last width — `features` —, then
    `avgpool` and `classifier` (dropout, linear)."""

    def __init__(self, stages, dropout, stochastic_depth_prob=0.2, num_classes=1000, norm_layer=nn.BatchNorm2d,
                 in_channels=3, stem_stride=2):
        super().__init__()
        layers = [Conv2dNormActivation(in_channels, stages[0].input_channels, 3, stem_stride, norm_layer=norm_layer,
                                       activation_layer=nn.SiLU)]
        total, index = sum(s.num_layers for s in stages), 0
        for cnf in stages:
            stage = []
            for i in range(cnf.num_layers):
                block = copy.copy(cnf)
                if i:
                    block.input_channels, block.stride = block.out_channels, 1
                stage.append(MBConv(block, stochastic_depth_prob * index / total, norm_layer))
                index += 1
            layers.append(nn.Sequential(*stage))
        last = 4 * stages[-1].out_channels
        layers.append(Conv2dNormActivation(stages[-1].out_channels, last, 1, norm_layer=norm_layer,
                                           activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout, inplace=True), nn.Linear(last, num_classes))
        initialise_like_torchvision(self, uniform_linear)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def efficientnet(variant, num_classes=1000, in_channels=3, stochastic_depth_prob=0.2, **options):
    """EfficientNet-`variant` ("b0"…"b7"); B5–B7 use TensorFlow's batch norm (eps 1e-3, momentum 0.01), as
    torchvision's ported weights do, B0–B4 PyTorch's default (1e-5, 0.1)."""
    width, depth, _, dropout = VARIANTS[variant]
    stages = [MBConvConfig.scaled(*s, width=width, depth=depth) for s in B0_STAGES]
    norm_layer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01) if variant in ("b5", "b6", "b7") \
        else nn.BatchNorm2d
    return EfficientNet(stages, options.pop("dropout", dropout), stochastic_depth_prob, num_classes, norm_layer,
                        in_channels, **options)


def _variant(name):
    def build(num_classes=1000, in_channels=3, **options):
        return efficientnet(name, num_classes, in_channels, **options)
    build.__name__ = build.__qualname__ = f"efficientnet_{name}"
    build.__doc__ = f"torchvision's `efficientnet_{name}` (see the module docstring for its size)."
    return build


efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3, efficientnet_b4, efficientnet_b5, \
    efficientnet_b6, efficientnet_b7 = (_variant(name) for name in VARIANTS)


def efficientnet_small(num_classes=10, in_channels=1, **options):
    """An EfficientNet for 8×8–32×32 images: stride-1 stem at 16 channels and B0's first five stages (narrowed,
    repeats 1, 2, 2, 2, 1, strides 1, 2, 2, 2, 1), last conv to 448, so 28×28 → 4×4 (8×8 → 1×1): 385,738
    parameters for 10 classes and one channel, 10.9 M MACs per 28×28 image (0.86 M at 8×8)."""
    stages = [MBConvConfig(*s) for s in SMALL_STAGES]
    return EfficientNet(stages, options.pop("dropout", 0.2), num_classes=num_classes, in_channels=in_channels,
                        stem_stride=1, **options)
