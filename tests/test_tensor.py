"""Tensor operators and methods: + − * / @, unary minus, power by a scalar (numpy broadcasting, gradients summed
back to each operand's shape); sum, mean, max over axes; reshape, transpose/permute, flatten, cat, indexing;
exp, log; matmul with 1-D and broadcast batch operands, fed as non-contiguous views."""
import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
import references as ref
from ninx.testing import gradcheck
from strategies import (broadcast_pairs, dtypes, layouts, matmul_shapes, reductions, seeds, small_shapes,
                        values)

BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def operand(shape, seed, op, second):
    """Values for an operand; a divisor stays away from zero."""
    x = values(shape, seed)
    return np.sign(x + 0.5) * np.abs(values(shape, seed, 0.5, 2.0)) if op == "/" and second else x


def tensor_in(layout, a, dtype, device, requires_grad=False):
    """A tensor equal to `a`, reached through `layout` (a non-contiguous view for all but 'contiguous')."""
    return layout.view(ninx.tensor(layout.store(a), dtype=dtype, requires_grad=requires_grad, device=device))


@pytest.mark.parametrize("op", sorted(BINARY))
@settings(max_examples=8)
@given(shapes=broadcast_pairs, dtype=dtypes, seed=seeds, data=st.data())
def test_binary_operators_broadcast_like_numpy(device, op, shapes, dtype, seed, data):
    (sa, sb), f = shapes.input_shapes, BINARY[op]
    a, b = operand(sa, seed, op, False), operand(sb, seed + 1, op, True)
    la, lb = data.draw(layouts(len(sa))), data.draw(layouts(len(sb)))
    y = f(tensor_in(la, a, dtype, device), tensor_in(lb, b, dtype, device))
    expected = f(a.astype(dtype).astype(np.float64), b.astype(dtype).astype(np.float64))
    ref.assert_close(y.numpy(), expected, dtype)


@pytest.mark.parametrize("op", sorted(BINARY))
@settings(max_examples=5)
@given(shapes=broadcast_pairs, seed=seeds)
def test_binary_operator_gradients_are_summed_to_each_operand_shape(device, op, shapes, seed):
    (sa, sb), f = shapes.input_shapes, BINARY[op]
    a = ninx.tensor(operand(sa, seed, op, False), dtype=np.float64, requires_grad=True, device=device)
    b = ninx.tensor(operand(sb, seed + 1, op, True), dtype=np.float64, requires_grad=True, device=device)
    f(a, b).sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    gradcheck(f, [a, b])


@pytest.mark.parametrize("expression, derivative", [
    (lambda x: 2.0 - x, lambda x: -np.ones_like(x)),
    (lambda x: 3.0 / x, lambda x: -3.0 / x ** 2),
    (lambda x: 2.0 * x + 1.0, lambda x: 2 * np.ones_like(x)),
    (lambda x: -x, lambda x: -np.ones_like(x)),
    (lambda x: x / 4.0 - 1.0, lambda x: np.full_like(x, 0.25)),
])
def test_python_numbers_on_either_side(device, expression, derivative):
    x0 = np.array([[0.5, -1.5, 2.0]])
    x = ninx.tensor(x0, dtype=np.float64, requires_grad=True, device=device)
    y = expression(x)
    ref.assert_close(y.numpy(), expression(x0), np.float64)
    y.sum().backward()
    ref.assert_close(x.grad.numpy(), derivative(x0), np.float64)
    assert expression(ninx.tensor(x0, dtype=np.float32, device=device)).dtype == np.float32  # the number takes the tensor's dtype


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1, -2.5, 1.5])
@settings(max_examples=4)
@given(shape=small_shapes, dtype=dtypes, seed=seeds)
def test_power_by_a_scalar(device, exponent, shape, dtype, seed):
    x0 = values(shape, seed, 0.5, 2.0)  # a positive base: fractional powers are defined
    x = ninx.tensor(x0, dtype=dtype, device=device)
    ref.assert_close((x ** exponent).numpy(), x0.astype(dtype).astype(np.float64) ** exponent, dtype, terms=4)
    gradcheck(lambda t: t ** exponent, [ninx.tensor(x0, dtype=np.float64, requires_grad=True, device=device)])


