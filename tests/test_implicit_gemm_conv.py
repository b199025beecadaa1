"""The cuda device's implicit-GEMM convolution (kernels/cuda/conv.cu): forward, input gradient and weight
gradient against the loop references, for every tile shape of the table forced in turn, over strides,
paddings, dilations, groups and the fused bias + ReLU; the split weight-gradient reduction; and its memory:
no column matrix, so a forward + backward allocates a small constant times the tensors it touches."""
import os
import tracemalloc

import numpy as np
import pytest

import ninx
import references as ref
from ninx.backend import get_backend
from ninx.geometry import window2d
from ninx.nn import functional as F
from ninx_kernels import cuda
from ninx_kernels.cuda import gemm, tiling

pytestmark = pytest.mark.skipif(not (cuda.available() or os.environ.get("NINX_EXPECT_CUDA") == "1"),
                                reason="no GPU, and NINX_CUDA_EMULATE is not 1")

# (x shape, weight shape, stride, padding, dilation, groups): NiN's 3×3 and 5×5, an 11×11/4 stem, a
# dilated grouped one, a 1×3 one, a strided 1×1 (not the GEMM alone) and a 10-channel one
CASES = [((2, 5, 9, 8), (7, 5, 3, 3), 1, 1, 1, 1),
         ((2, 6, 9, 9), (10, 6, 5, 5), 1, 2, 1, 1),
         ((1, 3, 27, 25), (4, 3, 11, 11), 4, 0, 1, 1),
         ((2, 4, 11, 10), (6, 2, 3, 3), 2, 2, 2, 2),
         ((3, 3, 6, 7), (5, 3, 1, 3), (1, 2), (0, 1), 1, 1),
         ((2, 4, 7, 7), (3, 4, 1, 1), 2, 0, 1, 1),
         ((2, 40, 5, 5), (10, 40, 3, 3), 1, 1, 1, 1)]


def run(case, seed, relu_cap=None):
    """(y, dx, dw) from the cuda kernels and (y, dx, dw) from the references, in float64."""
    x_shape, w_shape, stride, padding, dilation, groups = case
    backend, rng = get_backend("cuda"), np.random.default_rng(seed)
    x, w, b = rng.uniform(-1, 1, x_shape), rng.uniform(-1, 1, w_shape), rng.uniform(-1, 1, w_shape[0])
    g = window2d("conv2d", x_shape, w_shape[2:], stride, padding, dilation)
    gy = rng.uniform(-1, 1, (x_shape[0], w_shape[0], g.oh, g.ow))
    y = backend.conv2d(x, w, g, groups, bias=b, relu_cap=relu_cap)
    got = (y, backend.conv2d_backward_input(gy, w, g, groups), backend.conv2d_backward_weight(x, gy, g, groups))
    expected_y = ref.conv2d(x, w, b, stride, padding, dilation, groups)
    if relu_cap is not None:
        expected_y = np.clip(expected_y, 0, relu_cap)
    return got, (expected_y, *ref.conv2d_gradients(x, w, gy, stride, padding, dilation, groups))


def assert_matches(got, expected, terms):
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=64 * np.finfo(np.float64).eps * terms)


@pytest.mark.parametrize("tile", tiling.TILINGS, ids=lambda t: t.name)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1]}s{c[2]}p{c[3]}d{c[4]}g{c[5]}")
def test_every_tile_shape_matches_the_loop_reference(monkeypatch, tile, case):
    monkeypatch.setattr(tiling, "choose", lambda *args: tile)
    got, expected = run(case, seed=len(case[0]) + case[1][0])
    assert_matches(got, expected, terms=int(np.prod(case[1][1:])) * case[0][0])


@pytest.mark.parametrize("relu_cap", [np.inf, 6.0])
def test_the_fused_bias_and_clamp_of_a_grouped_convolution(relu_cap):
    """The epilogue adds each group's own bias rows and clamps (the GEMM's epilogue could fuse only one group)."""
    got, expected = run(CASES[3], seed=3, relu_cap=relu_cap)
    assert_matches(got[:1], expected[:1], terms=18)


def test_a_weight_gradient_split_into_slices_sums_them_in_a_fixed_order(monkeypatch):
    """Asked for many blocks per multiprocessor, the reduction over (n, p, q) runs as slices summed by
    sum_slices; the result is the reference's and the same bits on every run."""
    monkeypatch.setattr(gemm, "BLOCKS_PER_MULTIPROCESSOR", 64)
    got, expected = run(CASES[1], seed=5)
    assert_matches(got, expected, terms=150 * 2)
    again, _ = run(CASES[1], seed=5)
    assert got[2].tobytes() == again[2].tobytes()


def test_a_grid_past_cudas_limit_is_refused_before_the_launch():
    """2^23 filters make 65,536 row tiles of 128, one past CUDA's grid limit along y: a ValueError naming the
    sizes, where the launch would fail with an invalid configuration."""
    backend = get_backend("cuda")
    x, w = np.ones((1, 1, 1, 1), np.float32), np.ones((2**23, 1, 1, 1), np.float32)
    g = window2d("conv2d", x.shape, (1, 1), 2, 0, 1)  # strided: not the GEMM alone
    with pytest.raises(ValueError, match="8388608×1 product"):
        backend.conv2d(x, w, g, 1)


def test_a_forward_and_backward_allocate_at_most_three_times_the_tensors(monkeypatch):
    """d2l NiN's second layer (96→256, 5×5, padding 2, 27×27, batch 8) in float32, through autograd: what the
    cuda device allocates beyond x, the weight and dy stays below 3× (input + output + weight). An im2col
    lowering would build a 2400 × 729 column matrix per image, 7 MB each, 56 MB for the batch.

    The emulated device's arrays are numpy's, which tracemalloc sees (the emulator's own copies are not).
    Kernels allocate nothing, so their launches are skipped here: the 22 GFLOP would take minutes."""
    if not isinstance(get_backend("cuda").xp.zeros(1), np.ndarray):
        pytest.skip("measured on the emulated device, whose arrays tracemalloc sees")
    from ninx_kernels.cuda import conv
    monkeypatch.setattr(conv.SOURCE, "kernel", lambda *args: lambda grid, block, arguments: None)
    rng = np.random.default_rng(0)
    x = ninx.tensor(rng.standard_normal((8, 96, 27, 27)), dtype=np.float32, device="cuda", requires_grad=True)
    w = ninx.tensor(rng.standard_normal((256, 96, 5, 5)) * 0.02, dtype=np.float32, device="cuda",
                    requires_grad=True)
    gy = ninx.tensor(rng.standard_normal((8, 256, 27, 27)), dtype=np.float32, device="cuda")
    tensors = 4 * (x.numel() + gy.numel() + w.numel())
    tracemalloc.start()
    try:
        y = F.conv2d(x, w, padding=2)
        y.backward(gy)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape
    assert peak <= 3 * tensors, f"peak {peak / 2**20:.1f} MiB against 3 × {tensors / 2**20:.1f} MiB"
    print(f"allocated at most {peak / 2**20:.1f} MiB for tensors of {tensors / 2**20:.1f} MiB")
