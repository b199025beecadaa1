"""The CPU kernels' buffers start on a cache line, from Python and inside a kernel, whatever the allocator
handed out before them."""
import numpy as np
import pytest
from numba import njit

from ninx_kernels.cpu.memory import ALIGN, aligned_empty, aligned_like


@njit
def _starts(template, sizes):
    # where each aligned array starts past a line, and its size, allocated inside a kernel
    out = np.empty((len(sizes), 2), np.int64)
    for i in range(len(sizes)):
        a = aligned_like(template, sizes[i])
        out[i, 0], out[i, 1] = a.ctypes.data % ALIGN, a.size
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aligned_buffers_start_on_a_line_and_have_the_size_asked(dtype):
    sizes = [1, 3, 17, 1000, 12345]
    for size in sizes:
        np.empty(size % 7 + 1, np.int8)  # move the allocator's next start off a line
        a = aligned_empty((size, 2), dtype)
        assert (a.shape, a.dtype, a.ctypes.data % ALIGN, a.flags.c_contiguous) == ((size, 2), dtype, 0, True)
    starts = _starts(np.zeros(1, dtype), np.array(sizes))
    assert starts[:, 0].tolist() == [0] * len(sizes) and starts[:, 1].tolist() == sizes