@given(shape=small_shapes, dtype=dtypes, seed=seeds)
def test_exp_and_log(device, shape, dtype, seed):
    x0 = values(shape, seed, 0.1, 3.0)
    stored = x0.astype(dtype).astype(np.float64)
    ref.assert_close(ninx.tensor(x0, dtype=dtype, device=device).exp().numpy(), np.exp(stored), dtype, terms=2)
    ref.assert_close(ninx.tensor(x0, dtype=dtype, device=device).log().numpy(), np.log(stored), dtype, terms=2,
                     magnitude=np.abs(np.log(stored)) + 1)
    x = ninx.tensor(x0, dtype=np.float64, requires_grad=True, device=device)
    gradcheck(lambda t: t.exp() + t.log(), [x])


REDUCE = {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min}


@pytest.mark.parametrize("kind", sorted(REDUCE))
@settings(max_examples=10)
@given(case=reductions(), dtype=dtypes, seed=seeds)
def test_reductions_over_axes(device, kind, case, dtype, seed):
    shape, dim, keepdim = case
    x0 = values(shape, seed)
    y = getattr(ninx.tensor(x0, dtype=dtype, device=device), kind)(dim=dim, keepdim=keepdim)
    axis = dim if dim is None or isinstance(dim, tuple) else (dim,)
    expected = REDUCE[kind](x0.astype(dtype).astype(np.float64), axis=axis, keepdims=keepdim)
    magnitude = REDUCE[kind](np.abs(x0), axis=axis, keepdims=keepdim) + 1
    ref.assert_close(y.numpy(), expected, dtype, terms=x0.size, magnitude=magnitude)
    gradcheck(lambda t: getattr(t, kind)(dim=dim, keepdim=keepdim),
              [ninx.tensor(x0, dtype=np.float64, requires_grad=True, device=device)])


def test_amax_shares_the_gradient_evenly_among_ties(device):
    x = ninx.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True, device=device)
    x.amax(dim=1).backward(np.array([1.0, 3.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0.5, 0.5], [1, 1, 1]])


@given(shape=small_shapes, seed=seeds, data=st.data())
def test_reshape_permute_transpose_flatten(device, shape, seed, data):
    x0 = values(shape, seed)
    nd = len(shape)
    perm = tuple(data.draw(st.permutations(range(nd))))
    d0, d1 = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
    start = data.draw(st.integers(0, nd - 1))
    end = data.draw(st.integers(start, nd - 1))
    flat_shape = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
    cases = [
        (lambda t: t.reshape(-1, shape[-1]), x0.reshape(-1, shape[-1])),
        (lambda t: t.reshape(tuple(reversed(shape))), x0.reshape(tuple(reversed(shape)))),
        (lambda t: t.permute(*perm), x0.transpose(perm)),
        (lambda t: t.transpose(d0, d1), np.swapaxes(x0, d0, d1)),
        (lambda t: t.T, x0.T),
        (lambda t: t.flatten(start, end), x0.reshape(flat_shape)),
        (lambda t: t.flatten(), x0.reshape(-1)),
    ]
    for f, expected in cases:
        ref.assert_close(f(ninx.tensor(x0, dtype=np.float64, device=device)).numpy(), expected, np.float64)
        # a view followed by an op that weighs each position differently: the gradient must land where it came from
        weights = values(expected.shape, seed + 7)
        gradcheck(lambda t: f(t) * ninx.tensor(weights, dtype=np.float64, device=device),
                  [ninx.tensor(x0, dtype=np.float64, requires_grad=True, device=device)])


