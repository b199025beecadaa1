"""GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going Deeper with Convolutions"), with torchvision's
parameter names, order and shapes (`googlenet`), and a small variant for 28×28–32×32 images.

An Inception module runs four branches on the same input and concatenates them on channels: a 1×1 conv; a
1×1 reduction then a 3×3 conv; a 1×1 reduction then a "5×5" conv; a 3×3 max pool then a 1×1 projection. The
1×1 reductions are NiN's idea put to work: a 5×5 conv from 192 to 32 channels at 28×28 costs 120.4 M MACs,
a 1×1 reduction to 16 channels first brings it to 12.4 M (`ninx explain bottleneck`). Like torchvision (and
the TensorFlow weights it ports), the "5×5" branch uses a 3×3 kernel (pytorch/vision#906). Every conv is a
BasicConv2d: conv without bias, batch norm (eps 0.001), ReLU.

`googlenet` (224×224, 1000 classes, aux_logits=False): 6,624,904 parameters, 1.50 G MACs per image;
with the two auxiliary heads 13,004,888. Layer table (branch widths: 1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5,
pool proj):

    conv1      7×7/2 conv 64                         112²      maxpool1  3×3/2 (ceil)   56²
    conv2      1×1 conv 64                           56²       conv3     3×3 conv 192   56²
    maxpool2   3×3/2 (ceil)                          28²
    inception3a  64, 96, 128, 16, 32, 32   → 256     28²       inception3b 128, 128, 192, 32, 96, 64 → 480
    maxpool3   3×3/2 (ceil)                          14²
    inception4a 192, 96, 208, 16, 48, 64   → 512     14²       (aux1 reads this)
    inception4b 160, 112, 224, 24, 64, 64  → 512     inception4c 128, 128, 256, 24, 64, 64 → 512
    inception4d 112, 144, 288, 32, 64, 64  → 528     14²       (aux2 reads this)
    inception4e 256, 160, 320, 32, 128, 128 → 832    maxpool4  2×2/2 (ceil)   7²
    inception5a 256, 160, 320, 32, 128, 128 → 832    inception5b 384, 192, 384, 48, 128, 128 → 1024
    global average pool, dropout 0.2, fc 1024 → classes

An auxiliary head (InceptionAux) pools 14×14 to 4×4 (adaptive average pooling, overlapping cells), 1×1
conv to 128, fc 2048 → 1024, ReLU, dropout 0.7, fc → classes. In training with aux_logits the model returns
GoogLeNetOutputs(logits, aux_logits2, aux_logits1), else the logits.
"""
from collections import namedtuple

import numpy as np

import ninx

from .. import nn
from ..nn import functional as F
from ..tensor import tensor

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])

# after the stem, the paper's Table 1: (name, in, 1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool proj) for an
# Inception module, (name, kernel) for a stride-2 max pool (ceil mode) between stages
IMAGENET_INCEPTIONS = (("inception3a", 192, 64, 96, 128, 16, 32, 32), ("inception3b", 256, 128, 128, 192, 32, 96, 64),
                       ("maxpool3", 3), ("inception4a", 480, 192, 96, 208, 16, 48, 64),
                       ("inception4b", 512, 160, 112, 224, 24, 64, 64), ("inception4c", 512, 128, 128, 256, 24, 64, 64),
                       ("inception4d", 512, 112, 144, 288, 32, 64, 64),
                       ("inception4e", 528, 256, 160, 320, 32, 128, 128), ("maxpool4", 2),
                       ("inception5a", 832, 256, 160, 320, 32, 128, 128),
                       ("inception5b", 832, 384, 192, 384, 48, 128, 128))
# googlenet-small: the stem at 32 and 64 channels, four narrow modules at 14² and 7² for 28×28 input
SMALL_INCEPTIONS = (("inception3a", 64, 16, 24, 32, 4, 8, 8), ("inception3b", 64, 32, 32, 48, 8, 24, 16),
                    ("maxpool3", 3), ("inception4a", 120, 48, 24, 52, 4, 12, 16),
                    ("inception4b", 128, 40, 28, 56, 6, 16, 16))


