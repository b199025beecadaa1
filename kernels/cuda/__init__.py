"""The cuda device: the CUDA C++ kernels of this folder behind ninx's kernel table, on an NVIDIA GPU through
CuPy — or, with NINX_CUDA_EMULATE=1, on the CPU through the emulation layer (emulator/), from the same sources.

    available()                      whether the cuda device can run here
    make_backend(Backend, emulate)   the backend (ninx.backend calls it), or CudaUnavailable saying what is missing
"""
import functools
import os
from types import SimpleNamespace

from ninx.backend import KERNELS

from . import activation, batchnorm, conv, depthwise, gemm, pool

WRAPPERS = (activation, batchnorm, conv, depthwise, gemm, pool)  # kernels/cuda/<op>.py, each beside its <op>.cu


class CudaUnavailable(RuntimeError):
    """The cuda device cannot run here; the message names what is missing."""


def _gpu_device():
    try:
        import cupy
    except ImportError as error:
        raise CudaUnavailable("device 'cuda' needs CuPy, which is not installed (pip install 'ninx[cuda]', i.e. "
                              "cupy-cuda12x); or set NINX_CUDA_EMULATE=1 to run the CUDA kernels on the CPU "
                              f"through the emulation layer ({error})") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError: no driver, or one too old for this CuPy
        raise CudaUnavailable(f"device 'cuda' needs an NVIDIA GPU with a working driver, and CuPy found none: "
                              f"{error}; or set NINX_CUDA_EMULATE=1 to run the CUDA kernels on the CPU") from None
    if count == 0:
        raise CudaUnavailable("device 'cuda' needs an NVIDIA GPU, and CuPy sees none; or set NINX_CUDA_EMULATE=1 "
                              "to run the CUDA kernels on the CPU")
    from .gpu import GpuDevice
    return GpuDevice(cupy)


def _emulated_device():
    from .emulator import EmulatedDevice
    from .emulator.build import EmulatorUnavailable
    try:
        return EmulatedDevice()
    except EmulatorUnavailable as error:
        raise CudaUnavailable(str(error)) from None


def kernel_table(device):
    """Every entry of ninx's kernel table, from the wrapper that defines it, with `device` bound."""
    found = {name: getattr(w, name) for w in WRAPPERS for name in KERNELS if hasattr(w, name)}
    return SimpleNamespace(**{name: functools.partial(f, device) for name, f in found.items()})


def make_backend(Backend, emulate):
    """The 'cuda' backend: on the GPU, or through the emulator when `emulate`."""
    device = _emulated_device() if emulate else _gpu_device()
    return Backend("cuda", device.xp, kernel_table(device))


def available():
    """Whether the cuda device can run: through the emulator when NINX_CUDA_EMULATE=1, else on a GPU."""
    try:
        _emulated_device() if os.environ.get("NINX_CUDA_EMULATE") == "1" else _gpu_device()
    except CudaUnavailable:
        return False
    return True
