"""Backends: where a tensor's array lives and which kernel table computes on it.

A backend is a name ("cpu", "cuda"), an array module `xp` (numpy or cupy) for elementwise math and
reductions, and a kernel table — the same small set of functions on every backend:

    gemm(a, b, out, accumulate=False)          out[i % Bo] (+)= Σ a[i % Ba] @ b[i % Bb]   (3-D arrays)
    im2col(x, geometry) -> cols                (N, C·kh·kw, oh·ow)
    col2im(cols, geometry) -> gx               (N, C, H, W), the adjoint of im2col
    relu(x, cap) -> y;  relu_backward(x, gy, cap) -> gx          (cap = inf for ReLU, 6 for ReLU6)
    max_pool2d(x, geometry) -> (y, argmax);  max_pool2d_backward(gy, argmax, geometry) -> gx
    avg_pool2d(x, geometry, count_include_pad) -> y;  avg_pool2d_backward(gy, geometry, count_include_pad) -> gx
    batch_norm_stats(x) -> (mean, var)        per channel of x (N, C, H, W) over N, H, W; var biased; (C,) each
    batch_norm_forward(x, mean, inv_std, weight, bias) -> y        y = (x − mean[c])·inv_std[c]·weight[c] + bias[c]
    batch_norm_backward(x, gy, mean, inv_std, weight, training) -> (gx, gweight, gbias)
        gbias = Σ gy, gweight = Σ gy·x̂ with x̂ = (x − mean)·inv_std (sums over N, H, W); with M = N·H·W,
        gx = weight·inv_std/M · (M·gy − gbias − x̂·gweight) when training (batch statistics), else
        gx = gy·weight·inv_std (running statistics are constants)

`geometry` is a `ninx.geometry.Window2d` holding the shapes, kernel, stride, padding and dilation, validated
before any kernel runs. Every op's forward and backward go through this table, so the CPU and CUDA backends
pass the same conformance tests.
"""
import importlib
import os

import numpy as np

_KERNEL_TABLE = ("gemm", "im2col", "col2im", "relu", "relu_backward", "max_pool2d", "max_pool2d_backward",
                 "avg_pool2d", "avg_pool2d_backward", "batch_norm_stats", "batch_norm_forward",
                 "batch_norm_backward")


class Backend:
    """A device's array module and kernel table."""

    def __init__(self, name, xp, kernels):
        self.name = name
        self.xp = xp
        missing = [k for k in _KERNEL_TABLE if not hasattr(kernels, k)]
        if missing:
            raise RuntimeError(f"backend {name!r} lacks kernels {missing}")
        for k in _KERNEL_TABLE:
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
