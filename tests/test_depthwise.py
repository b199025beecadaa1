"""Depthwise convolution (groups = input channels, any channel multiplier): F.conv2d routes it to the backend's
direct depthwise kernels — never to the GEMM-lowered conv2d — and it matches the loop reference and finite
differences over drawn strides, paddings, dilations and multipliers, float32 and float64."""
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
import references as ref
from ninx.geometry import window2d
from ninx.nn import functional as F
from ninx.testing import gradcheck
from strategies import as_pair, dtypes, int_or_pair, layouts, seeds, values


@st.composite
def depthwise_cases(draw):
    """(x shape, w shape, options) of a valid depthwise conv: C ≥ 2 channels, multiplier 1–3."""
    c, multiplier = draw(st.integers(2, 4)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride, padding, dilation = (draw(int_or_pair(st.integers(1, 3))), draw(int_or_pair(st.integers(0, 2))),
                                 draw(int_or_pair(st.integers(1, 2))))
    (ph, pw), (dh, dw) = as_pair(padding), as_pair(dilation)
    low_h, low_w = max(1, dh * (kh - 1) + 1 - 2 * ph), max(1, dw * (kw - 1) + 1 - 2 * pw)
    h, w = draw(st.integers(low_h, max(low_h, 9))), draw(st.integers(low_w, max(low_w, 9)))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=c)
    return (draw(st.integers(1, 2)), c, h, w), (c * multiplier, 1, kh, kw), options


def arrays(x_shape, w_shape, seed, bias):
    x, w = values(x_shape, seed), values(w_shape, seed + 1) / np.sqrt(w_shape[2] * w_shape[3])
    return x, w, values(w_shape[:1], seed + 2) if bias else None


def tensors(arrays_, device, dtype, requires_grad=False):
    return [None if a is None else ninx.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad)
            for a in arrays_]


@pytest.mark.parametrize("bias", [False, True])
@settings(max_examples=12)
@given(case=depthwise_cases(), dtype=dtypes, seed=seeds, layout=layouts(4))
def test_depthwise_matches_the_loop_reference(device, bias, case, dtype, seed, layout):
    x_shape, w_shape, options = case
    x, w, b = arrays(x_shape, w_shape, seed, bias)
    xt = layout.view(ninx.tensor(layout.store(x), dtype=dtype, device=device))
    y = F.conv2d(xt, *tensors((w, b), device, dtype), **options)
    magnitude = ref.conv2d(abs(x), abs(w), None if b is None else abs(b), **options)
    ref.assert_close(y.numpy(), ref.conv2d(x, w, b, **options), dtype, terms=w_shape[2] * w_shape[3] + 1,
                     magnitude=magnitude)


@pytest.mark.parametrize("bias", [False, True])
@settings(max_examples=6)
@given(case=depthwise_cases(), seed=seeds)
def test_depthwise_gradients_match_finite_differences(device, bias, case, seed):
    x_shape, w_shape, options = case
    leaves = [t for t in tensors(arrays(x_shape, w_shape, seed, bias), device, np.float64, True) if t is not None]
    gradcheck(lambda *ts: F.conv2d(*ts, **options), leaves)


@settings(max_examples=5)
@given(case=depthwise_cases(), seed=seeds)
def test_depthwise_float32_gradients_agree_with_float64(device, case, seed):
    x_shape, w_shape, options = case

    def gradients(dtype, transform=lambda a: a):
        ts = tensors([transform(a) for a in arrays(x_shape, w_shape, seed, True)], device, dtype, True)
        y = F.conv2d(*ts, **options)
        y.backward(transform(values(y.shape, seed + 3)))
        return [t.grad.numpy() for t in ts]

    n, _, oh, ow = ref.conv2d(*arrays(x_shape, w_shape, seed, False)[:2], **options).shape
    for low, high, size in zip(gradients(np.float32), gradients(np.float64), gradients(np.float64, np.abs)):
        ref.assert_close(low, high, np.float32, terms=max(n * oh * ow, w_shape[0] * w_shape[2] * w_shape[3]),
                         magnitude=size)


@pytest.mark.parametrize("groups, multiplier, depthwise", [(4, 1, True), (4, 2, True), (2, 1, False),
                                                           (1, 3, False)])
