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

from .tiling import INDEX_LIMIT, TILINGS, Tiling

DIRECTORY = Path(__file__).resolve().parent
NULL = np.uint64(0)  # a null pointer argument, as 8 zero bytes: CuPy 13.3 passes None as 0xffffffff (cupy#9046)
THREADS = 128  # per block of a one-thread-per-element kernel
BLOCKS_PER_MULTIPROCESSOR = 8  # its grid-stride loops need no more blocks than fill the GPU
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
INDEX_TYPES = {np.int32: "int", np.int64: "long long"}


def index_type(*extents):
    """np.int32 if every extent (the largest element count or offset a kernel computes) is below INDEX_LIMIT
    (tiling.py's), else np.int64: the Index of the kernel's instance, and the type of its Index arguments."""
    return np.int32 if max(extents, default=0) < INDEX_LIMIT else np.int64


class Source:
    """`<module>.cu` and the kernels it defines, each a template instantiated for float and double (float only
    for the `float_only` ones): `kernels` as name<T>; `indexed` ones as name<T, Index> for each Index of
    INDEX_TYPES; `tiled` ones (mainloop.cuh's) as name<T, Tile> for each tile shape of tiling.TILINGS."""

    def __init__(self, module, kernels=(), indexed=(), tiled=(), float_only=()):
        self.module, self.float_only = module, frozenset(float_only)
        # each kernel's second template arguments: none, the index types, or the tile shapes
        self.variants = {**{k: (None,) for k in kernels}, **{k: tuple(INDEX_TYPES) for k in indexed},
                         **{k: TILINGS for k in tiled}}
        self.kernels = tuple(self.variants)
        self.path = DIRECTORY / f"{module}.cu"
        self.instances = tuple(self._instance(kernel, dtype, variant) for kernel, variants in self.variants.items()
                               for dtype in C_TYPES if self._takes(kernel, dtype) for variant in variants)

    def _takes(self, kernel, dtype):
        return kernel not in self.float_only or dtype == np.float32

    @staticmethod
    def _instance(kernel, dtype, variant):
        if variant is None:
            return f"{kernel}<{C_TYPES[dtype]}>"
        return f"{kernel}<{C_TYPES[dtype]}, {variant.name if isinstance(variant, Tiling) else INDEX_TYPES[variant]}>"

    def kernel(self, device, name, dtype, variant=None):
        """The instance of `name` for `dtype` and, for an indexed or a tiled kernel, the index type (np.int32 or
        np.int64) or the tile shape `variant`, on `device`."""
        dtype = np.dtype(dtype)
        if dtype not in C_TYPES or not self._takes(name, dtype):
            raise TypeError(f"{name}: takes {'float32' if name in self.float_only else 'float32 or float64'}, "
                            f"got {dtype}")
        if variant not in self.variants[name]:
            raise ValueError(f"{name}: its second template argument is one of {self.variants[name]}, got {variant!r}")
        return device.function(self, self._instance(name, dtype, variant))


    def each_element(self, device, name, dtype, count, args, index=None):
        """Launch the grid-stride kernel `name` over `count` elements (nothing to launch for none)."""
        if count > 0:
            blocks = min(-(-count // THREADS), BLOCKS_PER_MULTIPROCESSOR * device.multiprocessors)
            self.kernel(device, name, dtype, index)((blocks,), (THREADS,), args)

    def __repr__(self):
        return f"Source({self.module!r}, {self.kernels})"


def window_args(g):
    """A Window2d's sizes as the conv and max-pool kernels take them: h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow."""
    return tuple(np.int32(v) for v in (g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow))


def aligned(*arrays):
    """Whether every array starts on a 16-byte boundary, so a kernel may read and write it as float4/double2."""
    return all((a.data.ptr if hasattr(a.data, "ptr") else a.ctypes.data) % 16 == 0 for a in arrays)
