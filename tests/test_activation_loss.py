"""relu, relu6, dropout, linear, softmax, log_softmax and cross_entropy against references from their
definitions; gradients by gradcheck, and exactly where the definition pins them (kinks, dropout's mask)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ninx
import references as ref
from ninx.nn import functional as F
from ninx.testing import gradcheck
from strategies import dtypes, layouts, seeds, small_shapes, values

any_shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)
CLAMPS = {"relu": (F.relu, ref.relu), "relu6": (F.relu6, ref.relu6)}


def leaf(a, device, dtype=np.float64, requires_grad=False):
    return ninx.tensor(a, dtype=dtype, requires_grad=requires_grad, device=device)


@pytest.mark.parametrize("kind", sorted(CLAMPS))
@settings(max_examples=10)
@given(shape=any_shapes, dtype=dtypes, seed=seeds, data=st.data())
def test_relu_and_relu6_clamp_exactly(device, kind, shape, dtype, seed, data):
    op, reference = CLAMPS[kind]
    x0 = values(shape, seed) * 5  # reaches past relu6's cap
    layout = data.draw(layouts(len(shape)))
    y = op(layout.view(leaf(layout.store(x0), device, dtype)))
    assert y.shape == shape
    ref.assert_close(y.numpy(), reference(x0.astype(dtype)), dtype, magnitude=0)


@pytest.mark.parametrize("kind", sorted(CLAMPS))
@settings(max_examples=5)
@given(shape=any_shapes, seed=seeds)
def test_relu_and_relu6_gradients(device, kind, shape, seed):
    gradcheck(CLAMPS[kind][0], [leaf(values(shape, seed) * 5, device, requires_grad=True)])


def test_clamp_gradients_at_the_kinks_are_zero(device):
    """PyTorch's rule: the gradient passes only where 0 < x (< 6 for relu6), none at the kinks themselves."""
    x0 = [-1.0, 0.0, 3.0, 6.0, 7.0]
    for op, expected in ((F.relu, [0, 0, 1, 1, 1]), (F.relu6, [0, 0, 1, 0, 0])):
        x = leaf(x0, device, np.float32, requires_grad=True)
        op(x).sum().backward()
        assert x.grad.numpy().tolist() == expected


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keeps_a_fraction_1_minus_p_scaled_by_its_inverse(device, p):
    ninx.manual_seed(1234)
    n = 100_000
    x0 = values((200, n // 200), 0, 1.0, 2.0)  # no zeros, so a dropped element is one that reads 0
    x = leaf(x0, device, np.float32, requires_grad=True)
    y = F.dropout(x, p)
    kept = y.numpy() != 0
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma
    ref.assert_close(y.numpy()[kept], x0.astype(np.float32)[kept] / (1 - p), np.float32, terms=2)
    y.backward(np.ones(y.shape))
    ref.assert_close(x.grad.numpy(), np.where(kept, 1 / (1 - p), 0.0), np.float32, terms=2)  # the gradient is the mask


def test_dropout_is_the_identity_in_eval_mode_and_at_p_0_and_reproducible_by_seed(device):
    x = leaf(values((4, 5), 0), device, np.float32, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x and F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).numpy().any()
    ninx.manual_seed(7)
    first = F.dropout(x, 0.5).numpy()
    ninx.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), first)


@pytest.mark.parametrize("bias", [False, True])
@settings(max_examples=10)
@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), features=st.integers(1, 6),
       outputs=st.integers(1, 5), dtype=dtypes, seed=seeds)
def test_linear(device, bias, batch, features, outputs, dtype, seed):
    x0, w0 = values(batch + (features,), seed), values((outputs, features), seed + 1)
    b0 = values((outputs,), seed + 2) if bias else None
    args = [leaf(x0, device, dtype), leaf(w0, device, dtype)] + ([leaf(b0, device, dtype)] if bias else [])
    expected = ref.linear(x0.astype(dtype), w0.astype(dtype), None if b0 is None else b0.astype(dtype))
    magnitude = ref.linear(abs(x0), abs(w0), None if b0 is None else abs(b0))
    ref.assert_close(F.linear(*args).numpy(), expected, dtype, terms=features + 1, magnitude=magnitude)
    inputs = [leaf(a, device, requires_grad=True) for a in (x0, w0, b0) if a is not None]
    gradcheck(F.linear, inputs)


