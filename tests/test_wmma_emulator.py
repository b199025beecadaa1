"""nvcuda::wmma in the CUDA emulation layer (emulator/wmma.h), on the probes of tests/cuda/wmma_probes.cu: one
warp's TF32 tile product matches its definition, computed here from the bits, in every layout; an input left
unconverted counts as truncated, as on the hardware; and misuses that a GPU answers with a hang or a wrong
result only sometimes — a wmma call part of a warp makes, lanes passing different pointers, code that assumes
how a fragment's elements lie across the lanes — fail here, or give a wrong result, every time. The probes
compile with NVRTC too."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ninx_kernels.cuda.emulator import EmulatedModule, KernelFault
from ninx_kernels.cuda.launch import NULL
from test_cuda_compile import ARCHITECTURES, compile_ptx

SOURCE = Path(__file__).parent / "cuda" / "wmma_probes.cu"
LAYOUTS = ("row_major", "col_major")
PRODUCTS = {(a, b): f"tile_product<wmma::{a}, wmma::{b}>" for a in LAYOUTS for b in LAYOUTS}
PLANTED = ["mma_by_half_a_warp", "load_by_half_a_warp", "lanes_load_different_tiles", "identity_by_index"]
NAMES = ["to_tf32", *PRODUCTS.values(), "product_then_doubled", *PLANTED]
RULE = "; all 32 lanes of a warp make each wmma call together, with the same arguments"


@pytest.fixture(scope="module")
def probes():
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("the emulator needs a host C++ compiler")
    return EmulatedModule(SOURCE, NAMES)


def tf32(x, half):
    """x's float32 bits plus `half`, the low 13 cleared: 0x1000 rounds to the nearest TF32 with ties away from
    zero, 0 truncates. NaN and infinity stay as they are."""
    bits = np.asarray(x, np.float32).view(np.uint32)
    special = (bits & 0x7F800000) == 0x7F800000
    return np.where(special, bits, (bits + np.uint32(half)) & np.uint32(0xFFFFE000)).view(np.float32)


def aligned(array):
    """A copy of `array` at a 256-byte boundary, as cudaMalloc's are. The emulator keeps each array's address
    modulo 256, and wmma loads and stores need 32-byte aligned pointers."""
    buffer = np.empty(array.nbytes + 256, np.uint8)
    start = -buffer.ctypes.data % 256
    copy = buffer[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    copy[...] = array
    return copy


def stored(matrix, layout, pad=0):
    """`matrix` in memory as a kernel reads it: its rows (row_major) or columns (col_major) one after another,
    each followed by `pad` NaNs — the leading dimension is the length of a row or column plus `pad`."""
    lines = matrix if layout == "row_major" else matrix.T
    return aligned(np.pad(lines, ((0, 0), (0, pad)), constant_values=np.nan).astype(np.float32))


def tile_product(probes, a, b, c=None, layouts=("row_major", "row_major"), c_layout="row_major", pad=0,
                 convert=True, grid=(1,), block=(32,)):
    """(D, D's memory) from the probe D = A·B + C, with A, B and C stored in the layouts given, `pad` apart."""
    a_memory, b_memory = stored(a, layouts[0], pad), stored(b, layouts[1], pad)
    c_memory = NULL if c is None else stored(c, c_layout, pad)
    d_memory = aligned(np.zeros((16, 16 + pad), np.float32))
    args = (a_memory, np.int32(a_memory.shape[1]), b_memory, np.int32(b_memory.shape[1]), c_memory,
            np.int32(d_memory.shape[1]), np.int32(c_layout == "col_major"), np.int32(convert), d_memory)
    probes.get_function(PRODUCTS[layouts])(grid, block, args)
    d = d_memory[:, :16]
    return (d.T if c_layout == "col_major" else d), d_memory


def inputs(seed):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(shape).astype(np.float32) for shape in ((16, 8), (8, 16), (16, 16)))


# ---- TF32 numerics ----------------------------------------------------------------------------------------

