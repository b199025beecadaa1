"""The CUDA emulation layer itself: the execution model it gives kernels (thread and block coordinates, shared
memory, barriers that threads may leave by returning, atomics, warp shuffles), the checks around a launch, and
proof that it catches what it exists to catch — a missing __syncthreads() and an out-of-bounds write, in small
planted kernels (tests/cuda/planted.cu), and in copies of the real GEMM and block reduction with a barrier
taken out."""
import os
import re
import shutil

import numpy as np
import pytest

from ninx_kernels.cuda import batchnorm as cuda_batchnorm
from ninx_kernels.cuda import gemm as cuda_gemm
from ninx_kernels.cuda import sources
from ninx_kernels.cuda.emulator import EmulatedDevice, EmulatedModule, KernelFault, build

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                                reason="the emulator needs a host C++ compiler")

SNIPPETS = os.path.join(os.path.dirname(__file__), "cuda")
PROBES = ["coordinates", "reverse_in_block", "early_return", "tickets", "shuffle_sums", "split_warp",
          "copy_all_but_last", "add_next", "scale<float>", "scale<double>"]
PLANTED = ["reverse_without_barrier", "copy_one_too_far", "shift_down"]


@pytest.fixture(scope="module")
def probes():
    return EmulatedModule(os.path.join(SNIPPETS, "probes.cu"), PROBES)


@pytest.fixture(scope="module")
def planted():
    return EmulatedModule(os.path.join(SNIPPETS, "planted.cu"), PLANTED)


# ---- the execution model --------------------------------------------------------------------------------

@pytest.mark.parametrize("grid, block", [((3,), (5,)), ((2, 3), (4, 2)), ((2, 1, 2), (3, 2, 2))])
def test_each_thread_sees_its_own_coordinates(probes, grid, block):
    grid3, block3 = (tuple(grid) + (1, 1))[:3], (tuple(block) + (1, 1))[:3]
    blocks, threads = np.prod(grid3), np.prod(block3)
    where = np.zeros((blocks * threads, 12), np.int32)
    probes.get_function("coordinates")(grid, block, (where,))
    rank = 0
    for bz, by, bx in np.ndindex(*grid3[::-1]):
        for tz, ty, tx in np.ndindex(*block3[::-1]):
            assert tuple(where[rank]) == (tx, ty, tz, bx, by, bz) + block3 + grid3
            rank += 1


def test_shared_memory_is_the_blocks_and_starts_poisoned(probes):
    values = np.arange(3 * 64, dtype=np.float32)
    reversed_, before = np.zeros_like(values), np.zeros_like(values)
    probes.get_function("reverse_in_block")((3,), (64,), (values, reversed_, before))
    assert np.array_equal(reversed_, values.reshape(3, 64)[:, ::-1].ravel())
    # every block starts from NaN bytes, not from what the block before it left in the tile
    assert np.all(before.view(np.uint32) == 0xFFFFFFFF)


@pytest.mark.parametrize("seed", range(4))
def test_threads_that_return_early_leave_the_barrier(probes, seed):
    leave = (np.random.default_rng(seed).random(96) < 0.4).astype(np.int32)
    sums = np.full(96, -1, np.int32)
    probes.get_function("early_return")((1,), (96,), (leave, sums))
    staying = np.flatnonzero(leave == 0)
    assert np.all(sums[staying] == np.sum(staying ** 2))


def test_atomic_add_returns_the_old_value(probes):
    bins = np.random.default_rng(0).integers(0, 4, 2 * 40).astype(np.int32)
    ticket, histogram = np.zeros(80, np.int32), np.zeros(8, np.int32)
    probes.get_function("tickets")((2,), (40,), (bins, ticket, histogram))
    for block in range(2):
        assert sorted(ticket[40 * block:40 * block + 40]) == list(range(40))
        assert list(histogram[4 * block:4 * block + 4]) == list(np.bincount(bins[40 * block:40 * block + 40],
                                                                            minlength=4))


@pytest.mark.parametrize("width", [32, 8, 2])
def test_warp_shuffle_down_follows_cuda(probes, width):
    values = np.random.default_rng(width).standard_normal(64)
    sums = np.zeros(64)
    probes.get_function("shuffle_sums")((1,), (64,), (values, np.int32(width), sums))
    expected, lane = values.copy(), np.arange(64) % width
    offset = width // 2
    while offset:
        source = np.where(lane + offset < width, np.arange(64) + offset, np.arange(64))
        expected = expected + expected[np.minimum(source, 63)]
        offset //= 2
    assert np.array_equal(sums, expected)
    assert np.allclose(sums[::width], values.reshape(-1, width).sum(axis=1))


