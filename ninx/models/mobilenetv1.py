"""MobileNetV1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications"), the depthwise-separable network, with a width multiplier α; and a small variant.

A depthwise-separable convolution factors a k×k conv from N to M channels into a depthwise k×k conv (one
filter per input channel) and a 1×1 pointwise conv (mixing channels), each with batch norm and ReLU. On an
F×F map it costs F²·N·(k² + M) MACs instead of F²·N·M·k², a ratio of 1/M + 1/k² (about 1/8 to 1/9 for
k = 3; `ninx explain depthwise`).

torchvision has no MobileNetV1; the names here follow its MobileNetV2 (`features`, `classifier`, conv/BN/ReLU
triples numbered 0, 1, 2). `mobilenet_v1` (224×224, 1000 classes, α = 1): 4,231,976 parameters, 568.7 M MACs
per image (the paper's 4.2 M and 569 M). Layer table (the paper's Table 1), dw = depthwise 3×3, pw = 1×1:

    features.0        conv 3×3/2, 32                      112²
    features.1        dw/1, pw 64                         112²
    features.2        dw/2, pw 128                        56²      features.3   dw/1, pw 128   56²
    features.4        dw/2, pw 256                        28²      features.5   dw/1, pw 256   28²
    features.6        dw/2, pw 512                        14²      features.7–11  5 × (dw/1, pw 512)  14²
    features.12       dw/2, pw 1024                       7²       features.13  dw/1, pw 1024  7²
    global average pool, classifier: dropout, linear 1024 → classes

Every width is c·α rounded by `make_divisible` to a multiple of 8.
"""
from .. import nn
from .blocks import Conv2dNormActivation, initialise_like_torchvision, make_divisible, normal_linear

# (output channels, stride) of each depthwise-separable block, after the stem conv to 32
IMAGENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                   (512, 1), (512, 1), (1024, 2), (1024, 1))
SMALL_BLOCKS = ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1))  # 28 → 4, 8 → 1


class DepthwiseSeparableConv2d(nn.Sequential):
    """"0": depthwise 3×3 (stride), BN, ReLU; "1": pointwise 1×1 to `out_channels`, BN, ReLU."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(Conv2dNormActivation(in_channels, in_channels, 3, stride, groups=in_channels),
                         Conv2dNormActivation(in_channels, out_channels, 1))
        self.out_channels = out_channels


class MobileNetV1(nn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0, blocks=IMAGENET_BLOCKS, in_channels=3, first_channel=32,
                 stem_stride=2, dropout=0.2):
        super().__init__()
        channels = make_divisible(first_channel * width_mult)
        features = [Conv2dNormActivation(in_channels, channels, 3, stem_stride)]
        for out, stride in blocks:
            features.append(DepthwiseSeparableConv2d(channels, make_divisible(out * width_mult), stride))
            channels = features[-1].out_channels
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        initialise_like_torchvision(self, normal_linear)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def mobilenet_v1(num_classes=1000, width_mult=1.0, in_channels=3, **options):
    """MobileNetV1 with width multiplier α = `width_mult` (the paper's 1, 0.75, 0.5, 0.25)."""
    return MobileNetV1(num_classes=num_classes, width_mult=width_mult, in_channels=in_channels, **options)


def mobilenet_v1_small(num_classes=10, width_mult=1.0, in_channels=1, **options):
    """A MobileNetV1 for 8×8–32×32 images: stride-1 stem at 32 channels, seven depthwise-separable blocks to 256
    (strides 1, 2, 1, 2, 1, 2, 1), so 28×28 → 4×4 (8×8 → 1×1) before global average pooling: 142,570
    parameters for 10 classes and one channel, 5.5 M MACs per 28×28 image (0.42 M at 8×8)."""
    return MobileNetV1(num_classes=num_classes, width_mult=width_mult, blocks=SMALL_BLOCKS, in_channels=in_channels,
                       stem_stride=1, **options)
