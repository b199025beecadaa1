"""MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks"), with
torchvision's parameter names, order and shapes (`mobilenet_v2`), and a small variant for 8×8–32×32 images.

The inverted residual with a linear bottleneck: a narrow tensor is expanded t-fold by a 1×1 conv, filtered by
a depthwise 3×3 conv, and projected back by a 1×1 conv with no activation (a ReLU on the narrow tensor would
destroy information); the residual joins the narrow ends when stride is 1 and the widths agree:

    x (C) → 1×1 conv to t·C, BN, ReLU6 → depthwise 3×3 (stride s), BN, ReLU6 → 1×1 conv to C', BN → (+ x)

Per pixel this costs t·C·(C + 9 + C') MACs against 9·C·C' for one standard 3×3 conv of the same widths.

`mobilenet_v2` (224×224, 1000 classes): 3,504,872 parameters, 300.8 M MACs per image (torchvision's count of
3.5 M and the paper's 300 M). Layer table, t = expansion, c = output channels, n = repeats, s = first stride:

    input     operator                 t    c     n   s
    224²×3    conv 3×3, BN, ReLU6      -    32    1   2        features.0
    112²×32   inverted residual        1    16    1   1        features.1
    112²×16   inverted residual        6    24    2   2        features.2–3
    56²×24    inverted residual        6    32    3   2        features.4–6
    28²×32    inverted residual        6    64    4   2        features.7–10
    14²×64    inverted residual        6    96    3   1        features.11–13
    14²×96    inverted residual        6    160   3   2        features.14–16
    7²×160    inverted residual        6    320   1   1        features.17
    7²×320    conv 1×1, BN, ReLU6      -    1280  1   1        features.18
    7²×1280   global average pool, dropout 0.2, linear to classes            classifier.1

Every width is c·width_mult rounded by `make_divisible` to a multiple of 8 (the last conv never narrows
below 1280).
"""
from .. import nn
from .blocks import Conv2dNormActivation, initialise_like_torchvision, make_divisible, normal_linear

# t, c, n, s of the paper's Table 2
IMAGENET_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                    (6, 320, 1, 1))
# for 8×8–32×32 images: a stride-1 stem, three stride-2 stages (8 → 1, 28 → 4, 32 → 4) and narrower ends
SMALL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 1, 1))


class InvertedResidual(nn.Module):
    """1×1 expansion to round(inp·expand_ratio) (left out when the ratio is 1), depthwise 3×3 with `stride`,
    linear 1×1 projection to `oup`; `conv` holds them in torchvision's order, and x + conv(x) when
    stride == 1 and inp == oup."""

    def __init__(self, inp, oup, stride, expand_ratio, norm_layer=nn.BatchNorm2d):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        hidden = int(round(inp * expand_ratio))
        self.stride, self.use_res_connect = stride, stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden, 1, norm_layer=norm_layer, activation_layer=nn.ReLU6))
        layers += [Conv2dNormActivation(hidden, hidden, 3, stride, groups=hidden, norm_layer=norm_layer,
                                        activation_layer=nn.ReLU6),
                   nn.Conv2d(hidden, oup, 1, bias=False), norm_layer(oup)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """`features` (stem, inverted residuals, last 1×1 conv), global average pooling, `classifier` (dropout,
    linear). `setting` is the (t, c, n, s) table; `stem_stride` 2 for ImageNet, 1 for small images."""

    def __init__(self, num_classes=1000, width_mult=1.0, setting=IMAGENET_SETTING, round_nearest=8,
                 in_channels=3, first_channel=32, last_channel=1280, stem_stride=2, dropout=0.2):
        super().__init__()
        channels = make_divisible(first_channel * width_mult, round_nearest)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features = [Conv2dNormActivation(in_channels, channels, 3, stem_stride, activation_layer=nn.ReLU6)]
        for t, c, n, s in setting:
            out = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(channels, out, s if i == 0 else 1, expand_ratio=t))
                channels = out
        features.append(Conv2dNormActivation(channels, self.last_channel, 1, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # torchvision calls F.adaptive_avg_pool2d here: no parameters
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
        initialise_like_torchvision(self, normal_linear)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def mobilenet_v2(num_classes=1000, width_mult=1.0, in_channels=3, **options):
    """torchvision's `mobilenet_v2`: 3,504,872 parameters for 1000 classes (2,236,682 for 10)."""
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult, in_channels=in_channels, **options)


def mobilenet_v2_small(num_classes=10, width_mult=1.0, in_channels=1, **options):
    """A MobileNetV2 for 8×8 to 32×32 images (digits, MNIST, CIFAR-10): stride-1 stem at 16 channels, the
    stages t, c, n, s = (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 1, 1), last conv
    to 256, so 8×8 → 1×1 and 28×28 → 4×4 before global average pooling; 209,066 parameters for 10 classes
    and one channel, 0.63 M MACs per 8×8 image (8.3 M at 28×28, 10.4 M for a 32×32 colour image).

    `ninx train --model mobilenet_v2-small` (the digits, Adam 3e-3, batch 32, 20 epochs, seed 0): 98.6% test
    accuracy (98.3% from epoch 10), 7.5 s an epoch on 2 cores to itself (10 min in all on a machine shared
    four ways)."""
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult, setting=SMALL_SETTING,
                       in_channels=in_channels, first_channel=16, last_channel=256, stem_stride=1, **options)
