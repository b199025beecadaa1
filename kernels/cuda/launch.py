"""What every launch needs: a `Source` (one .cu file and its template instances), the instance for a dtype
(and an index type), the grid of a one-thread-per-element kernel, and which arrays allow 16-byte accesses.

Each wrapper (activation.py, conv.py, …) declares the Source it launches, beside the functions that launch
it, so a reader goes from an op's wrapper straight to its .cu file. A device (gpu.GpuDevice, or
emulator.EmulatedDevice) offers `xp` (its array module), `multiprocessors`, and `function(source, instance)`:
a kernel callable as cupy's RawKernel is, `kernel(grid, block, args)`. Scalars go to kernels as numpy scalars
of exactly the C parameter's type (np.int32 for int, np.int64 for long long), a null pointer as NULL.
"""
from pathlib import Path

import numpy as np

DIRECTORY = Path(__file__).resolve().parent
NULL = np.uint64(0)  # a null pointer argument, as 8 zero bytes: CuPy 13.3 passes None as 0xffffffff (cupy#9046)
THREADS = 128  # per block of a one-thread-per-element kernel
BLOCKS_PER_MULTIPROCESSOR = 8  # its grid-stride loops need no more blocks than fill the GPU
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
INDEX_TYPES = {np.int32: "int", np.int64: "long long"}
# int indexes a launch whose element counts and offsets all lie below this; the 2^24 of headroom keeps the
# last step of a grid-stride loop (by one grid, fewer than 2^24 threads) from overflowing
INDEX_LIMIT = 2**31 - 2**24


def index_type(*extents):
    """np.int32 if every extent (the largest element count or offset a kernel computes) is below INDEX_LIMIT,
    else np.int64: the Index of the kernel's instance, and the type of its Index arguments."""
    return np.int32 if max(extents, default=0) < INDEX_LIMIT else np.int64


class Source:
    """`<module>.cu` and the kernels it defines, each a template instantiated for float and double: `kernels`
    as name<T>, `indexed` ones as name<T, Index> for each Index of INDEX_TYPES too."""

    def __init__(self, module, kernels=(), indexed=()):
        self.module, self.kernels, self.indexed = module, tuple(kernels), tuple(indexed)
        self.path = DIRECTORY / f"{module}.cu"
        self.instances = (tuple(f"{kernel}<{t}>" for kernel in self.kernels for t in C_TYPES.values()) +
                          tuple(f"{kernel}<{t}, {i}>" for kernel in self.indexed for t in C_TYPES.values()
                                for i in INDEX_TYPES.values()))

    def kernel(self, device, name, dtype, index=None):
        """The instance name<T> of an unindexed kernel, or name<T, Index> for index type `index`, on `device`."""
        if np.dtype(dtype) not in C_TYPES:
            raise TypeError(f"{name}: the cuda kernels take float32 or float64, got {np.dtype(dtype)}")
        types = C_TYPES[np.dtype(dtype)] if index is None else f"{C_TYPES[np.dtype(dtype)]}, {INDEX_TYPES[index]}"
        return device.function(self, f"{name}<{types}>")

    def each_element(self, device, name, dtype, count, args, index=None):
        """Launch the grid-stride kernel `name` over `count` elements (nothing to launch for none)."""
        if count > 0:
            blocks = min(-(-count // THREADS), BLOCKS_PER_MULTIPROCESSOR * device.multiprocessors)
            self.kernel(device, name, dtype, index)((blocks,), (THREADS,), args)

    def __repr__(self):
        return f"Source({self.module!r}, {self.kernels}, {self.indexed})"


def window_args(g):
    """A Window2d's sizes as the conv and max-pool kernels take them: h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow."""
    return tuple(np.int32(v) for v in (g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow))


def aligned(*arrays):
    """Whether every array starts on a 16-byte boundary, so a kernel may read and write it as float4/double2."""
    return all((a.data.ptr if hasattr(a.data, "ptr") else a.ctypes.data) % 16 == 0 for a in arrays)
