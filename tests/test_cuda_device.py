"""The cuda device: tensors and modules moving to it and back, the GEMM of its kernel table at the edges of its
tiles and with its fused epilogue, a training run on it — on a GPU, or on the emulation layer with
NINX_CUDA_EMULATE=1 — and, anywhere, the clear error when it cannot run."""
import contextlib
import io
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

import ninx
import ninx.backend
from ninx import nn
from ninx.backend import Backend, get_backend
from ninx_kernels import cuda
from ninx_kernels.cuda import tiling

# NINX_EXPECT_CUDA=1 (the GPU script) runs these whatever happens, so a cuda device that cannot load fails them
needs_cuda = pytest.mark.skipif(not (cuda.available() or os.environ.get("NINX_EXPECT_CUDA") == "1"),
                                reason="no GPU, and NINX_CUDA_EMULATE is not 1")


# ---- moving between devices -------------------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_to_cuda_and_back_copies_the_values(dtype):
    values = np.arange(-3, 9).reshape(3, 4)
    t = ninx.tensor(values, dtype=dtype)
    on_gpu = t.to("cuda")
    assert (on_gpu.device, on_gpu.dtype, on_gpu.shape) == ("cuda", t.dtype, t.shape)
    t.numpy()[...] = 0  # a copy: the cuda tensor keeps its values
    back = on_gpu.cpu()
    assert back.device == "cpu" and back.dtype == np.dtype(dtype)
    assert np.array_equal(back.numpy(), values.astype(dtype))
    assert on_gpu.to("cuda") is on_gpu and on_gpu.cuda() is on_gpu


@needs_cuda
def test_tensors_are_made_on_the_device():
    for t in (ninx.tensor([[1.5, 2.5]], device="cuda"), ninx.zeros(1, 2, device="cuda"),
              ninx.randn(1, 2, device="cuda"), ninx.tensor([1.0, 2.0]).cuda()):
        assert t.device == "cuda" and isinstance(t.data, get_backend("cuda").xp.ndarray)
    assert "device='cuda'" in repr(ninx.ones(2, device="cuda"))


@needs_cuda
def test_the_gradient_travels_back_to_the_cpu():
    x = ninx.tensor([1.0, -2.0, 3.0], dtype="float64", requires_grad=True)
    y = x.to("cuda")
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and np.array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])


@needs_cuda
def test_mixing_devices_is_an_error():
    with pytest.raises(ValueError, match="different devices"):
        ninx.tensor([1.0]) + ninx.tensor([1.0], device="cuda")


def _small_net():
    ninx.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 6, 1), nn.ReLU6(), nn.AvgPool2d(2, 1, padding=1), nn.Conv2d(6, 3, 1),
                         nn.GlobalAvgPool2d(), nn.Flatten())


@needs_cuda
def test_a_module_moved_to_cuda_computes_what_it_did_on_the_cpu():
    x = np.random.default_rng(0).standard_normal((3, 2, 6, 6))
    results = {}
    for device in ("cpu", "cuda"):
        net = _small_net().double().to(device)
        assert {p.device for p in net.parameters()} == {device}
        inputs = ninx.tensor(x, dtype="float64", device=device)
        loss = ninx.nn.functional.cross_entropy(net(inputs), ninx.tensor([0, 1, 2], device=device))
        loss.backward()
        results[device] = [loss.numpy()] + [p.grad.numpy() for p in net.parameters()]
    for on_cpu, on_cuda in zip(results["cpu"], results["cuda"]):
        assert np.allclose(on_cuda, on_cpu, rtol=1e-10, atol=1e-12)


@needs_cuda
def test_ninx_train_runs_on_cuda(tmp_path):
    from ninx.cli import main
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["train", "--model", "nin-digits", "--data", "digits", "--batch-size", "8", "--limit-batches",
                     "2", "--epochs", "1", "--device", "cuda", "--out", str(tmp_path)]) == 0
    assert "test accuracy" in stdout.getvalue()


# ---- the GEMM of the kernel table: tile edges, layouts, batch rules, epilogue --------------------------------

def _host(array):
    return array if isinstance(array, np.ndarray) else array.get()