@given(shape=small_shapes, count=st.integers(1, 3), seed=seeds, data=st.data())
def test_cat_joins_along_a_dimension_and_splits_the_gradient(device, shape, count, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    parts = []
    for i, n in enumerate(sizes):
        s = list(shape)
        s[dim] = n
        parts.append(values(tuple(s), seed + i))
    y = ninx.cat([ninx.tensor(p, dtype=np.float64, device=device) for p in parts], dim=dim)
    ref.assert_close(y.numpy(), np.concatenate(parts, axis=dim), np.float64)
    weights = ninx.tensor(values(y.shape, seed + 9), dtype=np.float64, device=device)
    gradcheck(lambda *ts: ninx.cat(list(ts), dim=dim) * weights,
              [ninx.tensor(p, dtype=np.float64, requires_grad=True, device=device) for p in parts])


def test_indexing_scatters_the_gradient_back_adding_repeats(device):
    x = ninx.tensor(np.arange(12.0).reshape(3, 4), dtype=np.float64, requires_grad=True, device=device)
    y = x[np.array([0, 2, 0])]
    np.testing.assert_array_equal(y.numpy(), np.arange(12.0).reshape(3, 4)[[0, 2, 0]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[:, 0], [2, 0, 1])
    gradcheck(lambda t: t[1:, ::-2] * 3.0, [ninx.tensor(np.ones((3, 4)), dtype=np.float64, requires_grad=True,
                                                         device=device)])


@given(shapes=matmul_shapes(), dtype=dtypes, seed=seeds, data=st.data())
def test_matmul_follows_numpy_rules_on_non_contiguous_operands(device, shapes, dtype, seed, data):
    sa, sb = shapes
    a, b = values(sa, seed), values(sb, seed + 1)
    la, lb = data.draw(layouts(len(sa))), data.draw(layouts(len(sb)))
    y = tensor_in(la, a, dtype, device) @ tensor_in(lb, b, dtype, device)
    a_, b_ = a.astype(dtype), b.astype(dtype)
    ref.assert_close(y.numpy(), ref.matmul(a_, b_), dtype, terms=sa[-1], magnitude=ref.matmul(abs(a_), abs(b_)))


@settings(max_examples=12)
@given(shapes=matmul_shapes(), seed=seeds, data=st.data())
def test_matmul_gradients(device, shapes, seed, data):
    sa, sb = shapes
    la, lb = data.draw(layouts(len(sa))), data.draw(layouts(len(sb)))
    a = ninx.tensor(la.store(values(sa, seed)), dtype=np.float64, requires_grad=True, device=device)
    b = ninx.tensor(lb.store(values(sb, seed + 1)), dtype=np.float64, requires_grad=True, device=device)
    gradcheck(lambda p, q: la.view(p) @ lb.view(q), [a, b])


@pytest.mark.parametrize("sa, sb", [
    ((3,), (3,)), ((3,), (3, 2)), ((4, 3), (3,)), ((3,), (2, 3, 4)), ((2, 5, 3), (3,)),
    ((2, 1, 4, 3), (5, 3, 2)), ((4, 3), (2, 3, 5)), ((2, 4, 3), (3, 5)),
])
def test_matmul_with_1d_and_broadcast_batch_operands(device, sa, sb):
    a, b = values(sa, 1), values(sb, 2)
    y = ninx.tensor(a, dtype=np.float64, device=device) @ ninx.tensor(b, dtype=np.float64, device=device)
    ref.assert_close(y.numpy(), ref.matmul(a, b), np.float64, terms=sa[-1], magnitude=ref.matmul(abs(a), abs(b)))
    gradcheck(operator.matmul, [ninx.tensor(x, dtype=np.float64, requires_grad=True, device=device) for x in (a, b)])


def test_tensor_basics(device):
    assert ninx.tensor([1.5, 2.0], device=device).dtype == np.float32
    assert ninx.tensor([1, 2], device=device).dtype == np.int64
    assert ninx.tensor([[1.0, 2.0]], dtype=np.float64, device=device).shape == (1, 2)
    assert ninx.tensor(3.5, device=device).item() == 3.5
    source = np.array([1.0, 2.0])
    t = ninx.tensor(source, device=device)
    source[0] = 9.0
    assert t.tolist() == [1.0, 2.0]  # tensor() copies
    mask = ninx.tensor([1.0, -1.0, 2.0], device=device) > 0
    assert mask.dtype == np.bool_ and mask.tolist() == [True, False, True]
