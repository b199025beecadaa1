"""Sums and means over axes against float64 definitions, on both of `axis_sum`'s paths: trailing axes of a
C-contiguous array as a matrix-vector product, everything else as the array module's sum."""
import numpy as np
import pytest

import ninx
import references as ref
from ninx.nn import functional as F
from ninx.ops.reduction import ROW_SUM_MOST

CASES = [((128, 10, 2, 2), (2, 3)), ((3, 5, 7), (2,)), ((3, 5, 7), (1, 2)), ((3, 5, 7), (0, 1, 2)),
         ((3, 5, 7), (0,)), ((3, 5, 7), (0, 2)), ((2, ROW_SUM_MOST), (1,)), ((2, ROW_SUM_MOST + 1), (1,)),
         ((4, 0, 3), (2,)), ((4, 3, 0), (2,))]


@pytest.mark.parametrize("shape, dims", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_sum_and_mean_are_the_definition(device, shape, dims, dtype, keepdim, transposed):
    values = np.random.default_rng(0).standard_normal(shape)
    if transposed:  # not C-contiguous: the array module's sum
        values = np.ascontiguousarray(values.T).T
    x = ninx.tensor(values, dtype=dtype, device=device)
    terms = max(1, int(np.prod([shape[d] for d in dims])))
    total = values.sum(axis=dims, keepdims=keepdim)
    ref.assert_close(x.sum(dim=dims, keepdim=keepdim).numpy(), total, dtype, terms=terms,
                     magnitude=abs(values).sum(axis=dims, keepdims=keepdim))
    if all(shape[d] for d in dims):
        ref.assert_close(x.mean(dim=dims, keepdim=keepdim).numpy(), total / terms, dtype, terms=terms,
                         magnitude=abs(values).sum(axis=dims, keepdims=keepdim) / terms)


def test_nan_and_infinities_pass_through_a_row_sum(device):
    rows = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 1.0], [np.inf, -np.inf, 0.0], [1.0, 2.0, 3.0]])
    with np.errstate(invalid="ignore"):  # inf − inf, as numpy's own sum says
        got = ninx.tensor(rows, device=device).sum(dim=1).numpy()
    assert np.isnan(got[0]) and got[1] == np.inf and np.isnan(got[2]) and got[3] == 6.0


def test_global_average_pooling_and_its_gradient(device):
    values = np.random.default_rng(1).standard_normal((4, 3, 5, 5))
    x = ninx.tensor(values, requires_grad=True, device=device)
    y = F.adaptive_avg_pool2d(x, 1)
    ref.assert_close(y.numpy(), values.mean(axis=(2, 3), keepdims=True), np.float64, terms=25)
    y.sum().backward()
    assert np.allclose(x.grad.numpy(), np.full(values.shape, 1 / 25))
