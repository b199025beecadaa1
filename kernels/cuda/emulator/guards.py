"""Guarded copies: each array a kernel receives is copied into a larger buffer between poisoned guard bands.

    [ guard band ][ the bytes the array spans, at the same address modulo 256 ][ guard band ]

Guards and poison are the 8-byte pattern 0x7ff4dead7fa5beef, repeated: a NaN as a float64 and as each of its
float32 halves. A kernel that reads out of bounds, or reads an output it never wrote, computes with NaN; a
kernel that writes out of bounds changes a guard (any value it computes differs from the pattern, NaN
included), and `damage` reports where.

The copies live in anonymous memory maps, outside Python's allocator, so tracemalloc measures what the cuda
backend allocates on its device (its numpy arrays) and not the emulator's copies of them.
"""
import ctypes
import mmap

import numpy as np

PATTERN = np.uint64(0x7FF4DEAD7FA5BEEF)
GUARD_BYTES = 16384
ALIGNMENT = 256  # cudaMalloc's: vector loads meet the alignment they would meet on the GPU


def _span(array):
    """(address of the lowest byte, bytes spanned, offset of element 0 from the lowest byte) of an array view."""
    element0 = array.ctypes.data
    if array.size == 0:
        return element0, 0, 0
    below = sum((n - 1) * -s for n, s in zip(array.shape, array.strides) if s < 0)
    above = sum((n - 1) * s for n, s in zip(array.shape, array.strides) if s > 0)
    return element0 - below, below + above + array.itemsize, below


class GuardedCopy:
    """A numpy array copied between guard bands; `pointer` is the copy's element 0, as the kernel sees it."""

    def __init__(self, array):
        self.array = array
        self.low, self.nbytes, offset = _span(array)
        words = (2 * GUARD_BYTES + self.nbytes + ALIGNMENT + 7) // 8
        self.buffer = np.frombuffer(mmap.mmap(-1, 8 * words), dtype=np.uint8)
        self.buffer.view(np.uint64)[:] = PATTERN
        base = self.buffer.ctypes.data
        self.start = GUARD_BYTES + (self.low - base - GUARD_BYTES) % ALIGNMENT
        self.end = self.start + self.nbytes
        ctypes.memmove(base + self.start, self.low, self.nbytes)
        self.pointer = base + self.start + offset
        self.bands = self.buffer[:self.start].copy(), self.buffer[self.end:].copy()

    def poison(self):
        """Overwrite every element of the array (not the gaps of a strided view) with the pattern's bytes."""
        poison = np.frombuffer(PATTERN.tobytes()[:self.array.itemsize], dtype=self.array.dtype)[0]
        view = np.ndarray(self.array.shape, self.array.dtype, buffer=self.buffer,
                          offset=self.pointer - self.buffer.ctypes.data, strides=self.array.strides)
        view[...] = poison

    def damage(self):
        """None while both guard bands are intact, else which bytes around the array changed."""
        before = np.flatnonzero(self.buffer[:self.start] != self.bands[0]) - self.start
        after = np.flatnonzero(self.buffer[self.end:] != self.bands[1]) + self.nbytes
        changed = np.concatenate([before, after])
        if changed.size == 0:
            return None
        return f"bytes {changed.min()} to {changed.max()} of its {self.nbytes} changed"

    def copy_back(self):
        ctypes.memmove(self.low, self.buffer.ctypes.data + self.start, self.nbytes)
