"""adaptive_avg_pool2d and adaptive_max_pool2d for any output size (PyTorch's floor/ceil cells, overlapping
where the size does not divide), local_response_norm (PyTorch's zero-padded channel window) and torchvision's
stochastic depth, against references from their definitions, with gradcheck; their nn modules."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
import references as ref
from ninx import nn
from ninx.nn import functional as F
from ninx.testing import gradcheck
from strategies import dtypes, layouts, seeds, values

planes = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))
POOLS = {"avg": (F.adaptive_avg_pool2d, np.mean), "max": (F.adaptive_max_pool2d, np.max)}


def leaf(a, device, dtype=np.float64, requires_grad=False):
    return ninx.tensor(a, dtype=dtype, requires_grad=requires_grad, device=device)


@pytest.mark.parametrize("kind", sorted(POOLS))
@settings(max_examples=10)
@given(shape=planes, out=st.tuples(st.integers(1, 10), st.integers(1, 10)), dtype=dtypes, seed=seeds,
       layout=layouts(4))
def test_adaptive_pooling_matches_the_cell_reference(device, kind, shape, out, dtype, seed, layout):
    op, reduce = POOLS[kind]
    x = values(shape, seed)
    y = op(layout.view(leaf(layout.store(x), device, dtype)), out)
    ref.assert_close(y.numpy(), ref.adaptive_pool2d(x.astype(dtype), out, reduce), dtype,
                     terms=shape[2] * shape[3])


@pytest.mark.parametrize("kind", sorted(POOLS))
@settings(max_examples=5)
@given(shape=planes, out=st.tuples(st.integers(1, 5), st.integers(1, 5)), seed=seeds)
def test_adaptive_pooling_gradients_match_finite_differences(device, kind, shape, out, seed):
    gradcheck(lambda t: POOLS[kind][0](t, out), [leaf(values(shape, seed), device, requires_grad=True)])


def test_googlenets_auxiliary_pool_of_14_to_4_uses_overlapping_cells(device):
    """14 → 4: cells [0, 4), [3, 7), [7, 11), [10, 14); rows 3 and 10 belong to two cells each."""
    x = np.arange(14.0).reshape(1, 1, 1, 14).repeat(14, axis=2)
    y = F.adaptive_avg_pool2d(leaf(x, device), (4, 4)).numpy()[0, 0, 0]
    np.testing.assert_allclose(y, [1.5, 4.5, 8.5, 11.5])
    z = F.adaptive_max_pool2d(leaf(x, device), 4).numpy()[0, 0, 0]
    assert z.tolist() == [3, 6, 10, 13]


def test_adaptive_max_pool_gives_a_tied_cell_gradient_to_its_first_maximum(device):
    x = leaf(np.ones((1, 1, 3, 3)), device, requires_grad=True)
    F.adaptive_max_pool2d(x, (1, 2)).sum().backward()  # cells: columns [0, 2) and [1, 3)
    assert x.grad.numpy()[0, 0].tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]


def test_adaptive_output_size_none_keeps_that_axis_and_bad_sizes_are_refused(device):
    x = leaf(values((1, 2, 5, 4), 0), device)
    assert F.adaptive_avg_pool2d(x, (None, 2)).shape == (1, 2, 5, 2)
    assert nn.AdaptiveMaxPool2d((3, None))(x).shape == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_max_pool2d(x, (0, 2))
    with pytest.raises(TypeError, match="output_size"):
        F.adaptive_avg_pool2d(x, (1, 2, 3))


lrn_options = st.fixed_dictionaries({"size": st.integers(1, 6), "alpha": st.sampled_from([1e-4, 0.5, 2.0]),
                                     "beta": st.sampled_from([0.75, 0.5, 1.3]), "k": st.sampled_from([1.0, 2.0])})


@settings(max_examples=10)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 6), st.integers(1, 3), st.integers(1, 3)),
       options=lrn_options, dtype=dtypes, seed=seeds)
def test_local_response_norm_matches_the_definition(device, shape, options, dtype, seed):
    x = values(shape, seed) * 2
    y = F.local_response_norm(leaf(x, device, dtype), **options)
    ref.assert_close(y.numpy(), ref.local_response_norm(x.astype(dtype), **options), dtype, terms=4 * options["size"])


@settings(max_examples=6)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 3)), options=lrn_options, seed=seeds)
def test_local_response_norm_gradients_match_finite_differences(device, shape, options, seed):
    """A 3-D input (N, C, L), as PyTorch allows: the window runs over axis 1 whatever follows it."""
    gradcheck(lambda t: F.local_response_norm(t, **options), [leaf(values(shape, seed), device, requires_grad=True)])


def test_local_response_norm_module_is_pytorchs(device):
    x = values((2, 7, 2, 2), 3) * 3
    module = nn.LocalResponseNorm(5, alpha=0.1)
    assert repr(module) == "LocalResponseNorm(5, alpha=0.1, beta=0.75, k=1.0)"
    ref.assert_close(module(leaf(x, device)).numpy(), ref.local_response_norm(x, 5, 0.1), np.float64, terms=20)


@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("p", [0.25, 0.6])
def test_stochastic_depth_drops_whole_samples_and_scales_the_survivors(device, mode, p):
    ninx.manual_seed(7)
    n, trials = 64, 200
    x0 = values((n, 2, 3, 3), 0, 1.0, 2.0)  # no zeros: a dropped sample is one that reads all 0
    kept = []
    for _ in range(trials):
        x = leaf(x0, device, np.float32, requires_grad=True)
        y = F.stochastic_depth(x, p, mode, training=True)
        survived = np.abs(y.numpy()).reshape(n, -1).max(axis=1) > 0
        np.testing.assert_allclose(y.numpy()[survived], x0[survived] / (1 - p), rtol=1e-6)
        assert not y.numpy()[~survived].any()
        y.backward(np.ones(y.shape))
        np.testing.assert_allclose(x.grad.numpy(), (survived / (1 - p))[:, None, None, None] * np.ones(x0.shape),
                                   rtol=1e-6)
        if mode == "batch":
            assert survived.all() or not survived.any()
        kept.append(survived.mean() if mode == "row" else survived[0])
    count = n * trials if mode == "row" else trials
    assert abs(np.mean(kept) - (1 - p)) < 5 * np.sqrt(p * (1 - p) / count)


def test_stochastic_depth_is_the_identity_in_evaluation_and_for_p_0(device):
    x = leaf(values((4, 3), 0), device)
    assert F.stochastic_depth(x, 0.5, "row", training=False) is x
    assert F.stochastic_depth(x, 0.0, "row") is x
    assert not F.stochastic_depth(x, 1.0, "row").numpy().any()
    module = nn.StochasticDepth(0.2, "row")
    assert repr(module) == "StochasticDepth(p=0.2, mode=row)"
    assert module.eval()(x) is x
    for bad in (dict(p=1.5, mode="row"), dict(p=0.5, mode="column")):
        with pytest.raises(ValueError):
            F.stochastic_depth(x, **bad)
