"""Pooling against loop references written from PyTorch's documented rules: max_pool2d (kernel, stride,
padding, dilation, ceil_mode; the first maximum in row-major window order takes the gradient), avg_pool2d
(count_include_pad, ceil_mode, divisor_override), global and adaptive average pooling."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
import references as ref
from ninx.nn import functional as F
from ninx.testing import gradcheck
from strategies import as_pair, pool_cases, seeds, values


def leaf(case, x, device, dtype=None, requires_grad=False):
    return ninx.tensor(case.layout.store(x), dtype=dtype or case.dtype, requires_grad=requires_grad, device=device)


# values where windows tie: a few integers, all negative in one set so that padding (never a candidate)
# would win if it were read as zeros
TIE_SETS = {"distinct": None, "ties": (-1.0, 0.0, 1.0), "negative ties": (-3.0, -2.0, -1.0)}


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("kind", sorted(TIE_SETS))
@settings(max_examples=10)
@given(data=st.data(), seed=seeds)
def test_max_pool_values_and_first_max_gradient_are_exact(device, ceil_mode, kind, data, seed):
    case = data.draw(pool_cases(ceil_mode=ceil_mode))
    rng = np.random.default_rng(seed)
    choices = TIE_SETS[kind]
    x = values(case.x_shape, seed) if choices is None else rng.choice(choices, case.x_shape)
    xt = leaf(case, x, device, requires_grad=True)
    y = F.max_pool2d(case.layout.view(xt), **case.max_options)
    expected, where = ref.max_pool2d(x.astype(case.dtype), **case.max_options)
    ref.assert_close(y.numpy(), expected, case.dtype, magnitude=0)

    gy = rng.integers(-4, 5, y.shape).astype(np.float64)  # small integers: every sum of them is exact
    y.backward(gy)
    grad = case.layout.view(xt.grad).numpy()
    ref.assert_close(grad, ref.max_pool2d_grad(case.x_shape, gy, where), case.dtype, magnitude=0)


@pytest.mark.parametrize("stride, padding, dilation", [(1, 0, 1), (2, 1, 1), (3, 1, 1), (2, 0, 2), (1, 1, (1, 2))])
def test_max_pool_of_rows_wider_than_a_vector_over_many_planes(device, stride, padding, dilation):
    """More outputs a row than a vector holds and more planes than the CPU pools at once (four), with ties
    and −inf (first maximum), then NaN (it wins: the window's maximum is NaN)."""
    rng = np.random.default_rng(stride)
    x = rng.choice([-np.inf, -1.0, 0.0, 1.0, 2.0], (3, 5, 23, 41))
    options = {"kernel_size": 3, "stride": stride, "padding": padding, "dilation": dilation}
    xt = ninx.tensor(x, dtype=np.float32, requires_grad=True, device=device)
    y = F.max_pool2d(xt, **options)
    expected, where = ref.max_pool2d(x, **options)
    ref.assert_close(y.numpy(), expected, np.float32, magnitude=0)
    gy = rng.integers(-4, 5, y.shape).astype(np.float64)
    y.backward(gy)
    ref.assert_close(xt.grad.numpy(), ref.max_pool2d_grad(x.shape, gy, where), np.float32, magnitude=0)
    x[rng.random(x.shape) < 0.02] = np.nan
    with_nan, _ = ref.max_pool2d(np.where(np.isnan(x), np.inf, x), **options)  # no +inf otherwise
    got = F.max_pool2d(ninx.tensor(x, dtype=np.float32, device=device), **options).numpy()
    np.testing.assert_array_equal(got, np.where(np.isinf(with_nan) & (with_nan > 0), np.nan, with_nan))


def test_max_pool_gives_a_tied_window_gradient_to_its_first_maximum_only(device):
    """One 3×3 window of equal values: row-major order makes (0, 0) the first maximum."""
    x = ninx.tensor(np.full((1, 1, 3, 3), 2.0), requires_grad=True, device=device)
    F.max_pool2d(x, 3).sum().backward()
    assert x.grad.numpy()[0, 0].tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    # with a later row holding the maximum twice, the leftmost of that row wins
    x = ninx.tensor([[[[0.0, 1.0, 0.0], [5.0, 0.0, 5.0], [0.0, 5.0, 0.0]]]], requires_grad=True, device=device)
    F.max_pool2d(x, 3).sum().backward()
    assert x.grad.numpy()[0, 0].tolist() == [[0, 0, 0], [1, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("ceil_mode", [False, True])
@settings(max_examples=8)
@given(data=st.data())
def test_max_pool_gradients_match_finite_differences(device, ceil_mode, data):
    case = data.draw(pool_cases(ceil_mode=ceil_mode))
    x = leaf(case, values(case.x_shape, case.seed), device, np.float64, requires_grad=True)
    gradcheck(lambda t: F.max_pool2d(case.layout.view(t), **case.max_options), [x])


def avg_terms(case):
    kh, kw = as_pair(case.kernel_size)
    return kh * kw


avg_options = pytest.mark.parametrize("ceil_mode, count_include_pad", [(c, i) for c in (False, True)
                                                                       for i in (False, True)])


@avg_options
@settings(max_examples=12)
@given(data=st.data())
def test_avg_pool_matches_reference(device, ceil_mode, count_include_pad, data):
    case = data.draw(pool_cases(dilated=False, ceil_mode=ceil_mode, count_include_pad=count_include_pad))
    x = values(case.x_shape, case.seed)
    y = F.avg_pool2d(case.layout.view(leaf(case, x, device)), **case.avg_options)
    expected = ref.avg_pool2d(x, **case.avg_options)
    magnitude = ref.avg_pool2d(abs(x), **case.avg_options)
    ref.assert_close(y.numpy(), expected, case.dtype, terms=avg_terms(case), magnitude=magnitude)


@avg_options
@settings(max_examples=5)
@given(data=st.data())
def test_avg_pool_gradients_match_finite_differences(device, ceil_mode, count_include_pad, data):
    case = data.draw(pool_cases(dilated=False, ceil_mode=ceil_mode, count_include_pad=count_include_pad))
    x = leaf(case, values(case.x_shape, case.seed), device, np.float64, requires_grad=True)
    gradcheck(lambda t: F.avg_pool2d(case.layout.view(t), **case.avg_options), [x])


@avg_options
@settings(max_examples=4)
@given(data=st.data(), seed=seeds)
def test_avg_pool_float32_gradient_agrees_with_float64(device, ceil_mode, count_include_pad, data, seed):
    case = data.draw(pool_cases(dilated=False, ceil_mode=ceil_mode, count_include_pad=count_include_pad))
    def gradient(dtype, transform=lambda a: a):
        x = leaf(case, transform(values(case.x_shape, case.seed)), device, dtype, requires_grad=True)
        y = F.avg_pool2d(case.layout.view(x), **case.avg_options)
        y.backward(transform(values(y.shape, seed)))
        return x.grad.numpy()

    ref.assert_close(gradient(np.float32), gradient(np.float64), np.float32, terms=avg_terms(case),
                     magnitude=gradient(np.float64, np.abs))


def test_ceil_mode_drops_a_window_that_would_start_in_the_right_padding(device):
    # H = 5, kernel 2, stride 2, padding 1: ceil((5 + 2 − 2) / 2) + 1 = 4 windows, but the 4th would start at
    # row 5, inside the right padding, so there are 3; the corner window holds one input element of four
    x = ninx.tensor(np.ones((1, 1, 5, 5)), device=device)
    y = F.avg_pool2d(x, 2, stride=2, padding=1, ceil_mode=True)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[0.25, 0.5, 0.5], [0.5, 1, 1], [0.5, 1, 1]])
    assert F.max_pool2d(x, 2, stride=2, padding=1, ceil_mode=True).shape == (1, 1, 3, 3)


@pytest.mark.parametrize("count_include_pad, divisor_override, corner", [(True, None, 0.25), (False, None, 1.0),
                                                                         (True, 9, 1 / 9)])
def test_ceil_mode_window_past_the_padding_divides_by_its_part_inside_the_padding(
        device, count_include_pad, divisor_override, corner):
    # H = 4, kernel 3, stride 2, padding 1, ceil_mode: the last window starts at row 3 and spans rows 3..5;
    # rows 3, 4 lie in the padded input [−1, 5) and only row 3 in the input
    x = ninx.tensor(np.ones((1, 1, 4, 4)), device=device)
    y = F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=count_include_pad,
                     divisor_override=divisor_override).numpy()
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 2, 2] == pytest.approx(corner)


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 9), st.integers(1, 9)),
       dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_global_and_adaptive_average_pooling_are_the_plane_mean(device, shape, dtype, seed):
    x = values(shape, seed)
    expected = np.einsum("nchw->nc", x)[:, :, None, None] / (shape[2] * shape[3])
    pools = (F.global_avg_pool2d, lambda t: F.adaptive_avg_pool2d(t, 1), lambda t: F.adaptive_avg_pool2d(t, (1, 1)))
    for pool in pools:
        y = pool(ninx.tensor(x, dtype=dtype, device=device))
        ref.assert_close(y.numpy(), expected, dtype, terms=shape[2] * shape[3],
                         magnitude=np.abs(x).mean(axis=(2, 3), keepdims=True))
    gradcheck(F.global_avg_pool2d, [ninx.tensor(x, dtype=np.float64, requires_grad=True, device=device)])


@given(blocks=st.tuples(st.integers(1, 3), st.integers(1, 3)), size=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       seed=seeds)
def test_adaptive_average_pooling_to_a_divisor_of_the_size_averages_blocks(device, blocks, size, seed):
    (oh, ow), (bh, bw) = size, blocks
    x = values((2, 3, oh * bh, ow * bw), seed)
    expected = x.reshape(2, 3, oh, bh, ow, bw).mean(axis=(3, 5))
    y = F.adaptive_avg_pool2d(ninx.tensor(x, dtype=np.float64, device=device), (oh, ow))
    ref.assert_close(y.numpy(), expected, np.float64, terms=bh * bw)