def test_conv2d_chooses_the_depthwise_kernels_exactly_when_groups_equal_channels(device, monkeypatch, groups,
                                                                                  multiplier, depthwise):
    """groups == C (> 1) runs depthwise_conv2d forward and its two gradients and no GEMM-lowered conv2d;
    any other grouping (and a one-channel input, an ordinary convolution) keeps the GEMM path."""
    backend = ninx.backend.get_backend(device)
    calls = []
    for name in ("depthwise_conv2d", "depthwise_conv2d_backward_input", "depthwise_conv2d_backward_weight",
                 "conv2d", "conv2d_backward_input", "conv2d_backward_weight", "gemm"):
        real = getattr(backend, name)
        monkeypatch.setattr(backend, name,
                            lambda *args, _real=real, _name=name, **kw: calls.append(_name) or _real(*args, **kw))
    c = 4 if groups > 1 else 1
    x = ninx.tensor(values((2, c, 6, 5), 0), requires_grad=True, device=device)
    w = ninx.tensor(values((groups * multiplier, c // groups, 3, 3), 1), requires_grad=True, device=device)
    F.conv2d(x, w, stride=2, padding=1, groups=groups).sum().backward()
    used = set(calls)
    if depthwise:
        assert used == {"depthwise_conv2d", "depthwise_conv2d_backward_input", "depthwise_conv2d_backward_weight"}
    else:
        assert not used & {"depthwise_conv2d", "depthwise_conv2d_backward_input", "depthwise_conv2d_backward_weight"}
        assert used == {"conv2d", "conv2d_backward_input", "conv2d_backward_weight"}


@pytest.mark.parametrize("weight_wants_grad", [True, False])
def test_a_depthwise_bias_gradient_comes_from_the_weight_gradients_pass(device, monkeypatch, weight_wants_grad):
    """With the weight and the bias both wanting gradients, backward asks the backend once for both
    (depthwise_conv2d_backward_weight_bias), and no pass of its own over gy sums the bias; with the weight
    frozen, conv2d_backward_bias alone. Either way gb = Σ gy over images and output positions."""
    backend = ninx.backend.get_backend(device)
    calls = []
    for name in ("depthwise_conv2d_backward_weight", "depthwise_conv2d_backward_weight_bias",
                 "conv2d_backward_bias"):
        real = getattr(backend, name)
        monkeypatch.setattr(backend, name,
                            lambda *args, _real=real, _name=name, **kw: calls.append(_name) or _real(*args, **kw))
    x, w, b = tensors(arrays((3, 4, 9, 7), (8, 1, 3, 3), 4, True), device, np.float64, True)
    w.requires_grad_(weight_wants_grad)
    y = F.conv2d(x, w, b, stride=2, padding=1, groups=4)
    gy = values(y.shape, 7)
    y.backward(ninx.tensor(gy, device=device))
    assert calls == (["depthwise_conv2d_backward_weight_bias"] if weight_wants_grad else ["conv2d_backward_bias"])
    np.testing.assert_allclose(b.grad.numpy(), gy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)


def test_a_mobilenet_sized_depthwise_layer_matches_the_reference(device):
    """MobileNetV2's 3×3 stride-2 depthwise conv at a reduced size, float32, every output channel checked."""
    x, w = values((1, 16, 14, 14), 5), values((16, 1, 3, 3), 6) / 3
    y = F.conv2d(ninx.tensor(x, dtype=np.float32, device=device), ninx.tensor(w, dtype=np.float32, device=device),
                 stride=2, padding=1, groups=16)
    ref.assert_close(y.numpy(), ref.conv2d(x, w, stride=2, padding=1, groups=16), np.float32, terms=9,
                     magnitude=ref.conv2d(abs(x), abs(w), stride=2, padding=1, groups=16))


def _by_taps(x, w, gy, stride):
    """(y, gx, gw) of a 3×3 depthwise conv with padding 1, from the definition: each tap (i, j) a strided view
    of the padded input, y = Σ w[c, i, j] · view, gx its adjoint scattered back, gw[c, i, j] = Σ gy · view."""
    n, c, h, width = x.shape
    oh, ow = gy.shape[2:]
    x_padded, gx_padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), np.zeros((n, c, h + 2, width + 2))
    y, gw = np.zeros(gy.shape), np.zeros((c, 1, 3, 3))
    for i in range(3):
        for j in range(3):
            window = (slice(None), slice(None), slice(i, i + stride * (oh - 1) + 1, stride),
                      slice(j, j + stride * (ow - 1) + 1, stride))
            tap = w[None, :, 0, i, j, None, None]
            y += tap * x_padded[window]
            gx_padded[window] += tap * gy
            gw[:, 0, i, j] = (gy * x_padded[window]).sum(axis=(0, 2, 3))
    return y, gx_padded[:, :, 1:-1, 1:-1], gw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [1, 2])
def test_rows_wider_than_several_vectors_give_the_definitions_values_and_gradients(device, dtype, stride):
    """Plane rows of 53 (more than three vectors of any target) go in and out of the frames as one run
    each: the forward, the input gradient and the weight gradient match the definition's (`_by_taps`)."""
    x, w = values((2, 3, 37, 53), 21), values((3, 1, 3, 3), 22) / 3
    gy = values((2, 3, (37 - 1) // stride + 1, (53 - 1) // stride + 1), 23)
    xt, wt = (ninx.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in (x, w))
    y = F.conv2d(xt, wt, stride=stride, padding=1, groups=3)
    y.backward(ninx.tensor(gy, dtype=dtype, device=device))
    expected, magnitude = _by_taps(x, w, gy, stride), _by_taps(abs(x), abs(w), abs(gy), stride)
    for actual, want, size, terms in zip((y, xt.grad, wt.grad), expected, magnitude, (9, 9, gy[:, 0].size)):
        ref.assert_close(actual.numpy(), want, dtype, terms=terms, magnitude=size)


@pytest.mark.parametrize("kernel, stride, padding, dilation", [((3, 3), 2, 1, 1), ((1, 3), 1, 2, 1),
                                                               ((3, 2), (1, 2), (0, 1), 2),
                                                               ((3, 4), (2, 3), (2, 1), (2, 1)),
                                                               ((2, 3), 3, (1, 2), (3, 2))])
def test_planes_stacked_a_few_images_at_a_time_give_the_same_convolution(monkeypatch, kernel, stride, padding,
                                                                         dilation):
    """The CPU kernels stack a channel's planes of several images in one frame, split into a phase frame for
    each remainder of the rows' stride: with room for two images, five go in stacks of 2, 2 and 1
    (the last leaving older planes behind it), padding wider than a tap's reach and dilations that share
    a factor with the stride included; the forward matches the loop reference and the gradients finite
    differences (the bias's among them, summed a stack at a time beside the weight's)."""
    depthwise = importlib.import_module("ninx_kernels.cpu.depthwise")
    x_shape, w_shape = (5, 3, 7, 6), (6, 1) + kernel
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=3)
    x, w, b = arrays(x_shape, w_shape, 11, True)
    g = window2d("conv2d", x_shape, kernel, stride, padding, dilation)
    one = depthwise.stack_for(g, 1, 8, depthwise.STACK_BYTES)
    room = 2 * g.sh * one.period * one.pitch * 8 + 1
    monkeypatch.setattr(depthwise, "STACK_BYTES", room)
    assert depthwise.stack_for(g, 5, 8, room).images == 2
    y = F.conv2d(*tensors((x, w, b), "cpu", np.float64), **options)
    ref.assert_close(y.numpy(), ref.conv2d(x, w, b, **options), np.float64, terms=w_shape[2] * w_shape[3] + 1,
                     magnitude=ref.conv2d(abs(x), abs(w), abs(b), **options))
    gradcheck(lambda *ts: F.conv2d(*ts, **options), tensors((x, w, b), "cpu", np.float64, True))


@pytest.mark.parametrize("kernel, stride", [((3, 3), 1), ((2, 4), 1), ((1, 5), 1), ((5, 1), 1), ((3, 3), 2),
                                            ((2, 4), (3, 2))])
def test_an_infinite_or_nan_input_reaches_exactly_the_outputs_whose_windows_hold_it(device, kernel, stride):
    """The CPU forward sums a kernel row's taps up to three a loop, over phase frames where the rows' stride
    is above 1: an output whose window holds +inf or NaN is inf or NaN as in the reference, and no other output
    is (no tap reads past its row, its phase or its plane)."""
    x, w, b = arrays((2, 3, 8, 9), (3, 1) + kernel, 21, True)
    x[0, 1, 3, 4], x[1, 2, 0, 8] = np.inf, np.nan
    w = np.abs(w) + 0.1  # no zero weights: 0 · inf would be NaN in the reference as well
    options = dict(stride=stride, padding=(kernel[0] // 2, kernel[1] // 2), groups=3)
    y = F.conv2d(*tensors((x, w, b), device, np.float32), **options).numpy()
    expected = ref.conv2d(x, w, b, **options)
    assert np.isnan(expected).any() and np.isinf(expected).any()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(expected))
    finite = np.isfinite(expected)
    ref.assert_close(y[finite], expected[finite], np.float32, terms=kernel[0] * kernel[1] + 1,
                     magnitude=ref.conv2d(abs(np.nan_to_num(x, posinf=0)), w, abs(b), **options)[finite])
