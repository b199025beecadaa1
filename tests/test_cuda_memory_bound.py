"""The memory-bound cuda kernels' launch choices: the int or long long instance by the size of the arrays (at
the boundary, with the limit brought down for the test), Divmod's exactness against Python's divmod, ReLU's
16-byte vectors where the arrays are aligned, and batch norm's (channel, slice) grid."""
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from ninx.backend import get_backend
from ninx.geometry import window2d
from ninx_kernels import cuda
from ninx_kernels.cuda import batchnorm, launch
from ninx_kernels.cuda.emulator import EmulatedModule

needs_cuda = pytest.mark.skipif(not (cuda.available() or os.environ.get("NINX_EXPECT_CUDA") == "1"),
                                reason="no GPU, and NINX_CUDA_EMULATE is not 1")


@pytest.fixture(scope="module")
def real():
    """The cuda device these tests run on: the GPU, or the emulator with NINX_CUDA_EMULATE=1."""
    return cuda._emulated_device() if os.environ.get("NINX_CUDA_EMULATE") == "1" else cuda._gpu_device()


class Recording:
    """A cuda device that notes each launch (instance, grid, arguments), and may claim another number of
    multiprocessors, which the wrappers size their grids by."""

    def __init__(self, device, multiprocessors=None):
        self.device, self.xp = device, device.xp
        self.multiprocessors = multiprocessors or device.multiprocessors
        self.launches = []

    def function(self, source, instance):
        kernel = self.device.function(source, instance)

        def launch_(grid, block, args):
            self.launches.append((instance, grid, args))
            return kernel(grid, block, args)
        return launch_


def _host(array):
    return array if isinstance(array, np.ndarray) else array.get()


def _address(array):
    return array.data.ptr if hasattr(array.data, "ptr") else array.ctypes.data


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


RNG = np.random.default_rng(2)
X = RNG.standard_normal((2, 3, 7, 6))
POOL = window2d("pool", X.shape, 2, 1, 1)  # output (2, 3, 8, 7): larger than the input
DEPTHWISE = window2d("conv2d", X.shape, 3, 1, 2, dilation=2)  # multiplier 2: output (2, 6, 7, 6)
W = RNG.standard_normal((6, 1, 3, 3))
GY_X, GY_POOL, GY_DEPTHWISE = (RNG.standard_normal(s) for s in (X.shape, POOL.output_shape, (2, 6, 7, 6)))
ARGMAX = get_backend("cpu").max_pool2d(X, POOL)[1]
PER_CHANNEL = [RNG.standard_normal(3), RNG.uniform(0.5, 2, 3), RNG.standard_normal(3), RNG.standard_normal(3)]

# kernel table entry: (its arguments, given a function that puts an array on the device; the largest extent)
CASES = {
    "relu": (lambda a: (a(X), np.inf), X.size),
    "relu_backward": (lambda a: (a(X), a(GY_X), 6.0), X.size),
    "relu_backward_bias": (lambda a: (a(X), a(GY_X), np.inf), X.size),
    "max_pool2d": (lambda a: (a(X), POOL), GY_POOL.size),
    "max_pool2d_backward": (lambda a: (a(GY_POOL), a(ARGMAX), POOL), GY_POOL.size),
    "avg_pool2d": (lambda a: (a(X), POOL, True, 0), GY_POOL.size),
    "avg_pool2d_backward": (lambda a: (a(GY_POOL), POOL, False, 0), GY_POOL.size),
    "depthwise_conv2d": (lambda a: (a(X), a(W), DEPTHWISE), GY_DEPTHWISE.size),
    "depthwise_conv2d_backward_input": (lambda a: (a(GY_DEPTHWISE), a(W), DEPTHWISE), GY_DEPTHWISE.size),
    "depthwise_conv2d_backward_weight": (lambda a: (a(X), a(GY_DEPTHWISE), DEPTHWISE), GY_DEPTHWISE.size),
    "batch_norm_stats": (lambda a: (a(X),), X.size),
    "batch_norm_forward": (lambda a: (a(X), *map(a, PER_CHANNEL)), X.size),
    "batch_norm_backward": (lambda a: (a(X), a(GY_X), *map(a, PER_CHANNEL[:3]), True), X.size),
}


@needs_cuda
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_wrapper_launches_the_int_instance_exactly_when_its_arrays_fit(real, monkeypatch, name):
    """With the limit at the largest array's size, the long long instances; one above it, the int ones; the
    same bits either way, and the CPU's values."""
    arguments, extent = CASES[name]
    expected = getattr(get_backend("cpu"), name)(*arguments(lambda v: v))
    results = {}
    for limit, index in ((extent, "long long"), (extent + 1, "int")):
        monkeypatch.setattr(launch, "INDEX_LIMIT", limit)
        device = Recording(real)
        got = getattr(cuda.kernel_table(device), name)(*arguments(real.xp.asarray))
        results[index] = [_host(g) for g in (got if isinstance(got, tuple) else (got,))]
        indexed = [instance for instance, _, _ in device.launches if "," in instance]
        assert indexed and all(instance.endswith(f", {index}>") for instance in indexed), device.launches
    for on_int, on_long, on_cpu in zip(results["int"], results["long long"],
                                       expected if isinstance(expected, tuple) else (expected,)):
        assert on_int.tobytes() == on_long.tobytes()
        np.testing.assert_allclose(on_int, on_cpu, rtol=1e-12, atol=1e-12)