def test_float_to_tf32_rounds_to_nearest_with_ties_away_from_zero(probes):
    """Against the definition, for every finite float: |x| rounded to a multiple of its TF32 unit, 2^(e − 11) for
    |x| = m·2^e with m in [0.5, 1) (e no less than −125: subnormals share the smallest normal's unit), half a
    unit rounding up. Ties: 1 + 2⁻¹¹ lies halfway between 1 and 1 + 2⁻¹⁰, and goes up (to even would go down)."""
    special = np.float32([1 + 2**-11, -(1 + 2**-11), 1 + 3 * 2**-11, np.inf, -np.inf, np.nan, 0, -0.0,
                          np.finfo(np.float32).max, 1e-40])
    rng = np.random.default_rng(0)
    x = np.concatenate([special, rng.integers(0, 2**32, 4096, dtype=np.uint32).view(np.float32)])
    y = np.empty_like(x)
    probes.get_function("to_tf32")((4,), (128,), (x, np.int32(x.size), y))
    assert list(y[:3]) == [1 + 2**-10, -(1 + 2**-10), 1 + 2**-9]
    finite = np.isfinite(x)
    _, e = np.frexp(np.abs(x[finite]).astype(np.float64))
    unit = np.ldexp(1.0, np.maximum(e, -125) - 11)
    expected = np.copysign(np.floor(np.abs(x[finite]) / unit + 0.5) * unit, x[finite])
    with np.errstate(over="ignore"):  # the largest float rounds to infinity
        assert np.array_equal(y[finite], expected.astype(np.float32))
    assert np.array_equal(y[~finite].view(np.uint32), x[~finite].view(np.uint32))  # NaN keeps its bits


@pytest.mark.parametrize("layouts", PRODUCTS)
@pytest.mark.parametrize("accumulate, pad", [(None, 0), ("row_major", 4), ("col_major", 12)])
def test_a_tile_product_matches_its_definition(probes, layouts, accumulate, pad):
    """D = A·B + C for A and B rounded to TF32 by __float_to_tf32, the products summed in float64 here: equal in
    float32's precision, whatever the layouts of A, B and C, and with lines longer than the tile's. The store
    writes the tile only, not the padding after its lines."""
    a, b, c = inputs(0)
    c = c if accumulate else None
    d, memory = tile_product(probes, a, b, c, layouts, accumulate or "row_major", pad)
    expected = (0 if c is None else c) + tf32(a, 0x1000).astype(np.float64) @ tf32(b, 0x1000)
    assert np.allclose(d, expected, rtol=1e-5, atol=1e-5)
    assert np.isnan(memory[:, 16:]).all()


def test_inputs_left_unconverted_are_truncated(probes):
    """mma_sync reads only the top 19 bits of what it is given: 1 + 3·2⁻¹² counts as 1, where __float_to_tf32
    makes it 1 + 2⁻¹⁰. And on random inputs the unconverted product is the truncated inputs' one, which is not
    the rounded inputs' one."""
    a, b = np.full((16, 8), 1 + 3 * 2**-12, np.float32), np.ones((8, 16), np.float32)
    assert np.all(tile_product(probes, a, b, convert=False)[0] == 8)
    assert np.all(tile_product(probes, a, b, convert=True)[0] == 8 * (1 + 2**-10))
    a, b, _ = inputs(1)
    d = tile_product(probes, a, b, convert=False)[0]
    assert np.allclose(d, tf32(a, 0).astype(np.float64) @ tf32(b, 0), rtol=1e-5, atol=1e-5)
    assert not np.allclose(d, tf32(a, 0x1000).astype(np.float64) @ tf32(b, 0x1000), rtol=1e-5, atol=1e-5)


def test_each_warp_of_each_block_makes_its_own_calls(probes):
    a, b, c = inputs(2)
    d = tile_product(probes, a, b, c, grid=(2,), block=(32, 3))[0]
    assert np.allclose(d, c + tf32(a, 0x1000).astype(np.float64) @ tf32(b, 0x1000), rtol=1e-5, atol=1e-5)


