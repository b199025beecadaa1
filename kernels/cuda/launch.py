"""What every launch needs: a `Source` (one .cu file and its template instances), the instance for a dtype,
and the grid of a one-thread-per-element kernel.

Each wrapper (activation.py, conv.py, …) declares the Source it launches, beside the functions that launch
it, so a reader goes from an op's wrapper straight to its .cu file. A device (gpu.GpuDevice, or
emulator.EmulatedDevice) offers `xp` (its array module), `multiprocessors`, and `function(source, instance)`:
a kernel callable as cupy's RawKernel is, `kernel(grid, block, args)`. Scalars go to kernels as numpy scalars
of exactly the C parameter's type (np.int32 for int, np.int64 for long long), a null pointer as NULL.
"""
from pathlib import Path

import numpy as np

from .tiling import TILINGS

DIRECTORY = Path(__file__).resolve().parent
NULL = np.uint64(0)  # a null pointer argument, as 8 zero bytes: CuPy 13.3 passes None as 0xffffffff (cupy#9046)
THREADS = 128  # per block of a one-thread-per-element kernel
BLOCKS_PER_MULTIPROCESSOR = 8  # its grid-stride loops need no more blocks than fill the GPU
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


class Source:
    """`<module>.cu` and the kernels it defines, each a template instantiated for float and double (only float
    for the `float_only` ones) — and the `tiled` ones (mainloop.cuh's) for every tile shape of
    tiling.TILINGS too, as name<float, Tile128x128>."""

    def __init__(self, module, kernels, tiled=(), float_only=()):
        self.module, self.kernels = module, tuple(kernels) + tuple(tiled)
        self.tiled, self.float_only = frozenset(tiled), frozenset(float_only)
        self.path = DIRECTORY / f"{module}.cu"
        self.instances = tuple(self._instance(kernel, c_type, tiling) for kernel in self.kernels
                               for dtype, c_type in C_TYPES.items() if self._takes(kernel, dtype)
                               for tiling in (TILINGS if kernel in self.tiled else (None,)))

    def _takes(self, kernel, dtype):
        return kernel not in self.float_only or dtype == np.float32

    @staticmethod
    def _instance(kernel, c_type, tiling):
        return f"{kernel}<{c_type}>" if tiling is None else f"{kernel}<{c_type}, {tiling.name}>"

    def kernel(self, device, name, dtype, tiling=None):
        """The instance of `name` for `dtype` (and the tile shape `tiling`, for a tiled kernel), on `device`."""
        if np.dtype(dtype) not in C_TYPES or not self._takes(name, np.dtype(dtype)):
            raise TypeError(f"{name}: takes {'float32' if name in self.float_only else 'float32 or float64'}, "
                            f"got {np.dtype(dtype)}")
        if (tiling is not None) != (name in self.tiled):
            raise ValueError(f"{name}: a tile shape is given exactly for the tiled kernels {sorted(self.tiled)}")
        return device.function(self, self._instance(name, C_TYPES[np.dtype(dtype)], tiling))

    def each_element(self, device, name, dtype, count, args):
        """Launch the grid-stride kernel `name` over `count` elements (nothing to launch for none)."""
        if count > 0:
            blocks = min(-(-count // THREADS), BLOCKS_PER_MULTIPROCESSOR * device.multiprocessors)
            self.kernel(device, name, dtype)((blocks,), (THREADS,), args)

    def __repr__(self):
        return f"Source({self.module!r}, {self.kernels})"


def window_args(g):
    """A Window2d's sizes as the conv and max-pool kernels take them: h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow."""
    return tuple(np.int32(v) for v in (g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow))