# ---- ReLU: 16-byte vectors where aligned, single values for the rest ---------------------------------------

def _clamp_inputs(xp, dtype, size, offset, seed):
    """(x, gy): `size` values (NaN, ±inf, 0 and 6 among them) starting `offset` elements past a 16-byte
    boundary of their buffers."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((2, size)) * 5
    values[0, ::5] = np.resize([np.nan, np.inf, -np.inf, 0.0, 6.0, -0.0], values[0, ::5].size)
    views = []
    for row in values:
        buffer = xp.empty(size + offset + 16, dtype=dtype)
        start = (-_address(buffer) % 16) // buffer.itemsize + offset
        buffer[start:start + size] = xp.asarray(row.astype(dtype))
        views.append(buffer[start:start + size])
    return views


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0, 1, 2, 4])
@pytest.mark.parametrize("size", [1, 3, 4, 5, 8, 9, 31, 1027])
def test_relu_uses_vectors_only_where_aligned_and_handles_the_tail(real, dtype, offset, size):
    x, gy = _clamp_inputs(real.xp, dtype, size, offset, seed=size)
    aligned = offset * np.dtype(dtype).itemsize % 16 == 0
    cpu = get_backend("cpu")
    for cap in (np.inf, 6.0):
        device = Recording(real)
        y, gx = cuda.activation.relu(device, x, cap), cuda.activation.relu_backward(device, x, gy, cap)
        assert [args[-3] for _, _, args in device.launches] == [size // (16 // x.itemsize) if aligned else 0] * 2
        assert np.array_equal(_host(y), cpu.relu(_host(x), cap), equal_nan=True)
        assert np.array_equal(_host(gx), cpu.relu_backward(_host(x), _host(gy), cap), equal_nan=True)


@needs_cuda
def test_relu_backward_with_one_misaligned_operand_goes_one_value_at_a_time(real):
    (x, _), (_, gy) = _clamp_inputs(real.xp, np.float32, 33, 0, 1), _clamp_inputs(real.xp, np.float32, 33, 3, 2)
    device = Recording(real)
    gx = cuda.activation.relu_backward(device, x, gy, np.inf)
    assert device.launches[0][2][-3] == 0
    assert np.array_equal(_host(gx), get_backend("cpu").relu_backward(_host(x), _host(gy), np.inf), equal_nan=True)


# ---- batch norm: a (channel, slice) grid that fills the GPU, merged in a fixed order -----------------------

def test_batch_norm_cuts_few_channels_into_enough_slices():
    h100 = SimpleNamespace(multiprocessors=132)
    for channels, values in ((96, 32 * 56 * 56), (3, 10**6), (384, 8 * 28 * 28)):
        slices, length = batchnorm._slicing(h100, channels, values)
        assert (slices - 1) * length < values <= slices * length  # no slice empty, every value in one
        assert channels * slices >= launch.BLOCKS_PER_MULTIPROCESSOR * 132 or length < 2 * batchnorm.MIN_SLICE
    assert batchnorm._slicing(h100, 96, 32 * 56 * 56)[0] == 11  # 1056 blocks for C = 96
    assert batchnorm._slicing(h100, 2048, 10**6) == (1, 10**6)  # enough channels: one slice each
    assert batchnorm._slicing(h100, 4, 1000) == (1, 1000)  # too few values to share
    assert batchnorm._slicing(h100, 4, 0) == (1, 1)


@needs_cuda
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_batch_norm_over_many_slices_matches_the_cpu_and_repeats_bit_for_bit(real, monkeypatch, dtype, tol):
    """Two channels of 2697 values on a GPU of 132 multiprocessors, slices of at least 100: 26 slices, the last
    one short. An offset of 1000 over a spread of 1 would cancel in Σx² − M·mean²; Chan's merge keeps it."""
    monkeypatch.setattr(batchnorm, "MIN_SLICE", 100)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 2, 29, 31)) + 1000).astype(dtype)
    gy = rng.standard_normal(x.shape).astype(dtype)
    runs = []
    for _ in range(2):
        device = Recording(real, multiprocessors=132)
        table, a = cuda.kernel_table(device), real.xp.asarray
        mean, var = table.batch_norm_stats(a(x))
        inv_std = 1 / real.xp.sqrt(var + dtype(1e-5))
        runs.append([_host(v) for v in (mean, var, *table.batch_norm_backward(a(x), a(gy), mean, inv_std,
                                                                               a(np.ones(2, dtype)), True))])
        grids = [grid for instance, grid, _ in device.launches if "partials" in instance]
        assert grids == [(2, 26), (2, 26)]
    assert all(first.tobytes() == second.tobytes() for first, second in zip(*runs))
    mean, var, *gradients = runs[0]
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2, 3)), rtol=tol)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2, 3)), rtol=tol)
    on_cpu = get_backend("cpu").batch_norm_backward(x, gy, mean, 1 / np.sqrt(var + dtype(1e-5)), np.ones(2, dtype),
                                                    True)
    for got, want in zip(gradients, on_cpu):
        np.testing.assert_allclose(got, want, rtol=10 * tol, atol=10 * tol)
