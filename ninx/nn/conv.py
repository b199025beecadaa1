"""`Conv2d`: a learnt 2-D convolution with PyTorch's arguments and default initialisation."""
import math

import numpy as np

from ..geometry import bounded_pair
from ..tensor import get_default_dtype
from . import functional as F
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """Convolution of (N, in_channels, H, W) with out_channels filters of in_channels/groups × kernel_size.

    A 1×1 kernel with stride 1 and no padding runs as one batched GEMM with no im2col (see kernels/cpu/conv.py).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Conv2d: {name} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        if padding_mode != "zeros":
            raise NotImplementedError(f"Conv2d: padding_mode={padding_mode!r}; ninx pads with zeros only")
        self.kernel_size = bounded_pair("Conv2d", kernel_size, "kernel_size", 1)
        self.stride = bounded_pair("Conv2d", stride, "stride", 1)
        self.padding = padding if isinstance(padding, str) else bounded_pair("Conv2d", padding, "padding", 0)
        self.dilation = bounded_pair("Conv2d", dilation, "dilation", 1)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.zeros(shape, get_default_dtype()))
        self.bias = Parameter(np.zeros(out_channels, get_default_dtype())) if bias else None
        self.reset_parameters()
        self.to(device=device, dtype=dtype)

    def reset_parameters(self):
        """PyTorch's default: weight kaiming_uniform(a=√5), i.e. U(±1/√fan_in); bias U(±1/√fan_in)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(init.calculate_fan_in_and_fan_out(self.weight)[0])
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def forward_clamped(self, input, cap):
        """relu(self(input)) (cap = inf) or relu6 (cap = 6) as one op, as `Sequential` runs a Conv2d and the
        ReLU that follows it."""
        return F.conv2d_relu(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                             cap)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