SOFTMAXES = {"softmax": (F.softmax, ref.softmax), "log_softmax": (F.log_softmax, ref.log_softmax)}


@pytest.mark.parametrize("kind", sorted(SOFTMAXES))
@pytest.mark.parametrize("scale", [1.0, 1e4])
@settings(max_examples=8)
@given(shape=small_shapes, dtype=dtypes, seed=seeds, data=st.data())
def test_softmax_and_log_softmax_even_for_huge_logits(device, kind, scale, shape, dtype, seed, data):
    op, reference = SOFTMAXES[kind]
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x0 = (values(shape, seed) * scale).astype(dtype)
    y = op(leaf(x0, device, dtype), dim=dim).numpy()
    magnitude = np.abs(x0) + np.abs(x0).max(axis=dim, keepdims=True) + 1 if kind == "log_softmax" else 1
    ref.assert_close(y, reference(x0, dim), dtype, terms=shape[dim] + 2, magnitude=magnitude)


@pytest.mark.parametrize("kind", sorted(SOFTMAXES))
@settings(max_examples=5)
@given(shape=small_shapes, seed=seeds, data=st.data())
def test_softmax_and_log_softmax_gradients(device, kind, shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    gradcheck(lambda t: SOFTMAXES[kind][0](t, dim=dim), [leaf(values(shape, seed), device, requires_grad=True)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [1.0, 1e4])
@settings(max_examples=6)
@given(n=st.integers(1, 4), classes=st.integers(1, 6), dtype=dtypes, seed=seeds, data=st.data())
def test_cross_entropy_even_for_huge_logits(device, reduction, scale, n, classes, dtype, seed, data):
    logits = (values((n, classes), seed) * scale).astype(dtype)
    labels = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    x = leaf(logits, device, dtype, requires_grad=True)
    loss = F.cross_entropy(x, labels, reduction=reduction)
    magnitude = np.abs(logits).max() * 2 + 1
    ref.assert_close(loss.numpy(), ref.cross_entropy(logits, labels, reduction), dtype, terms=classes + n,
                     magnitude=magnitude)
    loss.backward(np.ones(loss.shape))
    ref.assert_close(x.grad.numpy(), ref.cross_entropy_grad(logits, labels, reduction), dtype, terms=classes + 2,
                     magnitude=1)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@settings(max_examples=4)
@given(n=st.integers(1, 4), classes=st.integers(1, 6), seed=seeds, data=st.data())
def test_cross_entropy_gradients(device, reduction, n, classes, seed, data):
    labels = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    gradcheck(lambda t: F.cross_entropy(t, labels, reduction=reduction),
              [leaf(values((n, classes), seed), device, requires_grad=True)])


def test_cross_entropy_takes_labels_as_a_tensor_list_or_array(device):
    logits = leaf([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]], device)
    expected = ref.cross_entropy(np.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]]), np.array([0, 2]))
    for labels in ([0, 2], np.array([0, 2]), ninx.tensor([0, 2], device=device)):
        ref.assert_close(F.cross_entropy(logits, labels).numpy(), expected, np.float64, terms=4)


def test_relu_gradient_at_infinity_and_nan_follows_pytorch(device):
    # torch: relu passes the gradient wherever x > 0 is not false-by-kink: +inf and NaN pass; relu6 stops at and
    # beyond 6 (inf included) and passes NaN
    x = ninx.tensor([-1.0, 0.0, np.inf, np.nan, 6.0, 7.0], dtype=np.float64, requires_grad=True, device=device)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1, 1, 1, 1])
    x.zero_grad_()
    F.relu6(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 1, 0, 0])
