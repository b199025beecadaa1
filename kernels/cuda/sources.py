"""The CUDA sources and the template instances each provides — the one list read by the GPU loader (as
cupy.RawModule's name_expressions), by the emulator's build, and by the NVRTC compile test."""
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
NVRTC_OPTIONS = ("-std=c++17", f"-I{DIRECTORY}")


def _for_each_float(*kernels):
    return tuple(f"{kernel}<{t}>" for kernel in kernels for t in ("float", "double"))


MODULES = {
    "gemm": _for_each_float("gemm", "sum_slices"),
    "conv": _for_each_float("im2col", "col2im"),
    "pool": _for_each_float("max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"),
    "activation": _for_each_float("relu", "relu_backward"),
    "batchnorm": _for_each_float("batch_norm_stats", "batch_norm_forward", "batch_norm_backward"),
}


def path(module):
    return DIRECTORY / f"{module}.cu"