def _operand(xp, rng, batch, rows, cols, dtype, layout):
    """A (batch, rows, cols) device array of values in [-1, 1), laid out in memory as `layout` says."""
    def values(*shape):
        return xp.asarray(rng.uniform(-1, 1, shape).astype(dtype))
    if layout == "transposed":
        return values(batch, cols, rows).transpose(0, 2, 1)
    if layout == "sliced":  # every other row, every third column, from an offset: nothing aligned
        return values(batch, 2 * rows + 1, 3 * cols + 2)[:, 1::2, 2::3]
    if layout == "reversed":
        return values(batch, rows, cols)[::-1, ::-1, ::-1]
    if layout == "broadcast":
        return xp.broadcast_to(values(1, 1, cols), (batch, rows, cols))
    return values(batch, rows, cols)


def tf32(values):
    """float32 values rounded to TF32 (a 10-bit mantissa), to nearest with ties away from zero, by their bits."""
    bits = np.asarray(values, np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def check_gemm(m, n, k, batches, layouts, dtype, accumulate=False, bias=False, relu_cap=None, seed=0,
               eps=None):
    """The cuda gemm against float64 einsum, within a rounding bound that grows with K: 2·eps·(K + 3) for
    eps the dtype's, or the one given (TF32's)."""
    backend = get_backend("cuda")
    xp, rng = backend.xp, np.random.default_rng(seed)
    (ba, bb, bo), (a_layout, b_layout) = batches, layouts
    a, b = _operand(xp, rng, ba, m, k, dtype, a_layout), _operand(xp, rng, bb, k, n, dtype, b_layout)
    before, row_bias = rng.uniform(-1, 1, (bo, m, n)).astype(dtype), rng.uniform(-1, 1, m).astype(dtype)
    a64, b64 = _host(a).astype(np.float64), _host(b).astype(np.float64)
    expected, scale = (before.astype(np.float64) if accumulate else np.zeros((bo, m, n))), np.abs(before) + 1
    for i in range(max(batches)):
        expected[i % bo] += a64[i % ba] @ b64[i % bb]
        scale[i % bo] += abs(a64[i % ba]) @ abs(b64[i % bb])
    if bias:
        expected += row_bias[:, None]
    if relu_cap is not None:
        expected = np.clip(expected, 0, relu_cap)
    out = xp.asarray(before)
    result = backend.gemm(a, b, out, accumulate=accumulate, bias=xp.asarray(row_bias) if bias else None,
                          relu_cap=relu_cap)
    assert result is out
    bound = 2 * (eps or np.finfo(dtype).eps) * (k + 3) * scale
    error = np.abs(_host(out) - expected)
    assert np.all(error <= bound), np.max(error - bound)


LAYOUTS = ["contiguous", "transposed", "sliced", "reversed", "broadcast"]


def _edges(tile):
    """(m, n, k) one short of, at and one past a tile's rows, columns and step depth, and NiN's 10 and 192."""
    r, c, d = tile.rows, tile.columns, tile.depth
    return [(1, 1, 1), (r - 1, c + 1, d - 1), (r, c, d), (r + 1, c - 1, d + 1), (10, 192, 27), (3, 2 * c + 5, 0)]


@needs_cuda
@pytest.mark.parametrize("tile", tiling.TILINGS, ids=lambda t: t.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_at_the_edges_of_every_tile_shape(monkeypatch, tile, dtype):
    """Each tile shape of the table, forced, at the edges of its rows, columns and k step, over contiguous and
    transposed operands (16-byte loads along n, then along k) and sliced ones (element loads)."""
    monkeypatch.setattr(tiling, "choose", lambda *args: tile)
    for m, n, k in _edges(tile):
        check_gemm(m, n, k, (1, 1, 1), ("contiguous", "contiguous"), dtype)
        check_gemm(m, n, k, (2, 2, 2), ("transposed", "transposed"), dtype, seed=1)
        check_gemm(m, n, k, (1, 2, 2), ("sliced", "reversed"), dtype, seed=2)


TF32_EPS = 2.0**-10  # a TF32 input carries 10 mantissa bits: rounding errs by at most half a unit, 2^-11


@needs_cuda
@pytest.mark.parametrize("tile", tiling.TILINGS, ids=lambda t: t.name)
def test_tf32_gemm_on_the_tensor_cores_at_the_edges_of_every_tile_shape(monkeypatch, tile):
    """With allow_tf32 the float32 GEMM runs gemm_tf32 (nvcuda::wmma, emulated collectively per warp): within
    TF32's bound of the exact product, with the fused epilogue, over aligned and unaligned operands."""
    monkeypatch.setattr(tiling, "choose", lambda *args: tile)
    monkeypatch.setattr(ninx.backends.cuda, "allow_tf32", True)
    for m, n, k in _edges(tile)[1:4]:
        check_gemm(m, n, k, (1, 1, 1), ("contiguous", "transposed"), np.float32, eps=TF32_EPS)
        check_gemm(m, n, k, (2, 2, 1), ("sliced", "contiguous"), np.float32, True, bias=True, relu_cap=6.0,
                   seed=1, eps=TF32_EPS)


@needs_cuda
def test_tf32_blocks_that_run_several_outputs_finish_writing_before_the_next_mainloop(monkeypatch):
    """With fewer blocks along z than outputs, a block runs out[o] after out[o − Gz]; its tensor-core sums
    leave through the shared tiles, which the next mainloop refills only after every warp has written out."""
    monkeypatch.setattr(tiling, "MAX_GRID_YZ", 2)
    monkeypatch.setattr(ninx.backends.cuda, "allow_tf32", True)
    check_gemm(70, 40, 24, (5, 5, 5), ("contiguous", "contiguous"), np.float32, eps=TF32_EPS)


@needs_cuda
def test_tf32_is_what_the_tensor_cores_compute_and_off_by_default(monkeypatch):
    """The TF32 result is the float32 GEMM of the inputs rounded to TF32 (to float32's bound), far from the
    float32 GEMM of the inputs themselves; float64 and the default ignore TF32."""
    assert ninx.backends.cuda.allow_tf32 is False
    backend, rng = get_backend("cuda"), np.random.default_rng(7)
    a, b = rng.uniform(-1, 1, (1, 40, 50)).astype(np.float32), rng.uniform(-1, 1, (1, 50, 30)).astype(np.float32)
    exact = a[0].astype(np.float64) @ b[0]
    rounded = tf32(a[0]).astype(np.float64) @ tf32(b[0])

    def run(dtype):
        out = backend.xp.empty((1, 40, 30), dtype=dtype)
        return _host(backend.gemm(backend.xp.asarray(a, dtype=dtype), backend.xp.asarray(b, dtype=dtype), out))[0]
    assert np.abs(run(np.float32) - exact).max() < 1e-5
    monkeypatch.setattr(ninx.backends.cuda, "allow_tf32", True)
    assert np.abs(run(np.float32) - rounded).max() < 1e-5
    assert np.abs(run(np.float32) - exact).max() > 1e-4
    assert np.abs(run(np.float64) - exact).max() < 1e-12


def test_the_tile_table_gives_thin_products_the_thin_tile_and_small_grids_the_small_one():
    gpu = types.SimpleNamespace(multiprocessors=132)
    assert tiling.choose(gpu, 10, 21632) is tiling.THIN  # NiN's 10-channel last block
    assert tiling.choose(gpu, 4096, 4096) is tiling.LARGE  # 1024 tiles
    assert tiling.choose(gpu, 192, 169, 8) is tiling.SMALL  # 2 tiles of 128 × 8 images leave SMs idle
    assert tiling.choose(types.SimpleNamespace(multiprocessors=1), 40, 1000) is tiling.SMALL  # 40 of 128 rows


@needs_cuda
@given(dtype=st.sampled_from([np.float32, np.float64]), m=st.integers(1, 70), n=st.integers(1, 70),
       k=st.integers(0, 40), layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)),
       batches=st.sampled_from([(1, 1, 1), (3, 3, 3), (1, 2, 2), (2, 1, 2), (3, 3, 1), (4, 2, 2), (2, 4, 1)]),
       accumulate=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_gemm_matches_einsum(dtype, m, n, k, layouts, batches, accumulate, seed):
    check_gemm(m, n, k, batches, layouts, dtype, accumulate=accumulate, seed=seed)


@needs_cuda
@pytest.mark.parametrize("relu_cap", [None, np.inf, 6.0])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("m", [40, 70])
def test_gemm_epilogue_adds_bias_and_clamps(m, relu_cap, accumulate):
    """The fused epilogue: clamp(Σ + out_before (accumulate) + bias[m], 0, cap). A batch-reduce onto so few
    tiles is split into slices (see gemm.py), and the kernel adding the slices up applies it."""
    check_gemm(m, 33, 20, (4, 4, 1), ("contiguous", "sliced"), np.float64, accumulate, bias=True, relu_cap=relu_cap)


@needs_cuda
def test_gemm_epilogue_in_the_gemm_kernel():
    """300 output tiles need no split (on a GPU of up to 150 multiprocessors): the GEMM kernel applies it."""
    check_gemm(3, 33, 20, (300, 300, 300), ("sliced", "contiguous"), np.float32, True, bias=True, relu_cap=6.0)


@needs_cuda
@pytest.mark.parametrize("shapes, error, words", [
    (((2, 3), (1, 3, 4), (1, 2, 4)), ValueError, "a must be 3-D"),
    (((1, 2, 3), (1, 5, 4), (1, 2, 4)), ValueError, "shapes do not agree"),
    (((2, 2, 3), (3, 3, 4), (1, 2, 4)), ValueError, "must each divide"),
])
def test_gemm_bad_shapes_raise(shapes, error, words):
    xp = get_backend("cuda").xp
    a, b, out = (xp.zeros(s, dtype=np.float32) for s in shapes)
    with pytest.raises(error, match=words):
        get_backend("cuda").gemm(a, b, out)


@needs_cuda
def test_gemm_refuses_mixed_dtypes_and_strided_out():
    backend = get_backend("cuda")
    xp = backend.xp
    with pytest.raises(TypeError, match="dtypes differ"):
        backend.gemm(xp.zeros((1, 2, 3), np.float32), xp.zeros((1, 3, 4)), xp.zeros((1, 2, 4), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        backend.gemm(xp.zeros((1, 2, 3)), xp.zeros((1, 3, 4)), xp.zeros((1, 4, 2)).transpose(0, 2, 1))


@needs_cuda
@pytest.mark.parametrize("length", [2, 6])
def test_gemm_refuses_a_bias_of_another_length_than_the_rows(length):
    """The CPU backend's contract: the write-back reads bias[m] for each of out's M rows."""
    backend = get_backend("cuda")
    xp = backend.xp
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        backend.gemm(xp.zeros((1, 5, 3)), xp.zeros((1, 3, 4)), xp.zeros((1, 5, 4)), bias=xp.ones(length))


# ---- when the device cannot run ----------------------------------------------------------------------------

def _fake_cupy(device_count):
    """A stand-in for the cupy module whose runtime reports `device_count` GPUs (or raises it)."""
    def count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count)))