class BasicConv2d(nn.Module):
    """conv (no bias) → batch norm (eps 0.001) → ReLU, named conv and bn as torchvision's."""

    def __init__(self, in_channels, out_channels, **options):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **options)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches concatenated on channels: ch1x1 + ch3x3 + ch5x5 + pool_proj output channels."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))  # vision#906
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        return ninx.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """An auxiliary classifier on an intermediate map: adaptive average pool to `pool`×`pool`, 1×1 conv to 128,
    fc to 1024, ReLU, dropout 0.7, fc to the classes."""

    def __init__(self, in_channels, num_classes, pool=4, dropout=0.7):
        super().__init__()
        self.pool = pool
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * pool * pool, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = self.conv(F.adaptive_avg_pool2d(x, (self.pool, self.pool))).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """torchvision's GoogLeNet; `inceptions` lists the modules (and the max pools between stages) after the
    stem; `small` swaps the stem for two 3×3 convs at stride 1 (conv1, conv3) for 8×8–32×32 images. The auxiliary
    heads read inception4a and inception4d."""

    def __init__(self, num_classes=1000, aux_logits=False, transform_input=False, in_channels=3,
                 inceptions=IMAGENET_INCEPTIONS, small=False, dropout=0.2, init_weights=True):
        super().__init__()
        if transform_input and in_channels != 3:
            raise ValueError("GoogLeNet: transform_input re-normalises 3 ImageNet channels; in_channels must be 3")
        self.aux_logits, self.transform_input = aux_logits, transform_input
        if small:
            self.conv1 = BasicConv2d(in_channels, 32, kernel_size=3, padding=1)
            self.conv3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        else:
            self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.conv2 = BasicConv2d(64, 64, kernel_size=1)
            self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name, *spec in inceptions:
            setattr(self, name, Inception(*spec) if len(spec) > 1 else nn.MaxPool2d(spec[0], 2, ceil_mode=True))
        self.stages = [name for name, *_ in inceptions]
        if aux_logits and not {"inception4a", "inception4d"} <= set(self.stages):
            raise ValueError("GoogLeNet: aux_logits needs the modules inception4a and inception4d")
        if aux_logits:
            self.aux1 = InceptionAux(_width(self.inception4a), num_classes)
            self.aux2 = InceptionAux(_width(self.inception4d), num_classes)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(_width(getattr(self, self.stages[-1])), num_classes)
        if init_weights:
            self._initialise()

    def _initialise(self):
        """torchvision's: conv and linear weights from N(0, 0.01²) truncated to ±2 std; batch norms 1 and 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.01, a=-0.02, b=0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x):
        """Re-normalise from ImageNet's per-channel mean/std to (x − 0.5)/0.5, as the ported weights expect:
        x_c · std_c/0.5 + (mean_c − 0.5)/0.5."""
        scale = tensor(np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1) / 0.5, dtype=x.dtype, device=x.device)
        shift = tensor((np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1) - 0.5) / 0.5, dtype=x.dtype,
                       device=x.device)
        return x * scale + shift

    def forward(self, x):
        if self.transform_input:
            x = self._transform_input(x)
        for name in ("conv1", "maxpool1", "conv2", "conv3", "maxpool2"):
            if name in self._modules:
                x = getattr(self, name)(x)
        aux1 = aux2 = None
        for name in self.stages:
            x = getattr(self, name)(x)
            if self.training and name == "inception4a" and self.aux1 is not None:
                aux1 = self.aux1(x)
            if self.training and name == "inception4d" and self.aux2 is not None:
                aux2 = self.aux2(x)
        logits = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(logits, aux2, aux1)
        return logits


def _width(inception):
    """Output channels of an Inception module: the sum of its four branches' widths."""
    return (inception.branch1.conv.out_channels + inception.branch2[1].conv.out_channels +
            inception.branch3[1].conv.out_channels + inception.branch4[1].conv.out_channels)


def googlenet(num_classes=1000, aux_logits=False, transform_input=False, in_channels=3, **options):
    """torchvision's `googlenet`; aux_logits=False (the default here, as for torchvision's pretrained weights)
    gives 6,624,904 parameters for 1000 classes."""
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, transform_input=transform_input,
                     in_channels=in_channels, **options)


def googlenet_small(num_classes=10, in_channels=1, **options):
    """A GoogLeNet for 8×8–32×32 images (digits, MNIST, CIFAR-10): the stem as two 3×3 convs at stride 1 (32 and
    64 channels), max pool 3/2, inception3a (→ 64) and 3b (→ 120), max pool 3/2, inception4a (→ 128) and 4b
    (→ 128), global average pooling; 28×28 → 14² → 7². 102,254 parameters for 10 classes and one channel,
    23.3 M MACs per 28×28 image (1.9 M at 8×8)."""
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, inceptions=SMALL_INCEPTIONS, small=True,
                     **options)
