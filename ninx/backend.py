"""Backends: where a tensor's array lives and which kernel table computes on it.

A backend is a name ("cpu", "cuda"), an array module `xp` (numpy or cupy) for elementwise math and
reductions, and a kernel table: the functions of `KernelTable` below, declared here once. The CPU backend
(`kernels/cpu/`) and the CUDA backend (`kernels/cuda/`) each provide every one of them, and the CUDA sources'
map is derived from the same list, so the two pass the same conformance tests.

`geometry` is a `ninx.geometry.Window2d` holding the shapes, kernel, stride, padding and dilation, validated
before any kernel runs.
"""
import importlib
import os
from typing import Protocol

import numpy as np


class KernelTable(Protocol):
    """What every backend computes; each op's forward and backward call only these."""

    def gemm(self, a, b, out, accumulate=False, bias=None, relu_cap=None):
        """out[i % Bo] (+)= Σ a[i % Ba] @ b[i % Bb] over i < max(Ba, Bb, Bo), for 3-D arrays; then, when given,
        + bias[m] on row m and clamped to [0, relu_cap] (inf: ReLU, 6: ReLU6; NaN passes); returns out."""

    def conv2d(self, x, weight, geometry, groups, bias=None, relu_cap=None):
        """y (N, oC, oh, ow) of x (N, C, H, W) and weight (oC, C/groups, kh, kw), lowered onto the GEMM core
        (a 1×1 stride-1 unpadded one is the GEMM itself); + bias[o], then clamped to [0, relu_cap] when given."""

    def conv2d_backward_input(self, gy, weight, geometry, groups):
        """The input gradient (N, C, H, W) of conv2d, from gy (N, oC, oh, ow)."""

    def conv2d_backward_weight(self, x, gy, geometry, groups):
        """The weight gradient (oC, C/groups, kh, kw) of conv2d, summed over the batch."""

    def conv2d_backward_bias(self, gy):
        """The bias gradient (oC,) of conv2d (and of depthwise_conv2d): Σ gy (N, oC, oh, ow) over N, oh, ow."""

    def depthwise_conv2d(self, x, weight, geometry, bias=None):
        """y (N, C·M, oh, ow) of x (N, C, H, W) and weight (C·M, 1, kh, kw): output channel o convolves input
        channel o // M only (groups = C, channel multiplier M), computed directly rather than as a GEMM; + bias[o]
        when given."""

    def depthwise_conv2d_backward_input(self, gy, weight, geometry):
        """The input gradient (N, C, H, W) of depthwise_conv2d."""

    def depthwise_conv2d_backward_weight(self, x, gy, geometry):
        """The weight gradient (C·M, 1, kh, kw) of depthwise_conv2d, summed over the batch."""

    def depthwise_conv2d_backward_weight_bias(self, x, gy, geometry):
        """(gweight, gbias): depthwise_conv2d_backward_weight's gradient and conv2d_backward_bias's (C·M,), from
        one pass over gy where the backend can."""

    def relu(self, x, cap):
        """min(max(x, 0), cap): cap = inf for ReLU, 6 for ReLU6."""

    def relu_backward(self, x, gy, cap):
        """gy where 0 < x < cap (and where x is NaN, or +inf for ReLU, as PyTorch), else 0."""

    def relu_backward_bias(self, x, gy, cap):
        """(gx, gbias) for x, gy (N, C, H, W): relu_backward's gx, and gbias (C,) = Σ gx over N, H, W — the
        backward of a convolution fused with its activation, whose bias gradient needs the masked dY."""

    def max_pool2d(self, x, geometry):
        """(y, argmax): the window maxima and the flat index iy·W + ix of each in its input plane."""

    def max_pool2d_backward(self, gy, argmax, geometry):
        """Each input pixel sums the gradients of the windows whose maximum it was."""

    def avg_pool2d(self, x, geometry, count_include_pad, divisor_override):
        """Window means with PyTorch's divisor rules."""

    def avg_pool2d_backward(self, gy, geometry, count_include_pad, divisor_override):
        """The adjoint of avg_pool2d."""

    def batch_norm_stats(self, x):
        """(mean, var) per channel of x (N, C, H, W) over N, H, W; var biased; (C,) each."""

    def batch_norm_forward(self, x, mean, inv_std, weight, bias):
        """y = (x − mean[c])·inv_std[c]·weight[c] + bias[c]."""

    def batch_norm_backward(self, x, gy, mean, inv_std, weight, training):
        """(gx, gweight, gbias): gbias = Σ gy, gweight = Σ gy·x̂ with x̂ = (x − mean)·inv_std (sums over
        N, H, W); with M = N·H·W, gx = weight·inv_std/M · (M·gy − gbias − x̂·gweight) when training (batch
        statistics), else gx = gy·weight·inv_std (running statistics are constants)."""


KERNELS = tuple(name for name, value in vars(KernelTable).items() if callable(value) and not name.startswith("_"))


class Backend:
    """A device's array module and kernel table."""

    def __init__(self, name, xp, kernels):
        self.name = name
        self.xp = xp
        missing = [k for k in KERNELS if not hasattr(kernels, k)]
        if missing:
            raise RuntimeError(f"backend {name!r} lacks kernels {missing}")
        for k in KERNELS:
            setattr(self, k, getattr(kernels, k))

    def asarray(self, data, dtype):
        """`data` as an array of this backend in `dtype` (no copy when it already is one)."""
        return self.xp.asarray(data, dtype=dtype)

    def __repr__(self):
        return f"Backend({self.name!r})"


_backends = {}


def _load(name):
    if name == "cpu":
        return Backend("cpu", np, importlib.import_module("ninx_kernels.cpu"))
    if name == "cuda":
        # NINX_CUDA_EMULATE=1 runs the CUDA kernels on the CPU through the emulation layer.
        module = importlib.import_module("ninx_kernels.cuda")
        return module.make_backend(Backend, emulate=os.environ.get("NINX_CUDA_EMULATE") == "1")
    raise ValueError(f"device must be 'cpu' or 'cuda', got {name!r}")


def get_backend(device):
    """The backend for a device name ('cpu', 'cuda', 'cuda:0'), created on first use."""
    if isinstance(device, Backend):
        return device
    name = str(device).split(":")[0]
    if name not in _backends:
        _backends[name] = _load(name)
    return _backends[name]
