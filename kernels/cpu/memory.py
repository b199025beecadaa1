"""Keep freed memory in the process, so that a training step's arrays reuse the pages of the last step's.

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
