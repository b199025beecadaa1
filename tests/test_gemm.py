"""The GEMM core against np.einsum in float64: odd sizes, strided/broadcast views, batch rules, errors.

Sizes at the edges of the register tile are those of the target this process compiles for
(tests/test_targets.py runs this file again for other targets); tests that span several cache blocks
shrink the blocks to a few tiles (`use_small_blocks`) rather than grow the operands to the host's caches."""
import ctypes
import importlib
import json
import mmap
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ninx_kernels.cpu.borrowed import borrowed
from ninx_kernels.cpu.gemm import (IN_PLACE_DEPTH, MR, NR_VECTORS, Gathered, blocking, gemm, in_place_rows, pack,
                                   tile_columns)
from ninx_kernels.cpu.gemm_ir import PREFETCH_TAIL, VECTOR_BYTES, copy_run, gather_padded
from ninx_kernels.target import Target

DTYPES = (np.float32, np.float64)
# (Ba, Bb, Bo): each divides B = max; Bo < B sums products into out (batch-reduce)
BATCHES = [(1, 1, 1), (3, 3, 3), (1, 4, 4), (4, 1, 4), (4, 4, 1), (6, 3, 2), (2, 6, 3), (1, 1, 3), (5, 5, 1)]
LAYOUTS = ("contiguous", "transposed", "sliced", "reversed", "broadcast")


def edge_sizes(dtype):
    """Matrix extents that straddle the register tile and the k block for dtype."""
    nr = tile_columns(np.dtype(dtype).itemsize)
    return [0, 1, 2, MR - 1, MR, MR + 1, nr - 1, nr, nr + 1, 2 * nr + 3]


def strided_view(rng, batch, rows, cols, dtype, layout):
    """A (batch, rows, cols) array of values in [-1, 1) laid out in memory as `layout` says."""
    if layout == "transposed":  # columns are contiguous: the matrix of a .transpose(0, 2, 1)
        return rng.uniform(-1, 1, (batch, cols, rows)).astype(dtype).transpose(0, 2, 1)
    if layout == "sliced":  # every other row, every third column, from an offset
        return rng.uniform(-1, 1, (batch, 2 * rows + 1, 3 * cols + 2)).astype(dtype)[:, 1::2, 2::3]
    if layout == "reversed":  # negative strides on every axis
        return rng.uniform(-1, 1, (batch, rows, cols)).astype(dtype)[::-1, ::-1, ::-1]
    if layout == "broadcast":  # stride 0 over the batch and over the rows
        return np.broadcast_to(rng.uniform(-1, 1, (1, 1, cols)).astype(dtype), (batch, rows, cols))
    return rng.uniform(-1, 1, (batch, rows, cols)).astype(dtype)


def reference(a, b, out_before, accumulate):
    """(Σ_i a[i % Ba] @ b[i % Bb] into out[i % Bo], elementwise bound on |terms|) in float64."""
    a64, b64 = np.array(a, np.float64), np.array(b, np.float64)
    batch, bo = max(len(a), len(b), len(out_before)), len(out_before)
    total = np.array(out_before, np.float64) if accumulate else np.zeros(out_before.shape)
    scale = np.abs(total)
    for i in range(batch):
        total[i % bo] += np.einsum("mk,kn->mn", a64[i % len(a)], b64[i % len(b)])
        scale[i % bo] += np.einsum("mk,kn->mn", np.abs(a64[i % len(a)]), np.abs(b64[i % len(b)]))
    return total, scale


def check(a, b, out, accumulate, operands=None):
    """Run gemm on (a, b, out) — or on `operands` standing for a and b (packed, gathered) — and compare with
    the float64 reference of a @ b within a K-scaled rounding bound."""
    expected, scale = reference(a, b, out.copy(), accumulate)
    result = gemm(*(operands or (a, b)), out, accumulate=accumulate)
    assert result is out
    eps = np.finfo(out.dtype).eps
    bound = 2 * eps * (a.shape[2] + 2) * scale + np.finfo(out.dtype).tiny
    assert np.all(np.abs(out - expected) <= bound), np.max(np.abs(out - expected) - bound)


