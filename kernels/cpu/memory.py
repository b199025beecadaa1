"""How the CPU kernels get memory: buffers that start on a cache line, and freed memory kept in the process.

A buffer that vector loads or stores sweep in rows of whole cache lines (packed panels, a transposed
gradient, a band of sums) must start on a line: numpy's heap blocks start 16 bytes past one and Numba's own
arrays 32 bytes, and from any other start each 64-byte vector straddles two lines. The small NiN's 5×5
layer (batch 128) on the 2-core Ice Lake-SP, with the direct convolution's buffers on a line against where
they landed, both in one process, alternating, min of 10: forward 78 → 66 ms, input gradient 82 → 69,
weight gradient 97–100 → 71–73 (its transposed gradient had started 16 bytes past a line); the 3×3 layer's
16.3 → 14.2, 17.2 → 15.0 and 17.0 → 13.6.

Freed memory is kept so that a training step's arrays reuse the pages of the last step's.

glibc's malloc serves a block above its mmap threshold (at first 128 KiB, raised by itself only up to the
size of the largest block freed so far, at most 32 MiB) with fresh pages from the kernel and unmaps them when
the block is freed; the top of the heap is trimmed back too. A small-NiN step (batch 128) then touches
hundreds of MB of fresh memory — a 5×5 layer's column matrix alone is 207 MB — and the first touch of a page
costs about 1 µs per 4 KiB here. We serve every block from the heap (no mmap) and never trim it. One step,
1 core (CPU time): 1.65 s → 1.49 s with just the threshold at 32 MiB and no trimming (ReLU's 12 calls 55–88 ms
→ 14–16 ms); without mmap at all the 207 MB blocks are reused too. The price: memory freed by the process
is kept for its next allocations rather than given back to the system. NINX_KEEP_FREED_MEMORY=0 opts out.
"""
import ctypes
import ctypes.util
import os

import numpy as np
from numba import njit
from numba.extending import register_jitable

ALIGN = 64  # bytes: a cache line, and at least one vector on every target

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt's parameter numbers (malloc.h)
TRIM_THRESHOLD = 2**31 - 1  # as good as never: mallopt takes an int


def keep_freed_memory():
    """Apply the settings above where the C library is glibc; elsewhere do nothing. True if applied."""
    if os.environ.get("NINX_KEEP_FREED_MEMORY") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


@register_jitable
def _from_a_line(raw, size):
    """The `size` elements of raw (ALIGN bytes longer than that) that start on an ALIGN-byte boundary; in
    Python and in kernels alike."""
    start = (-raw.ctypes.data % ALIGN) // raw.itemsize
    return raw[start:start + size]


def aligned_empty(shape, dtype):
    """An uninitialised array of `shape` whose data starts on an ALIGN-byte boundary."""
    dtype, size = np.dtype(dtype), int(np.prod(shape))
    return _from_a_line(np.empty(size + ALIGN // dtype.itemsize, dtype), size).reshape(shape)


@njit(inline="always")
def aligned_like(template, size):
    """Inside a kernel: an uninitialised 1-D array of `size` elements of template's dtype, ALIGN-byte aligned."""
    return _from_a_line(np.empty(size + ALIGN // template.itemsize, template.dtype), size)
