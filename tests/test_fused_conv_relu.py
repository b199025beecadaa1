"""A convolution and the ReLU/ReLU6 after it as one op: bias and clamp in the GEMM's write-back, the backward
masked by the output. Same values and gradients as the two ops apart; Sequential fuses them unless a hook
could see the convolution's own output."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
import references as ref
from ninx import nn
from ninx.backend import get_backend
from ninx.nn import functional as F
from ninx.testing import gradcheck
from strategies import values


@pytest.mark.parametrize("cap", [float("inf"), 6.0])
@settings(max_examples=6)
@given(kernel=st.sampled_from([1, 3]), groups=st.sampled_from([1, 2]), seed=st.integers(0, 2**31))
def test_fused_equals_conv_then_clamp_forward_and_backward(device, cap, kernel, groups, seed):
    x0 = values((2, 4, 5, 5), seed) * 4
    w0, b0, gy = values((6, 4 // groups, kernel, kernel), seed + 1), values((6,), seed + 2), values((2, 6, 5, 5), 3)
    leaves = [ninx.tensor(a, dtype=np.float64, requires_grad=True, device=device) for a in (x0, w0, b0)]
    apart = [ninx.tensor(a, dtype=np.float64, requires_grad=True, device=device) for a in (x0, w0, b0)]
    padding = kernel // 2
    fused = F.conv2d_relu(*leaves, padding=padding, groups=groups, cap=cap)
    plain = F.conv2d(*apart, padding=padding, groups=groups)
    plain = F.relu(plain) if cap == float("inf") else F.relu6(plain)
    ref.assert_close(fused.numpy(), plain.numpy(), np.float64, terms=4 * kernel * kernel)
    fused.backward(gy), plain.backward(gy)
    for a, b in zip(leaves, apart):
        ref.assert_close(a.grad.numpy(), b.grad.numpy(), np.float64, terms=100)


def test_fused_gradcheck(device):
    x = ninx.tensor(values((1, 2, 4, 4), 0), dtype=np.float64, requires_grad=True, device=device)
    w = ninx.tensor(values((3, 2, 3, 3), 1), dtype=np.float64, requires_grad=True, device=device)
    b = ninx.tensor(values((3,), 2), dtype=np.float64, requires_grad=True, device=device)
    assert gradcheck(lambda x, w, b: F.conv2d_relu(x, w, b, padding=1, cap=6.0), [x, w, b])


def test_sequential_fuses_a_conv_and_its_relu_unless_hooked(device, monkeypatch):
    backend = get_backend(device)
    relu_calls = []
    real = backend.relu
    monkeypatch.setattr(backend, "relu", lambda *a: relu_calls.append(1) or real(*a))
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 1), nn.ReLU6()).to(device)
    x = ninx.randn(2, 1, 5, 5).to(device)
    y = model(x)
    assert relu_calls == []  # both activations ran inside the convolutions' GEMMs
    seen = []
    model[0].register_forward_hook(lambda m, i, out: seen.append(out.numpy().min()))
    hooked = model(x)
    assert len(relu_calls) == 1 and seen and seen[0] < 0  # the hook saw the raw convolution, before its ReLU
    np.testing.assert_allclose(hooked.numpy(), y.numpy(), rtol=1e-6)


def test_conv2d_relu_refuses_other_caps():
    with pytest.raises(ValueError, match="cap"):
        F.conv2d_relu(ninx.zeros(1, 1, 3, 3), ninx.zeros(1, 1, 1, 1), cap=3.0)


@pytest.mark.parametrize("cap", [np.inf, 6.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_bias_masks_dy_and_sums_each_channel(device, cap, dtype):
    """The kernel behind the fused backward: relu_backward's mask (PyTorch's rule: NaN passes, +inf passes
    ReLU's, none at the kinks), and its per-channel sums over N, H, W."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 7, 9)) * 4
    for start, value in enumerate((0.0, 6.0, np.nan, np.inf, -np.inf)):
        x.flat[start::11] = value
    gy = rng.standard_normal(x.shape)
    backend = get_backend(device)
    gx, gbias = backend.relu_backward_bias(backend.asarray(x, dtype), backend.asarray(gy, dtype), cap)
    host = [np.asarray(v.get() if hasattr(v, "get") else v) for v in (gx, gbias)]
    passes = np.isnan(x) | ((x > 0) & ((x < cap) | np.isinf(cap)))
    expected = np.where(passes, gy, 0).astype(dtype)
    assert host[0].dtype == dtype and np.array_equal(host[0], expected)
    assert host[1].dtype == dtype and host[1].shape == (5,)
    np.testing.assert_allclose(host[1], expected.astype(np.float64).sum(axis=(0, 2, 3)),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
