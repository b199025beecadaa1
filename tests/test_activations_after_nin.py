"""silu, hardtanh, hardsigmoid and hardswish (and sigmoid beside them) against references from their
definitions, gradients by gradcheck away from the kinks and exactly at them (PyTorch's rules), and stability
at magnitudes where a naive e^(−x) overflows; their nn modules."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ninx
import references as ref
from ninx import nn
from ninx.nn import functional as F
from ninx.testing import gradcheck
from strategies import dtypes, layouts, seeds, values

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)
OPS = {"sigmoid": (F.sigmoid, ref.sigmoid), "silu": (F.silu, ref.silu), "hardtanh": (F.hardtanh, ref.hardtanh),
       "hardtanh(-2, 0.5)": (lambda x: F.hardtanh(x, -2.0, 0.5), lambda x: ref.hardtanh(x, -2.0, 0.5)),
       "hardsigmoid": (F.hardsigmoid, ref.hardsigmoid), "hardswish": (F.hardswish, ref.hardswish)}


def leaf(a, device, dtype=np.float64, requires_grad=False):
    return ninx.tensor(a, dtype=dtype, requires_grad=requires_grad, device=device)


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=6)
@given(shape=shapes, dtype=dtypes, seed=seeds, data=st.data())
def test_forward_matches_the_definition(device, name, shape, dtype, seed, data):
    op, reference = OPS[name]
    x0 = values(shape, seed) * 4  # reaches past every kink (±1, ±3)
    layout = data.draw(layouts(len(shape)))
    y = op(layout.view(leaf(layout.store(x0), device, dtype)))
    assert y.shape == shape and y.dtype == np.dtype(dtype)
    ref.assert_close(y.numpy(), reference(x0.astype(dtype)), dtype, terms=4)


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=4)
@given(shape=shapes, seed=seeds)
def test_gradients_match_finite_differences(device, name, shape, seed):
    gradcheck(OPS[name][0], [leaf(values(shape, seed) * 4, device, requires_grad=True)])


@pytest.mark.parametrize("op, expected", [
    (F.hardtanh, [0, 0, 1, 0, 0]),                   # passes on the open interval (−1, 1) only
    (F.hardsigmoid, [0, 1 / 6, 1 / 6, 1 / 6, 0]),    # 1/6 on the open interval (−3, 3) only
    (F.hardswish, [0, 1 / 6, 0.5, 5 / 6, 1]),        # 0 up to −3 inclusive, x/3 + 1/2 inside, 1 from 3 on
], ids=["hardtanh", "hardsigmoid", "hardswish"])
def test_gradients_at_the_kinks_follow_pytorch(device, op, expected):
    x = leaf([-3.0, -1.0, 0.0, 1.0, 3.0], device, requires_grad=True)
    op(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_silu_are_finite_and_exact_at_large_magnitudes(device, dtype):
    x = leaf([-1e4, -100.0, 100.0, 1e4], device, dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        s, y = F.sigmoid(x).numpy(), F.silu(x)
        y.sum().backward()
    # σ(−100) = e^−100 ≈ 3.7e−44 is still a (subnormal) float32: "0" means within 1e−40
    for got, want in ((s, [0, 0, 1, 1]), (y.numpy(), [0, 0, 100, 1e4]), (x.grad.numpy(), [0, 0, 1, 1])):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-40)


def test_modules_wrap_the_functions_with_pytorchs_arguments(device):
    x0 = values((2, 3), 0) * 4
    x = leaf(x0, device)
    for module, reference in ((nn.SiLU(), ref.silu), (nn.Hardswish(inplace=True), ref.hardswish),
                              (nn.Hardsigmoid(), ref.hardsigmoid), (nn.Sigmoid(), ref.sigmoid),
                              (nn.Hardtanh(-2.0, 2.0), lambda a: ref.hardtanh(a, -2.0, 2.0))):
        ref.assert_close(module(x).numpy(), reference(x0), np.float64, terms=4)
    assert repr(nn.Hardtanh(0.0, 6.0)) == "Hardtanh(min_val=0.0, max_val=6.0)"
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(1.0, 1.0)