def test_a_deadlock_is_reported_not_hung(probes):
    with pytest.raises(KernelFault, match="split_warp: deadlock"):
        probes.get_function("split_warp")((1,), (32,), (np.zeros(32, np.float32),))


# ---- the checks around a launch -------------------------------------------------------------------------

def test_outputs_are_poisoned_before_the_launch(probes):
    x, y = np.arange(10, dtype=np.float32), np.zeros(10, np.float32)
    probes.get_function("copy_all_but_last")((1,), (16,), (x, np.int32(10), y))
    assert np.array_equal(y[:9], x[:9]) and np.isnan(y[9])  # not the 0 that was there


def test_reads_past_the_end_see_nan(probes):
    x, y = np.arange(10, dtype=np.float32), np.zeros(10, np.float32)
    probes.get_function("add_next")((1,), (16,), (x, np.int32(10), y))
    assert np.array_equal(y[:9], x[:9] + x[1:]) and np.isnan(y[9])


@pytest.mark.parametrize("args, error, words", [
    ((np.ones(4, np.float32), np.float64(2), np.int64(4), np.ones(4, np.float32)), TypeError, "float32 scalar"),
    ((np.ones(4, np.float32), np.float32(2), 4, np.ones(4, np.float32)), TypeError, "int64 scalar"),
    ((np.ones(4, np.float32), np.float32(2), np.int32(4), np.ones(4, np.float32)), TypeError, "int64 scalar"),
    ((np.ones(4), np.float32(2), np.int64(4), np.ones(4, np.float32)), TypeError, "array of float32"),
    ((np.ones(4, np.float32), np.float32(2), np.int64(4)), TypeError, "takes 4 arguments"),
    ((None, np.float32(2), np.int64(4), np.ones(4, np.float32)), TypeError, "cupy#9046"),
])
def test_arguments_must_match_the_c_signature(probes, args, error, words):
    """What passes here reaches cupy bit for bit: a python int would go to the GPU as 8 bytes, say, and None
    as a wild pointer."""
    with pytest.raises(error, match=words):
        probes.get_function("scale<float>")((1,), (4,), args)


@pytest.mark.parametrize("grid, block, words", [((1,), (2048,), "invalid block"), ((1, 70000), (32,), "invalid grid"),
                                                ((1,), (2, 2, 65), "invalid block"), ((0,), (32,), "invalid grid")])
def test_bad_launch_configurations_are_refused(probes, grid, block, words):
    x = np.ones(4, np.float32)
    with pytest.raises(KernelFault, match=words):
        probes.get_function("scale<float>")(grid, block, (x, np.float32(2), np.int64(4), np.empty_like(x)))


def test_a_written_array_may_not_overlap_another(probes):
    x = np.ones(9, np.float32)
    with pytest.raises(KernelFault, match="overlap"):
        probes.get_function("scale<float>")((1,), (8,), (x[1:], np.float32(2), np.int64(8), x[:8]))


def test_libraries_are_cached_where_the_environment_says(monkeypatch, tmp_path):
    monkeypatch.setenv("NINX_CUDA_EMULATOR_CACHE", str(tmp_path))
    library = build.module_library(os.path.join(SNIPPETS, "planted.cu"), PLANTED)
    assert library.parent == tmp_path and library.exists()
    built = library.stat().st_mtime_ns
    assert build.module_library(os.path.join(SNIPPETS, "planted.cu"), PLANTED).stat().st_mtime_ns == built


# ---- planted bugs: the layer catches what it exists to catch ----------------------------------------------

def test_a_missing_barrier_gives_wrong_results(probes, planted):
    values = np.arange(2 * 64, dtype=np.float32)
    right, wrong, before = np.zeros_like(values), np.zeros_like(values), np.zeros_like(values)
    probes.get_function("reverse_in_block")((2,), (64,), (values, right, before))
    planted.get_function("reverse_without_barrier")((2,), (64,), (values, wrong))
    assert np.array_equal(right, values.reshape(2, 64)[:, ::-1].ravel())
    assert np.isnan(wrong).sum() > 32  # threads read the tile before the others wrote it: still NaN


