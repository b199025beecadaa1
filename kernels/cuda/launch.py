"""What every launch needs: the template instance for a dtype, and the grid of a one-thread-per-element kernel.

A device (gpu.GpuDevice, or emulator.EmulatedDevice) offers `xp` (its array module), `multiprocessors`, and
`function(module, name)`: a kernel callable as cupy's RawKernel is, `kernel(grid, block, args)`. Scalars go
to kernels as numpy scalars of exactly the C parameter's type (np.int32 for int, np.int64 for long long), a
null pointer as NULL.
"""
import numpy as np

NULL = np.uint64(0)  # a null pointer argument, as 8 zero bytes: CuPy 13.3 passes None as 0xffffffff (cupy#9046)
THREADS = 128  # per block of a one-thread-per-element kernel
BLOCKS_PER_MULTIPROCESSOR = 8  # its grid-stride loops need no more blocks than fill the GPU
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def function(device, module, kernel, dtype):
    """The instance kernel<float> or kernel<double> of `module`.cu for `dtype`."""
    if np.dtype(dtype) not in C_TYPES:
        raise TypeError(f"{kernel}: the cuda kernels take float32 or float64, got {np.dtype(dtype)}")
    return device.function(module, f"{kernel}<{C_TYPES[np.dtype(dtype)]}>")


def each_element(device, module, kernel, dtype, count, args):
    """Launch a grid-stride kernel over `count` elements (nothing to launch for none)."""
    if count > 0:
        blocks = min(-(-count // THREADS), BLOCKS_PER_MULTIPROCESSOR * device.multiprocessors)
        function(device, module, kernel, dtype)((blocks,), (THREADS,), args)


def window_args(g):
    """A Window2d's sizes as the conv and max-pool kernels take them: h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow."""
    return tuple(np.int32(v) for v in (g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow))
