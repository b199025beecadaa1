"""The CPU's convolution of a map no larger than its window (`ninx_kernels.cpu.toeplitz`: one GEMM on the
Toeplitz matrix) against the definitions, over strides, padding, dilation and kernel shapes — and through
conv2d, which routes exactly those maps here."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
import references as ref
from ninx.geometry import window2d
from ninx.nn import functional as F
from ninx_kernels.cpu import toeplitz
from strategies import seeds, values

DTYPES = [np.float32, np.float64]


@settings(deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 6), oc=st.integers(1, 12), k=st.sampled_from([(3, 3), (5, 5), (3, 5)]),
       h=st.integers(1, 3), w=st.integers(1, 3), stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pad=st.tuples(st.integers(0, 2), st.integers(0, 2)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       relu=st.booleans(), dtype=st.sampled_from(DTYPES), seed=seeds)
def test_forward_and_gradients_are_the_definition(n, c, oc, k, h, w, stride, pad, dilation, relu, dtype, seed):
    (kh, kw), (ph, pw), (dh, dw) = k, pad, dilation
    if h + 2 * ph < dh * (kh - 1) + 1 or w + 2 * pw < dw * (kw - 1) + 1:
        return  # no output pixel
    g = window2d("conv2d", (n, c, h, w), k, stride, pad, dilation)
    assert toeplitz.fits(g, 1)
    x, weight, bias = values((n, c, h, w), seed), values((oc, c, kh, kw), seed + 1), values((oc,), seed + 2)
    gy = values((n, oc, g.oh, g.ow), seed + 3)
    y = toeplitz.conv2d(x.astype(dtype), weight.astype(dtype), g, bias.astype(dtype), np.inf if relu else None)
    expected = ref.conv2d(x, weight, bias, stride, pad, dilation)
    terms = c * kh * kw + 1
    ref.assert_close(y, np.maximum(expected, 0) if relu else expected, dtype, terms=terms,
                     magnitude=ref.conv2d(abs(x), abs(weight), abs(bias), stride, pad, dilation))
    dx, dw_ = ref.conv2d_gradients(x, weight, gy, stride, pad, dilation)
    magnitude_x, magnitude_w = ref.conv2d_gradients(abs(x), abs(weight), abs(gy), stride, pad, dilation)
    ref.assert_close(toeplitz.conv2d_backward_input(gy.astype(dtype), weight.astype(dtype), g), dx, dtype,
                     terms=oc * kh * kw, magnitude=magnitude_x)
    ref.assert_close(toeplitz.conv2d_backward_weight(x.astype(dtype), gy.astype(dtype), g), dw_, dtype,
                     terms=n * g.oh * g.ow, magnitude=magnitude_w)


@pytest.mark.parametrize("size, kernel, groups, routed", [(2, 3, 1, True), (1, 3, 1, True), (3, 3, 1, True),
                                                          (4, 3, 1, False), (2, 3, 2, False), (2, 1, 1, False)])
def test_conv2d_routes_exactly_the_maps_no_larger_than_their_window(monkeypatch, size, kernel, groups, routed):
    """The small NiN's last block (3×3 at 2×2) is a dense layer: forward and both gradients run here, and
    give the definition's values; larger maps, grouped and 1×1 convolutions take the other lowerings."""
    calls = []
    for name in ("conv2d", "conv2d_backward_input", "conv2d_backward_weight"):
        original = getattr(toeplitz, name)
        monkeypatch.setattr(toeplitz, name, lambda *args, _f=original, _n=name: calls.append(_n) or _f(*args))
    x_value, w_value = values((3, 4, size, size), 0), values((6, 4 // groups, kernel, kernel), 1)
    x, w = ninx.tensor(x_value, requires_grad=True), ninx.tensor(w_value, requires_grad=True)
    y = F.conv2d(x, w, padding=kernel // 2, groups=groups)
    gy = values(y.shape, 2)
    y.backward(ninx.tensor(gy))
    assert len(calls) == (3 if routed else 0)
    ref.assert_close(y.numpy(), ref.conv2d(x_value, w_value, None, 1, kernel // 2, 1, groups), np.float64, terms=40)
    dx, dw = ref.conv2d_gradients(x_value, w_value, gy, 1, kernel // 2, 1, groups)
    ref.assert_close(x.grad.numpy(), dx, np.float64, terms=60)
    ref.assert_close(w.grad.numpy(), dw, np.float64, terms=60)