@pytest.mark.parametrize("cupy, words", [
    (None, "needs CuPy, which is not installed"),
    (_fake_cupy(RuntimeError("cudaErrorInsufficientDriver")), "needs an NVIDIA GPU with a working driver.*"
                                                              "cudaErrorInsufficientDriver"),
    (_fake_cupy(0), "needs an NVIDIA GPU, and CuPy sees none"),
])
def test_a_missing_gpu_or_cupy_is_named(monkeypatch, cupy, words):
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.delenv("NINX_CUDA_EMULATE", raising=False)
    with pytest.raises(cuda.CudaUnavailable, match=words):
        cuda.make_backend(Backend, emulate=False)
    assert not cuda.available()
    # and through the tensor API, which is where a user meets it
    monkeypatch.delitem(ninx.backend._backends, "cuda", raising=False)
    with pytest.raises(cuda.CudaUnavailable, match="NINX_CUDA_EMULATE=1"):
        ninx.tensor([1.0], device="cuda")


def test_a_missing_compiler_for_the_emulator_is_named(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-for-ninx")
    monkeypatch.setenv("NINX_CUDA_EMULATE", "1")
    with pytest.raises(cuda.CudaUnavailable, match="C\\+\\+ compiler.*'no-such-compiler-for-ninx' was not found"):
        cuda.make_backend(Backend, emulate=True)
    assert not cuda.available()


def test_an_expected_cuda_device_that_cannot_load_fails_the_suite(tmp_path):
    """With NINX_EXPECT_CUDA=1 and no way to run cuda (no GPU, emulation off), the cuda tests are collected and
    fail with the reason: a GPU machine whose CuPy is broken never passes green with no GPU coverage."""
    env = {k: v for k, v in os.environ.items() if k != "NINX_CUDA_EMULATE"}
    env.update(NINX_EXPECT_CUDA="1", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                           f"{Path(__file__).parent / 'test_cuda_device.py'}::test_mixing_devices_is_an_error"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "cuda" in done.stdout and "failed" in done.stdout, done.stdout[-2000:]
