"""conv2d against a loop reference (forward) and finite differences (backward), over drawn geometries:
stride, padding and dilation as ints or pairs, groups (depthwise too), bias, float32 and float64, and inputs
and weights that reach the op as non-contiguous views made inside ninx."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
import references as ref
from ninx.backend import get_backend
from ninx.nn import functional as F
from ninx.testing import gradcheck
from strategies import conv_cases, seeds, values


def leaves(case, device, dtype, requires_grad=False, transform=lambda a: a):
    """(x, w, b) tensors holding transform(values), x and w in their drawn layouts; b is None without bias."""
    x, w, b = case.arrays()

    def make(a, layout=None):
        stored = layout.store(transform(a)) if layout else transform(a)
        return ninx.tensor(stored, dtype=dtype, requires_grad=requires_grad, device=device)
    return make(x, case.x_layout), make(w, case.w_layout), None if b is None else make(b)


def conv(case):
    """The op under test as a function of the leaves: views first, then conv2d."""
    return lambda x, w, b=None: F.conv2d(case.x_layout.view(x), case.w_layout.view(w), b, **case.options)


def summed_terms(case):
    """How many products each output sums: (C/groups)·kh·kw, plus the bias."""
    return int(np.prod(case.w_shape[1:])) + int(case.bias)


@pytest.mark.parametrize("bias", [False, True])
@given(data=st.data())
def test_forward_matches_reference(device, bias, data):
    case = data.draw(conv_cases(bias=bias))
    x, w, b = case.arrays()
    y = conv(case)(*leaves(case, device, case.dtype))
    expected = ref.conv2d(x, w, b, **case.options)
    magnitude = ref.conv2d(abs(x), abs(w), None if b is None else abs(b), **case.options)
    ref.assert_close(y.numpy(), expected, case.dtype, terms=summed_terms(case), magnitude=magnitude)


@pytest.mark.parametrize("bias", [False, True])
@settings(max_examples=8)
@given(data=st.data())
def test_gradients_match_finite_differences(device, bias, data):
    case = data.draw(conv_cases(bias=bias))
    inputs = [t for t in leaves(case, device, np.float64, requires_grad=True) if t is not None]
    gradcheck(conv(case), inputs)


@pytest.mark.parametrize("bias", [False, True])
@settings(max_examples=6)
@given(data=st.data(), seed=seeds)
def test_float32_gradients_agree_with_float64(device, bias, data, seed):
    """The float32 backward (its own GEMM and col2im instances) matches the float64 one that gradcheck proves."""
    case = data.draw(conv_cases(bias=bias))

    def gradients(dtype, take_abs=False):
        ts = leaves(case, device, dtype, requires_grad=True, transform=np.abs if take_abs else lambda a: a)
        y = conv(case)(*ts)
        gy = values(y.shape, seed)
        y.backward(abs(gy) if take_abs else gy)
        return [t.grad.numpy() for t in ts if t is not None]

    low, high, magnitude = gradients(np.float32), gradients(np.float64), gradients(np.float64, take_abs=True)
    n, _, oh, ow = conv(case)(*leaves(case, device, np.float64)).shape
    terms = max(n * oh * ow, case.w_shape[0] // case.groups * case.w_shape[2] * case.w_shape[3])
    for got, want, size in zip(low, high, magnitude):
        ref.assert_close(got, want, np.float32, terms=terms, magnitude=size)


@given(multiplier=st.integers(1, 2), stride=st.integers(1, 2), seed=seeds)
def test_depthwise_convolves_each_channel_with_its_own_filters(device, multiplier, stride, seed):
    """groups = channels: output channel o sees only input channel o // multiplier."""
    c = 4
    x, w = values((2, c, 7, 6), seed), values((c * multiplier, 1, 3, 3), seed + 1)
    y = F.conv2d(ninx.tensor(x, dtype=np.float64, device=device), ninx.tensor(w, dtype=np.float64, device=device),
                 stride=stride, padding=1, groups=c).numpy()
    for o in range(c * multiplier):
        alone = ref.conv2d(x[:, o // multiplier:o // multiplier + 1], w[o:o + 1], stride=stride, padding=1)
        ref.assert_close(y[:, o:o + 1], alone, np.float64, terms=9)


@pytest.mark.parametrize("groups", [1, 2])
def test_a_batch_lowered_a_chunk_of_images_at_a_time_gives_the_same_values_and_gradients(monkeypatch, groups):
    """The CPU's input gradient: with a column budget of one byte every image is its own chunk of dcols;
    the values and all gradients are the loop reference's either way, and the Function keeps no column
    matrix. (The cuda device builds none: it gathers the windows in the GEMM's loader.)"""
    import ninx_kernels.cpu.conv as conv_op
    device = "cpu"
    monkeypatch.setattr(conv_op, "COLUMN_BYTES", 1)
    x0, w0, b0 = values((3, 4, 6, 5), 1), values((6, 4 // groups, 3, 3), 2), values((6,), 3)
    x, w, b = (ninx.tensor(a, dtype=np.float64, requires_grad=True, device=device) for a in (x0, w0, b0))
    y = F.conv2d(x, w, b, stride=(2, 1), padding=1, groups=groups)
    expected = ref.conv2d(x0, w0, b0, stride=(2, 1), padding=1, groups=groups)
    ref.assert_close(y.numpy(), expected, np.float64, terms=36)
    assert not hasattr(y.creator, "cols")
    gy = values(y.shape, 4)
    y.backward(gy)
    chunked = [t.grad.numpy().copy() for t in (x, w, b)]
    monkeypatch.setattr(conv_op, "COLUMN_BYTES", 1 << 30)  # the whole batch at once
    for t in (x, w, b):
        t.zero_grad_()
    F.conv2d(x, w, b, stride=(2, 1), padding=1, groups=groups).backward(gy)
    for got, t in zip(chunked, (x, w, b)):
        ref.assert_close(got, t.grad.numpy(), np.float64, terms=100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_bias_gradient_is_the_sum_of_dy_over_images_and_pixels(device, dtype):
    """conv2d_backward_bias, the kernel behind an unfused convolution's bias gradient: Σ dy over N, oh, ow
    for each channel, from a non-contiguous dy too, for planes of one pixel and for an empty batch."""
    backend = get_backend(device)
    rng = np.random.default_rng(5)
    for shape in ((3, 5, 7, 9), (4, 6, 1, 1), (0, 3, 2, 2)):
        gy = rng.standard_normal(shape)
        for given_dy in (gy, np.asfortranarray(gy)):
            got = backend.conv2d_backward_bias(backend.asarray(given_dy, dtype))
            got = np.asarray(got.get() if hasattr(got, "get") else got)
            assert got.dtype == dtype and got.shape == (shape[1],)
            np.testing.assert_allclose(got, gy.astype(dtype).astype(np.float64).sum(axis=(0, 2, 3)),
                                       rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