@pytest.mark.parametrize("kernel, words", [("copy_one_too_far", "bytes 400 to 403 of its 400"),
                                           ("shift_down", "bytes -4 to -1 of its 400")])
def test_an_out_of_bounds_write_names_the_kernel_and_the_buffer(planted, kernel, words):
    x, y = np.ones(100, np.float32), np.zeros(100, np.float32)
    with pytest.raises(KernelFault, match=f"{kernel} wrote out of bounds of argument 2 \\(float\\*, float32 array "
                                          f"of shape \\(100,\\)\\): {words} changed"):
        planted.get_function(kernel)((4,), (32,), (x, np.int32(100), y))


class _PlantedDevice(EmulatedDevice):
    """The emulated device, with one module taken from a changed copy of its source."""

    def __init__(self, module):
        self.module = module

    def function(self, module, name):
        return self.module.get_function(name)


def _without_barrier(tmp_path, module, which, names, header=None):
    """`module`.cu with the `which`-th __syncthreads() of its text — or of the header it includes — removed
    (None: intact), built for the emulator. The headers are copied beside the copy (so every include of the
    planted one finds it), and its first line names the change: a test source is cached by its own content."""
    planted = sources.DIRECTORY / header if header else sources.path(module)
    text = planted.read_text()
    barriers = [m.start() for m in re.finditer(r"__syncthreads\(\);", text)]
    assert len(barriers) == 2
    if which is not None:
        text = text[:barriers[which]] + text[barriers[which] + len("__syncthreads();"):]
    path = tmp_path / f"{module}_barrier_{which}" / f"{module}.cu"
    path.parent.mkdir()
    if header:
        for original in sources.DIRECTORY.glob("*.cuh"):
            (path.parent / original.name).write_text(text if original.name == header else original.read_text())
        text = sources.path(module).read_text()
    path.write_text(f"// {planted.name} without its barrier {which}\n{text}")
    return _PlantedDevice(EmulatedModule(path, names))


@pytest.mark.parametrize("which", [0, 1])
def test_the_real_gemm_without_a_barrier_is_caught(tmp_path, which):
    """Either barrier of the GEMM's mainloop (mainloop.cuh: after staging the first step, and at the end of
    every step, which publishes the next buffer and retires the one just used), taken out, makes its emulated
    result wrong — and the same build with both barriers is right, so it is the barrier that matters."""
    rng = np.random.default_rng(which)
    a, b = rng.standard_normal((2, 70, 40)).astype(np.float32), rng.standard_normal((2, 40, 50)).astype(np.float32)
    expected = np.einsum("imk,ikn->imn", a.astype(np.float64), b.astype(np.float64))
    intact, broken = np.empty((2, 70, 50), np.float32), np.empty((2, 70, 50), np.float32)
    names = cuda_gemm.SOURCE.instances
    cuda_gemm.gemm(_without_barrier(tmp_path, "gemm", None, names, "mainloop.cuh"), a, b, intact)
    cuda_gemm.gemm(_without_barrier(tmp_path, "gemm", which, names, "mainloop.cuh"), a, b, broken)
    assert np.allclose(intact, expected, atol=1e-4)
    assert not np.allclose(broken, expected, atol=1e-4)


@pytest.mark.parametrize("which", [0, 1])
def test_the_real_block_sum_without_a_barrier_is_caught(tmp_path, which):
    """batchnorm.cu's block_sum, run twice in a row by batch_norm_stats_partials, has a barrier before the warps'
    sums are written (the last call's readers must be done) and one after: without either, the statistics are
    wrong. The first is a race between warps that only shows because warps run on independently."""
    x = np.random.default_rng(which).standard_normal((3, 4, 7, 9))
    names = ["batch_norm_stats_partials<double, int>", "batch_norm_stats_merge<double>"]
    mean, var = cuda_batchnorm.batch_norm_stats(_without_barrier(tmp_path, "batchnorm", None, names), x)
    assert np.allclose(mean, x.mean(axis=(0, 2, 3))) and np.allclose(var, x.var(axis=(0, 2, 3)))
    mean, var = cuda_batchnorm.batch_norm_stats(_without_barrier(tmp_path, "batchnorm", which, names), x)
    assert not (np.allclose(mean, x.mean(axis=(0, 2, 3))) and np.allclose(var, x.var(axis=(0, 2, 3))))
