"""The memory-bound cuda kernels' launch choices: the int or long long instance by the size of the arrays, and
Divmod's exactness against Python's divmod."""
import os
import shutil

import numpy as np
import pytest

from ninx_kernels.cuda import launch
from ninx_kernels.cuda.emulator import EmulatedModule


# ---- Divmod: a multiply and a shift, exact for every int dividend -------------------------------------------

def _divisors():
    powers = [2**k + e for k in range(1, 31) for e in (-1, 0, 1)]
    sizes = [7, 14, 28, 56, 112, 224, 192, 384, 1000, 3 * 3, 6 * 7 * 7]  # plane sizes, channels, windows
    random = np.random.default_rng(0).integers(1, 2**31, 300).tolist()
    return sorted({d for d in range(1, 65)} | set(powers) | set(sizes) | set(random) | {2**31 - 2, 2**31 - 1}
                  - {2**31})


def _dividends(d, rng):
    top = (2**31 - 1) // d * d  # the largest multiple of d that is an int
    near = [0, 1, 2, d - 1, d, d + 1, 2 * d - 1, 2 * d, top - d, top - 1, top, top + 1, 2**30, 2**31 - 2, 2**31 - 1]
    return [n for n in near + rng.integers(0, 2**31, 8).tolist() if 0 <= n < 2**31]


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="the emulator needs a C++ compiler")
def test_divmod_is_exact_against_pythons_divmod():
    """Every divisor 1…64, each 2^k − 1, 2^k and 2^k + 1, 2^31 − 1 and random ones, each with the dividends
    at its multiples and at the top of the int range — the int Divmod's multiply-and-shift, and the long long
    one's division (there also past 2^31)."""
    module = EmulatedModule(os.path.join(os.path.dirname(__file__), "cuda", "divmod.cu"),
                            ["divide<int>", "divide<long long>"])
    rng = np.random.default_rng(1)
    pairs = [(n, d) for d in _divisors() for n in _dividends(d, rng)]
    pairs += [(n * 2**31 + d, d) for n, d in pairs[::7]]  # for the long long one only
    for name, dtype in (("divide<int>", np.int32), ("divide<long long>", np.int64)):
        chosen = [(n, d) for n, d in pairs if n <= np.iinfo(dtype).max]
        n, d = (np.array(column, dtype=dtype) for column in zip(*chosen))
        q, r = np.empty_like(n), np.empty_like(n)
        module.get_function(name)((4,), (128,), (n, d, dtype(n.size), q, r))
        expected = [divmod(int(a), int(b)) for a, b in chosen]
        assert [(int(a), int(b)) for a, b in zip(q, r)] == expected, name


# ---- the index type: int where every count and offset fits -------------------------------------------------

def test_index_type_is_int_below_the_limit(monkeypatch):
    assert launch.index_type(launch.INDEX_LIMIT - 1, 5) is np.int32
    assert launch.index_type(5, launch.INDEX_LIMIT) is np.int64
    assert launch.index_type() is np.int32
    assert launch.INDEX_LIMIT + 2**24 == 2**31  # headroom for one grid's step past the count
    monkeypatch.setattr(launch, "INDEX_LIMIT", 10)
    assert launch.index_type(9) is np.int32 and launch.index_type(10) is np.int64