@st.composite
def problems(draw):
    """(a, b, out, accumulate) with random sizes, layouts, batch rule and dtype."""
    dtype = draw(st.sampled_from(DTYPES))
    size = st.one_of(st.sampled_from(edge_sizes(dtype)), st.integers(0, 40))
    m, n = draw(size), draw(size)
    kc = blocking(np.dtype(dtype).itemsize).kc
    k = draw(st.one_of(size, st.sampled_from([kc - 1, kc, kc + 1])))
    ba, bb, bo = draw(st.sampled_from(BATCHES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = strided_view(rng, ba, m, k, dtype, draw(st.sampled_from(LAYOUTS)))
    b = strided_view(rng, bb, k, n, dtype, draw(st.sampled_from(LAYOUTS)))
    out = rng.uniform(-1, 1, (bo, m, n)).astype(dtype)
    return a, b, out, draw(st.booleans())


@settings(max_examples=80, deadline=None)
@given(problems())
def test_matches_einsum(problem):
    check(*problem)


def use_small_blocks(monkeypatch, dtype, in_place_rows):
    """Shrink this dtype's cache blocks to a few register tiles (kc 16, mc 2·MR, nc one panel) so that small
    operands span several of each; a row-major B is read in place in products of up to `in_place_rows` rows.
    Returns the Blocking."""
    core = importlib.import_module("ninx_kernels.cpu.gemm")
    blocks = core.Blocking(16, 2 * MR, tile_columns(np.dtype(dtype).itemsize))
    monkeypatch.setitem(core._blockings, np.dtype(dtype), blocks)
    monkeypatch.setitem(core._in_place_rows, np.dtype(dtype), in_place_rows)
    monkeypatch.setattr(core, "_workspaces", {})  # the workers' buffers are sized from the blocks
    return blocks


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [PREFETCH_TAIL - 1, PREFETCH_TAIL, PREFETCH_TAIL + 1, 2 * PREFETCH_TAIL + 3])
@pytest.mark.parametrize("accumulate", [False, True])
def test_depths_around_the_tail_where_c_is_asked_for(dtype, k, accumulate):
    """The micro-kernel's k loop runs in two parts when it is longer than PREFETCH_TAIL (c is asked for between
    them): every step is taken once, in either part, for whole tiles and for partial ones."""
    rng = np.random.default_rng(k)
    m, n = 2 * MR + 3, 2 * tile_columns(np.dtype(dtype).itemsize) + 5
    a, b = strided_view(rng, 1, m, k, dtype, "contiguous"), strided_view(rng, 1, k, n, dtype, "transposed")
    check(a, b, rng.uniform(-1, 1, (1, m, n)).astype(dtype), accumulate)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("b_layout", ["transposed", "contiguous"])
@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("batches", [(1, 4, 4), (4, 1, 4), (4, 4, 1), (3, 3, 3)])
def test_spans_several_cache_blocks(monkeypatch, dtype, layout, b_layout, in_place, batches):
    """Several blocks of depth, rows and columns, each ending mid-tile; a row-major B read in place or packed,
    a broadcast A or B packed once ahead."""
    rng = np.random.default_rng(0)
    (ba, bb, bo), (kc, mc, nc) = batches, use_small_blocks(monkeypatch, dtype, 1 << 30 if in_place else 0)
    m, n, k = 2 * mc + 5, 3 * nc + 7, 2 * kc + 5
    a = strided_view(rng, ba, m, k, dtype, layout)
    b = strided_view(rng, bb, k, n, dtype, b_layout)
    check(a, b, rng.uniform(-1, 1, (bo, m, n)).astype(dtype), True)


@pytest.mark.parametrize("serial", [True, False], ids=["calling thread", "all workers"])
@pytest.mark.parametrize("batches", [(1, 4, 4), (4, 1, 4), (4, 4, 1), (6, 3, 2)])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_serial_and_parallel_kernels_give_the_same_sums(monkeypatch, serial, batches, layout):
    """Work below SERIAL_FLOPS runs on the calling thread (`_gemm_serial`, on `borrowed` arrays), the rest on
    every worker (`_gemm_kernel`); in both, a worker keeps the blocks it packed for its next task, so a
    broadcast operand spanning several blocks is repacked only where its block changes."""
    core = importlib.import_module("ninx_kernels.cpu.gemm")
    monkeypatch.setattr(core, "SERIAL_FLOPS", 1 << 62 if serial else 0)
    rng = np.random.default_rng(9)
    (ba, bb, bo), (kc, mc, nc) = batches, use_small_blocks(monkeypatch, np.float64, 0)
    m, n, k = mc + MR + 3, 2 * nc + 5, 2 * kc + 3
    a = strided_view(rng, ba, m, k, np.float64, layout)
    b = strided_view(rng, bb, k, n, np.float64, "contiguous")
    check(a, b, rng.uniform(-1, 1, (bo, m, n)), True)


def test_borrowed_arrays_are_the_same_memory_and_other_values_pass_unchanged():
    @numba.njit
    def through_borrowed(x, job):
        view = borrowed(x)[1:]
        values, scale = borrowed(job)
        view[0] = scale  # writes x[1]
        return view.sum() + values.sum()

    x, values = np.arange(4.0), np.ones(3)
    assert through_borrowed(x, (values, 7.0)) == 7.0 + 2 + 3 + 3
    assert x[1] == 7.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batches", [(1, 1, 1), (3, 3, 3), (1, 4, 4), (4, 1, 2)])
@pytest.mark.parametrize("which", ["a", "b", "both"])
def test_packed_operands_give_the_product_of_what_was_packed(monkeypatch, dtype, batches, which):
    """Operands packed ahead (`pack`), from strided views, spanning several blocks and ending mid-tile."""
    rng = np.random.default_rng(5)
    (ba, bb, bo), (kc, mc, nc) = batches, use_small_blocks(monkeypatch, dtype, 0)
    m, n, k = mc + MR + 1, 2 * nc + 3, kc + 5
    a = strided_view(rng, ba, m, k, dtype, "transposed")
    b = strided_view(rng, bb, k, n, dtype, "sliced")
    operands = (pack(a, "a") if which != "b" else a, pack(b, "b") if which != "a" else b)
    check(a, b, rng.uniform(-1, 1, (bo, m, n)).astype(dtype), True, operands)


CACHES = {"zen3": (32 << 10, 512 << 10, 32 << 20, 8), "zen4": (32 << 10, 1 << 20, 32 << 20, 8),
          "zen5": (48 << 10, 1 << 20, 32 << 20, 12), "ice lake": (48 << 10, 1280 << 10, 48 << 20, 12),
          "small": (16 << 10, 256 << 10, 2 << 20, 4), "tiny": (4 << 10, 32 << 10, 256 << 10, 2)}


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("caches", CACHES.values(), ids=CACHES.keys())
def test_blocks_fill_the_caches_they_are_sized_for(itemsize, caches):
    """`blocking`'s rules, each the largest multiple of its step that fits: the A micro-panel (MR × kc) and
    one B micro-panel (kc × NR) in all but one of L1d's ways, the B block (kc × nc) in half of L2, the A
    block (mc × kc) in an eighth of L3; the rows of a product whose B is read in place (`in_place_rows`)
    fill half of L2 with A rows IN_PLACE_DEPTH deep."""
    l1d, l2, l3, ways = caches
    target = Target("any", "", VECTOR_BYTES, 32, True, l1d, l2, l3, ways)
    kc, mc, nc = blocking(itemsize, target)
    nr, rows = tile_columns(itemsize), in_place_rows(itemsize, target)
    assert kc % 16 == 0 and 16 <= kc <= 512 and mc % MR == 0 and nc % nr == 0 and rows % MR == 0

    def largest(extent, step, least, bytes_each, room):
        return extent == least if extent * bytes_each > room else (extent + step) * bytes_each > room

    assert largest(kc, 16, 16, (MR + nr) * itemsize, l1d * (ways - 1) // ways) or kc == 512
    assert largest(nc, nr, nr, kc * itemsize, l2 // 2)
    assert largest(mc, MR, MR, kc * itemsize, l3 // 8)
    assert largest(rows, MR, MR, IN_PLACE_DEPTH * itemsize, l2 // 2)


@pytest.mark.parametrize("itemsize", [4, 8])
def test_rows_read_in_place_do_not_follow_l1d(itemsize):
    """A smaller L1d gives a shallower kc but not more rows whose B is read in place: with the rows tied to
    kc, the Zen 3's kc of 320 let its 192-row 1×1 convolutions read B in place, 0.83–0.88× as fast."""
    wide, narrow = (Target("any", "", VECTOR_BYTES, 32, True, l1d << 10, 512 << 10, 32 << 20, 8) for l1d in (64, 16))
    assert blocking(itemsize, narrow).kc < blocking(itemsize, wide).kc
    assert in_place_rows(itemsize, narrow) == in_place_rows(itemsize, wide)


def packed_by_definition(x, side, kc):
    """The panels of `Packed`'s docstring, element by element: block (k0, m0) of A at k0·m_pad + m0·depth,
    (k, r) at k·MR + r; block (k0, n0) of B at k0·n_pad + n0·depth, (k, j) at k·NR + j; zeros past the edge."""
    matrix = x if side == "a" else x.T  # (wide, depth): rows of A, columns of B
    wide, depth = matrix.shape
    step = MR if side == "a" else tile_columns(x.itemsize)
    padded = -(-wide // step) * step
    panels = np.zeros(padded * depth, x.dtype)
    for k0 in range(0, depth, kc):
        block = min(kc, depth - k0)
        for w0 in range(0, padded, step):
            for k in range(block):
                for j in range(step):
                    if w0 + j < wide:
                        panels[k0 * padded + w0 * block + k * step + j] = matrix[w0 + j, k0 + k]
    return panels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", ["a", "b"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_packed_panels_are_the_definition(dtype, side, layout):
    """Every element of a packed operand, pad zeros included, for the register-transposed layouts (a
    row-major A, a column-major B) and the plain ones: whole and partial transposes, rows that abut."""
    rng = np.random.default_rng(11)
    kc, width = blocking(np.dtype(dtype).itemsize).kc, VECTOR_BYTES // np.dtype(dtype).itemsize
    wide, depth = 2 * max(MR, tile_columns(np.dtype(dtype).itemsize)) + 3, kc + width + 3
    x = strided_view(rng, 2, wide, depth, dtype, layout)
    x = x if side == "a" else x.transpose(0, 2, 1)
    packed = pack(x, side)
    for i in range(2):
        np.testing.assert_array_equal(packed.panels[i], packed_by_definition(x[i], side, packed.kc))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batches", [(1, 1, 1), (1, 3, 3), (2, 2, 1)])
def test_gathered_b_is_read_through_its_offset_tables(dtype, batches):
    """B[i, k, j] = base[rows[i, k] + cols[j]]: runs of consecutive offsets broken at random, stride-2 and
    repeated offsets, columns ending mid-panel, rows spanning several k blocks."""
    rng = np.random.default_rng(6)
    (ba, bb, bo), nr, kc = batches, tile_columns(np.dtype(dtype).itemsize), blocking(np.dtype(dtype).itemsize).kc
    m, k, n = MR + 5, kc + 7, 3 * nr + 5
    steps = rng.choice([1, 1, 1, 2, 0, 9], size=n)
    cols = np.concatenate([[0], np.cumsum(steps[1:])])
    base = rng.uniform(-1, 1, cols[-1] + 300).astype(dtype)
    rows = rng.integers(0, 300, (bb, k))
    a = strided_view(rng, ba, m, k, dtype, "contiguous")
    dense = base[rows[:, :, None] + cols[None, None, :]]  # the matrix the tables stand for
    check(a, dense, rng.uniform(-1, 1, (bo, m, n)).astype(dtype), False, (a, Gathered(base, rows, cols)))


ONE_BUILD_PER_DTYPE = """
import importlib, json, numba, numpy as np
core = importlib.import_module("ninx_kernels.cpu.gemm")
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    a, b = rng.standard_normal((1, 40, 30)).astype(dtype), rng.standard_normal((6, 30, 50)).astype(dtype)
    frozen = [x.copy() for x in (a, b)]
    for x in frozen:
        x.setflags(write=False)  # as memory-mapped weights are
    rows = np.arange(6)[:, None] * 1500 + np.arange(30)[None, :] * 50  # b's offsets: b[i, k, j] at i·1500 + k·50 + j
    gathered = core.Gathered(b.reshape(-1), rows, np.arange(50))
    for serial in (True, False):
        core.SERIAL_FLOPS = 1 << 62 if serial else 0
        for x, y in [(a, b), frozen, (a[:, ::2], b.transpose(0, 2, 1)[:, :30, :25]), (core.pack(a, "a"), b),
                     (a, core.pack(b, "b")), (a, gathered), (np.broadcast_to(a[:, :1], a.shape), b[:1])]:
            out = np.empty((6, x.shape[1], y.shape[2]), dtype)
            core.gemm(x, y, out, bias=frozen[0][0, :x.shape[1], 0])
            core.gemm(x, y, out, accumulate=True)
print(json.dumps({"threads": numba.get_num_threads(), **{kernel.__name__: [str(s[0].dtype) for s in kernel.signatures]
                                                      for kernel in (core._gemm_kernel, core._gemm_serial)}}))
"""


def test_one_build_of_the_kernels_serves_every_kind_of_operand():
    """Read-only, writeable, packed and gathered operands, read-only biases: the kernels see each array they
    only read as read-only, so Numba builds them once per dtype (a build takes 7–20 s), not once per mix of
    writeable and read-only bases (four each)."""
    done = subprocess.run([sys.executable, "-c", ONE_BUILD_PER_DTYPE], check=True, capture_output=True, text=True)
    built = json.loads(done.stdout.splitlines()[-1])
    assert sorted(built["_gemm_serial"]) == ["float32", "float64"]
    assert sorted(built["_gemm_kernel"]) == (["float32", "float64"] if built["threads"] > 1 else [])


def test_packed_and_gathered_operands_are_checked():
    a, b, out = np.ones((1, 4, 6)), np.ones((1, 6, 5)), np.empty((1, 4, 5))
    with pytest.raises(ValueError, match="packed as side 'b'"):
        gemm(pack(a, "b"), b, out)
    with pytest.raises(ValueError, match="only b may be a Gathered"):
        gemm(Gathered(np.ones(10), np.zeros((1, 4), np.int64), np.arange(6)), b, out)
    with pytest.raises(ValueError, match="different depth blocks"):
        gemm(pack(a, "a")._replace(kc=32), pack(b, "b"), out)
    with pytest.raises(ValueError, match="shapes do not agree"):
        gemm(a, pack(np.ones((1, 7, 5)), "b"), out)
    with pytest.raises(ValueError, match="side must be"):
        pack(a, "c")


def test_columns_past_the_b_block():
    rng = np.random.default_rng(1)
    n = blocking(4).nc + 37
    a = strided_view(rng, 1, 5, 3, np.float32, "contiguous")
    b = strided_view(rng, 1, 3, n, np.float32, "sliced")
    check(a, b, rng.uniform(-1, 1, (1, 5, n)).astype(np.float32), True)


def _ending_at_a_guard_page(shape, dtype):
    """A C-contiguous array whose last element ends a readable page followed by an unreadable one (and the
    mapping, to keep alive): any read past the array's end faults."""
    page = mmap.PAGESIZE
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    pages = -(-size // page)
    region = mmap.mmap(-1, (pages + 1) * page)
    start = ctypes.addressof(ctypes.c_char.from_buffer(region))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    assert libc.mprotect(start + pages * page, page, 0) == 0, "mprotect(PROT_NONE) failed"  # the guard page
    array = np.frombuffer(region, dtype, count=size // np.dtype(dtype).itemsize,
                          offset=pages * page - size).reshape(shape)
    return array, region


@numba.njit
def _gathered(src, step, count, width, dst):
    gather_padded(src, 0, step, count, dst, 0, width)


@pytest.mark.skipif(sys.platform != "linux", reason="maps a guard page with Linux's mprotect")
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_strided_run_is_moved_padded_with_zeros_reading_nothing_past_its_last_element(dtype):
    """gather_padded's contiguous, every-other (two loads and a shuffle) and gathered moves: elements
    src[j·step] for j < count, zeros up to width, and no read past the last element moved."""
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    nr = tile_columns(np.dtype(dtype).itemsize)
    for step in (1, 2, 3):
        for width in sorted({1, lanes - 1, lanes, lanes + 1, nr}):
            for count in range(width + 1):
                length = max(1, (count - 1) * step + 1)
                src, region = _ending_at_a_guard_page((length,), dtype)
                src[...] = np.arange(1, length + 1)
                dst = np.full(width, np.nan, dtype)
                _gathered(src, step, count, width, dst)
                expected = np.concatenate([src[::step][:count], np.zeros(width - count, dtype)])
                assert np.array_equal(dst, expected), (step, width, count)
                del src
                region.close()


@numba.njit
def _copied(src, src_start, count, dst, dst_start):
    copy_run(src, src_start, count, dst, dst_start)


@pytest.mark.skipif(sys.platform != "linux", reason="maps a guard page with Linux's mprotect")
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_run_is_copied_touching_nothing_outside_it(dtype):
    """copy_run, for every count up to three vectors and one more: dst[at + j] = src[start + j] for j < count
    (whole vectors, then one ending at count or two overlapping parts of one), nothing written around the
    run, and no read past its last element."""
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    for count in range(3 * lanes + 2):
        for start, at in ((0, 0), (1, 3)):
            src, region = _ending_at_a_guard_page((start + count or 1,), dtype)
            src[...] = np.arange(1, src.size + 1)
            dst = np.full(at + count + lanes, np.nan, dtype)
            _copied(src, start, count, dst, at)
            expected = np.full_like(dst, np.nan)
            expected[at:at + count] = src[start:start + count]
            assert np.array_equal(dst, expected, equal_nan=True), (count, start, at)
            del src
            region.close()


@pytest.mark.skipif(sys.platform != "linux", reason="maps a guard page with Linux's mprotect")
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_narrow_b_read_in_place_reads_nothing_past_its_end(dtype):
    # a tiny product's B (fewer columns than a vector) is read where it lies: the lanes past its columns
    # are masked off, so reading the last row touches no memory after the array; so are the lanes past the
    # slots that put products with one A side by side in a register tile
    rng = np.random.default_rng(7)
    width = VECTOR_BYTES // np.dtype(dtype).itemsize
    for n in (1, width // 2 + 1, width - 1, tile_columns(np.dtype(dtype).itemsize) + 1):
        for ba in (1, 6):
            b, region = _ending_at_a_guard_page((6, 5, n), dtype)
            b[...] = rng.uniform(-1, 1, b.shape)
            a = strided_view(rng, ba, 3, 5, dtype, "contiguous")
            check(a, b, np.empty((6, 3, n), dtype), False)
            del b
            region.close()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("serial", [True, False], ids=["calling thread", "all workers"])
@pytest.mark.parametrize("bb, a_layout, b_layout", [
    (1, "contiguous", "contiguous"), ("all", "transposed", "contiguous"), ("all", "reversed", "columns")])
def test_narrow_products_of_one_a_side_by_side_in_a_tile(monkeypatch, dtype, serial, bb, a_layout, b_layout):
    """Products of one A whose B is at most a vector wide (a 1×1 convolution at a few pixels) share a register
    tile, each in a slot of its own: every width up to a vector, slots full and part full, a last tile part
    full, several row tiles, B's rows further apart than N, accumulated or not, with the epilogue."""
    core = importlib.import_module("ninx_kernels.cpu.gemm")
    monkeypatch.setattr(core, "SERIAL_FLOPS", 1 << 62 if serial else 0)
    rng = np.random.default_rng(13)
    width = VECTOR_BYTES // np.dtype(dtype).itemsize
    m, k = 2 * MR + 1, 7
    for n in [n for n in sorted({1, 2, 3, width // 2 + 1, width}) if n <= width]:
        per = core._plan(np.dtype(dtype), m, n, k, 1, 64, 64, "contiguous", "contiguous", 0, 1).side_by_side
        assert per >= NR_VECTORS and width // (per // NR_VECTORS) >= n  # the path is taken, a slot holds N
        batch = 2 * per + 3
        a = strided_view(rng, 1, m, k, dtype, a_layout)
        b = strided_view(rng, 1 if bb == 1 else batch, k, n + 3, dtype, "contiguous")
        b = b[:, :, 2:n + 2] if b_layout == "columns" else np.ascontiguousarray(b[:, :, :n])
        for accumulate in (False, True):
            check(a, b, rng.uniform(-1, 1, (batch, m, n)).astype(dtype), accumulate)
        bias, before = rng.uniform(-1, 1, m).astype(dtype), rng.uniform(-1, 1, (batch, m, n)).astype(dtype)
        expected, scale = reference(a, b, before, True)
        out = gemm(a, b, before.copy(), accumulate=True, bias=bias, relu_cap=0.5)
        bound = 2 * np.finfo(dtype).eps * (k + 4) * (scale + 1)
        assert np.all(np.abs(out - np.clip(expected + bias[:, None], 0, 0.5)) <= bound)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("serial", [True, False], ids=["calling thread", "all workers"])
@pytest.mark.parametrize("a_packed, b_layout", [(False, "contiguous"), (True, "columns")])
def test_the_columns_past_the_last_whole_tile_of_products_of_one_a_share_tiles(monkeypatch, dtype, serial,
                                                                               a_packed, b_layout):
    """Products of one A whose last few columns fill a tile's vector only in part (a 1×1 convolution at 6×6
    pixels: 32 + 4 of them) put those columns of several products side by side in a tile: tails of one
    lane and of half a vector, after one and two whole tiles, a last tile part full, accumulated or not,
    with the epilogue, A packed ahead or not, B's rows further apart than N."""
    core = importlib.import_module("ninx_kernels.cpu.gemm")
    monkeypatch.setattr(core, "SERIAL_FLOPS", 1 << 62 if serial else 0)
    rng = np.random.default_rng(17)
    nr, width = tile_columns(np.dtype(dtype).itemsize), VECTOR_BYTES // np.dtype(dtype).itemsize
    m, k = 2 * MR + 1, 9
    for n in (nr + 1, nr + width // 2, 2 * nr + 1):
        plan = core._plan(np.dtype(dtype), m, n, k, 1, 64, 64, "contiguous", "contiguous", 0, 1)
        assert plan.tail == n % nr and plan.side_by_side >= 2 * NR_VECTORS  # the path is taken, 2+ a vector
        batch = 2 * plan.side_by_side + 3
        a = strided_view(rng, 1, m, k, dtype, "contiguous")
        b = strided_view(rng, batch, k, n + 3, dtype, "contiguous")
        b = b[:, :, 2:n + 2] if b_layout == "columns" else np.ascontiguousarray(b[:, :, :n])
        for accumulate in (False, True):
            out = rng.uniform(-1, 1, (batch, m, n)).astype(dtype)
            check(a, b, out, accumulate, (pack(a, "a"), b) if a_packed else None)
        bias, before = rng.uniform(-1, 1, m).astype(dtype), rng.uniform(-1, 1, (batch, m, n)).astype(dtype)
        expected, scale = reference(a, b, before, True)
        out = gemm(pack(a, "a") if a_packed else a, b, before.copy(), accumulate=True, bias=bias, relu_cap=0.5)
        bound = 2 * np.finfo(dtype).eps * (k + 4) * (scale + 1)
        assert np.all(np.abs(out - np.clip(expected + bias[:, None], 0, 0.5)) <= bound)


@pytest.mark.parametrize("threads", [1, 2])
def test_any_thread_count(threads):
    rng = np.random.default_rng(2)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for ba, bb, bo in BATCHES:  # big enough (≥ SERIAL_FLOPS) to be split over the threads
            k = blocking(8).kc + 44
            a = strided_view(rng, ba, 50, k, np.float64, "contiguous")
            b = strided_view(rng, bb, k, 70, np.float64, "reversed")
            check(a, b, np.empty((bo, 50, 70)), False)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("accumulate", [False, True])
def test_empty_inner_dimension_gives_zeros_or_leaves_out(accumulate):
    out = np.ones((2, 3, 4), np.float32)
    gemm(np.ones((2, 3, 0), np.float32), np.ones((1, 0, 4), np.float32), out, accumulate=accumulate)
    assert np.all(out == (1 if accumulate else 0))


def test_result_independent_of_previous_out():
    a, b = np.ones((1, 3, 5)), np.ones((1, 5, 2))
    out = np.full((1, 3, 2), np.nan)
    assert np.all(gemm(a, b, out) == 5)


def f32(*shape):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("a, b, out, error, words", [
    (f32(2, 3), f32(1, 3, 4), f32(1, 2, 4), ValueError, "a must be 3-D"),
    (f32(1, 2, 3), f32(3, 4), f32(1, 2, 4), ValueError, "b must be 3-D"),
    (f32(1, 2, 3), f32(1, 3, 4), f32(2, 4), ValueError, "out must be 3-D"),
    ([[[1.0]]], f32(1, 1, 1), f32(1, 1, 1), TypeError, "a must be a numpy array"),
    (np.zeros((1, 2, 3), np.int32), np.zeros((1, 3, 4), np.int32), np.zeros((1, 2, 4), np.int32),
     TypeError, "int32"),
    (f32(1, 2, 3), np.zeros((1, 3, 4)), f32(1, 2, 4), TypeError, "dtypes differ"),
    (f32(1, 2, 3), f32(1, 5, 4), f32(1, 2, 4), ValueError, "(1, 2, 3) @ b (1, 5, 4)"),
    (f32(1, 2, 3), f32(1, 3, 4), f32(1, 2, 5), ValueError, "-> out (1, 2, 5)"),
    (f32(2, 2, 3), f32(3, 3, 4), f32(1, 2, 4), ValueError, "must each divide"),
    (f32(2, 2, 3), f32(2, 3, 4), f32(3, 2, 4), ValueError, "must each divide"),
    (f32(1, 2, 3), f32(1, 3, 4), f32(1, 4, 2).transpose(0, 2, 1), ValueError, "C-contiguous"),
    (f32(1, 2, 3), f32(1, 3, 4), np.broadcast_to(f32(1, 1, 4), (1, 2, 4)), ValueError, "writeable"),
])
def test_bad_input_raises(a, b, out, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        gemm(a, b, out)


@pytest.mark.parametrize("bias", [np.ones(2, np.float32), np.ones((5, 1), np.float32), np.ones(6, np.float32)])
def test_a_bias_of_another_length_than_the_rows_raises(bias):
    """The write-back reads bias[m] for every row m of out: a shorter bias was read past its end, silently."""
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\).*got \(" + str(bias.shape[0])):
        gemm(f32(1, 5, 3), f32(1, 3, 4), f32(1, 5, 4), bias=bias)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batches, cap, accumulate", [((1, 1, 1), np.inf, False), ((1, 4, 4), 6.0, True),
                                                      ((4, 4, 1), None, False), ((2, 6, 3), np.inf, True)])
def test_bias_and_clamp_in_the_write_back_finish_every_output_once(dtype, batches, cap, accumulate):
    """The convolution's epilogue rides the tiles' last update: across k blocks, batch-reduced products,
    partial tiles and packed operands it is the definition, clamp(Σ + bias[m], 0, cap), applied once."""
    rng = np.random.default_rng(sum(batches))
    (ba, bb, bo), kc = batches, blocking(np.dtype(dtype).itemsize).kc
    m, n, k = 2 * MR + 1, tile_columns(np.dtype(dtype).itemsize) + 3, kc + 5  # two k blocks, partial tiles
    a, b = rng.uniform(-1, 1, (ba, m, k)).astype(dtype), rng.uniform(-1, 1, (bb, k, n)).astype(dtype)
    before = rng.uniform(-4, 4, (bo, m, n)).astype(dtype)
    bias = rng.uniform(-3, 3, m).astype(dtype)
    bias[0] = np.nan  # NaN passes the clamp, as PyTorch's ReLU lets it
    expected, scale = reference(a, b, before, accumulate)
    expected += bias[:, None]
    if cap is not None:
        expected = np.where(np.isnan(expected), expected, np.clip(expected, 0, cap))
    bound = 2 * np.finfo(dtype).eps * (k + 4) * (scale + 3)
    for operands in ((a, b), (pack(a, "a"), pack(b, "b"))):
        out = before.copy()
        gemm(*operands, out, accumulate=accumulate, bias=bias, relu_cap=cap)
        assert np.isnan(out[:, 0]).all() and not np.isnan(out[:, 1:]).any()
        assert np.all(np.abs(out[:, 1:] - expected[:, 1:]) <= bound[:, 1:])


@pytest.mark.parametrize("accumulate", [False, True])
def test_the_epilogue_of_an_empty_sum_is_the_clamped_bias(accumulate):
    out = np.full((2, 3, 4), -1.0)
    bias = np.array([2.0, 9.0, -5.0])
    gemm(np.zeros((1, 3, 0)), np.zeros((2, 0, 4)), out, accumulate=accumulate, bias=bias, relu_cap=6.0)
    expected = np.clip((-1.0 if accumulate else 0.0) + bias, 0, 6)
    assert np.array_equal(out, np.broadcast_to(expected[None, :, None], out.shape))