def test_a_fragment_may_change_as_soon_as_mma_sync_returns(probes):
    """No lane leaves mma_sync before every lane has read its A and B, so doubling A in place right after it
    doubles only the second product: D = 3·A·B."""
    a = inputs(5)[2]
    d = aligned(np.zeros((16, 16), np.float32))
    probes.get_function("product_then_doubled")((1,), (32,), (aligned(a), d))
    assert np.allclose(d, 3 * tf32(a[:, :8], 0).astype(np.float64) @ tf32(a[:8], 0), rtol=1e-5, atol=1e-5)


# ---- misuse: caught, or exposed by a wrong result -----------------------------------------------------------

@pytest.mark.parametrize("kernel, words", [
    ("mma_by_half_a_warp", "wmma::mma_sync in block 0, warp 0: lane 16 is at wmma::store_matrix_sync instead"),
    ("load_by_half_a_warp", r"wmma::load_matrix_sync in block 0, warp 0: 16 of its 32 lanes never make the call "
                            r"\(lane 16 returned\)"),
    ("lanes_load_different_tiles", "wmma::load_matrix_sync in block 0, warp 0: lane 1 passes pointer 0x[0-9a-f]+ "
                                   "where lane 0 passes 0x[0-9a-f]+"),
])
def test_a_wmma_call_the_lanes_do_not_make_alike_is_a_fault(probes, kernel, words):
    a, d = aligned(np.ones((32, 16), np.float32)), aligned(np.zeros((16, 16), np.float32))
    with pytest.raises(KernelFault, match=f"^{kernel}: {words}{RULE}$"):
        probes.get_function(kernel)((1,), (32,), (a, d))


def test_a_warp_the_block_cuts_short_is_a_fault(probes):
    a, b, _ = inputs(3)
    with pytest.raises(KernelFault, match=r"warp 1: 16 of its 32 lanes never make the call \(lane 16 is past the "
                                          r"end of the block\)"):
        tile_product(probes, a, b, block=(48,))


@pytest.mark.parametrize("nudge, words", [(1, "pointer 0x[0-9a-f]+ is not 32-byte aligned"),
                                          (0, "ldm 10 is not a multiple of 4 floats")])
def test_memory_a_gpu_could_not_load_from_is_a_fault(probes, nudge, words):
    a_memory = aligned(np.ones((16 * 10 + 1), np.float32))[nudge:]
    b_memory, d_memory = aligned(np.ones((8, 16), np.float32)), aligned(np.zeros((16, 16), np.float32))
    args = (a_memory, np.int32(8 if nudge else 10), b_memory, np.int32(16), NULL, np.int32(16), np.int32(0),
            np.int32(1), d_memory)
    with pytest.raises(KernelFault, match=f"wmma::load_matrix_sync: {words}"):
        probes.get_function(PRODUCTS["row_major", "row_major"])((1,), (32,), args)


def test_code_that_assumes_a_fragment_layout_is_exposed(probes):
    """identity_by_index sets B = I element by element, as if x[] held B row-major across the lanes. Whether
    that is right on a GPU depends on its hardware's layout; here it is wrong — while the same product with I
    loaded from memory is A beside 8 zero columns."""
    a = inputs(4)[2]
    wrong = aligned(np.zeros((16, 16), np.float32))
    probes.get_function("identity_by_index")((1,), (32,), (aligned(np.vstack([a, a])), wrong))
    expected = np.hstack([tf32(a[:, :8], 0), np.zeros((16, 8), np.float32)])
    assert np.array_equal(tile_product(probes, a[:, :8], np.eye(8, 16, dtype=np.float32), convert=False)[0],
                          expected)
    assert not np.allclose(wrong, expected)


# ---- NVRTC --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_probes_compile_with_nvrtc_to_tensor_core_instructions(architecture):
    text = compile_ptx(SOURCE, NAMES, architecture)
    assert "wmma.mma.sync.aligned" in text and "cvt.rna.tf32.f32" in text
