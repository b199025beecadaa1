"""The PyTorch surface a NiN, Inception or MobileNet user touches, checked against references written from the
definitions (numpy, float64)."""
import math

import numpy as np
import pytest

import ninx
from ninx import nn
from ninx.nn import functional as F
from ninx.testing import gradcheck


def leaf(values, device="cpu"):
    return ninx.tensor(values, dtype=np.float64, requires_grad=True, device=device)


X = np.array([[1.0, 5.0, 3.0], [4.0, 6.0, 6.0]])


def test_max_and_min_along_a_dim_give_values_and_indices_and_route_the_gradient(device):
    x = leaf(X, device)
    values, idx = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [5.0, 6.0])
    np.testing.assert_array_equal(idx.numpy(), [1, 1])  # the first of the tied maxima
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [0, 1, 0]])
    low = leaf(X, device).min(dim=0, keepdim=True)
    assert low.values.shape == (1, 3) and low.indices.tolist() == [[0, 0, 0]]


def test_amax_shares_the_gradient_among_ties_and_max_without_dim_is_a_tensor(device):
    x = leaf(X, device)
    x.amax(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [0, 0.5, 0.5]])
    assert x.max().item() == 6.0 and x.min().item() == 1.0


def test_elementwise_methods_match_numpy(device):
    v = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    x = leaf(v, device)
    np.testing.assert_allclose(x.abs().numpy(), np.abs(v))
    np.testing.assert_allclose(x.abs().sqrt().numpy(), np.sqrt(np.abs(v)))
    np.testing.assert_allclose(x.clamp(-1, 1).numpy(), np.clip(v, -1, 1))
    np.testing.assert_allclose(x.clamp(min=0).numpy(), np.maximum(v, 0))
    np.testing.assert_allclose(x.sigmoid().numpy(), 1 / (1 + np.exp(-v)))
    x.clamp(-0.5, 0.5).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 1, 0])  # bounds included, as PyTorch


def test_sigmoid_is_stable_at_large_magnitudes():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = ninx.tensor([-100.0, 100.0, -1e4, 1e4]).sigmoid().numpy()
    assert y[1] == 1.0 and y[3] == 1.0 and y[0] < 1e-40 and y[2] == 0.0


def test_shape_methods(device):
    x = leaf(np.arange(6.0).reshape(1, 2, 3), device)
    assert x.squeeze().shape == (2, 3) and x.squeeze(0).shape == (2, 3) and x.squeeze(1).shape == (1, 2, 3)
    assert x.unsqueeze(-1).shape == (1, 2, 3, 1) and x.unsqueeze(0).shape == (1, 1, 2, 3)
    m = x.squeeze(0)
    assert m.t().shape == (3, 2) and m.t().tolist() == np.arange(6.0).reshape(2, 3).T.tolist()
    parts = m.split([1, 2], dim=1)
    assert [p.shape for p in parts] == [(2, 1), (2, 2)]
    assert [p.shape for p in m.split(2, dim=1)] == [(2, 2), (2, 1)]
    assert [p.shape for p in m.chunk(2, dim=1)] == [(2, 2), (2, 1)]
    (parts[0] * 1.0 + 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[1, 0, 0], [1, 0, 0]]])


def test_clone_copies_and_keeps_the_gradient_path(device):
    x = leaf([1.0, 2.0], device)
    y = x.clone()
    assert y.data is not x.data and y.tolist() == [1.0, 2.0]
    (y * 3.0).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_long_to_and_dtype_rules(device):
    x = ninx.tensor([1.7, -2.2], device=device)
    assert x.long().dtype == np.int64 and x.long().tolist() == [1, -2]
    assert x.to(device=device, dtype=ninx.float64).dtype == np.float64
    assert x.to(ninx.tensor([1], device=device)).dtype == np.int64
    with pytest.raises(TypeError, match="dtype must be one of"):
        x.to(np.float16)


def test_cross_entropy_matches_the_definition_with_weight_ignore_index_and_smoothing():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 4))
    labels = np.array([0, 3, -100, 2, 1])
    w = np.array([1.0, 2.0, 0.5, 3.0])
    eps = 0.2
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    kept = labels != -100
    safe = np.where(kept, labels, 0)
    nll = -w[safe] * logp[np.arange(5), safe] * kept
    smooth = -(logp * w).sum(1) * kept
    expected = ((1 - eps) * nll.sum() + eps / 4 * smooth.sum()) / (w[safe] * kept).sum()
    x = leaf(logits)
    loss = F.cross_entropy(x, labels, weight=ninx.tensor(w, dtype=np.float64), label_smoothing=eps)
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)
    module = nn.CrossEntropyLoss(weight=ninx.tensor(w, dtype=np.float64), label_smoothing=eps)
    np.testing.assert_allclose(module(x, ninx.tensor(labels)).item(), expected, rtol=1e-12)
    assert gradcheck(
        lambda t: F.cross_entropy(t, labels, weight=ninx.tensor(w, dtype=np.float64), label_smoothing=eps),
        [leaf(logits)])


def test_cross_entropy_with_probability_targets_and_refusal_of_float_labels():
    rng = np.random.default_rng(1)
    logits, target = rng.normal(size=(3, 4)), rng.dirichlet(np.ones(4), size=3)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    loss = F.cross_entropy(leaf(logits), ninx.tensor(target, dtype=np.float64))
    np.testing.assert_allclose(loss.item(), -(target * logp).sum(1).mean(), rtol=1e-12)
    with pytest.raises(TypeError, match="integer class labels"):
        F.cross_entropy(leaf(logits), [0.0, 1.0, 2.0])  # float labels are never cast to int silently


def test_module_surface_relu_inplace_strict_loading_zero_grad_and_to():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(2, 3))
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    del state["3.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \['3.bias'\].*unexpected keys \['extra'\]"):
        model.load_state_dict(state)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["3.bias"] and result.unexpected_keys == ["extra"]
    state["0.weight"] = np.zeros((9, 9))
    with pytest.raises(ValueError, match="0.weight"):
        model.load_state_dict(state, strict=False)  # a wrong shape is an error whatever strict says
    x = ninx.randn(4, 1, 3, 3)
    F.cross_entropy(model(x), [0, 1, 2, 0]).backward()
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert model.to(dtype=ninx.float64)[0].weight.dtype == np.float64
    assert model.to(device="cpu", dtype=ninx.float32)[3].bias.dtype == np.float32


def test_forward_hooks_see_and_may_replace_inputs_and_outputs():
    layer = nn.Linear(2, 2)
    seen = []
    pre = layer.register_forward_pre_hook(lambda m, inputs: (inputs[0] * 0.0,))
    post = layer.register_forward_hook(lambda m, inputs, output: seen.append(output.shape))
    y = layer(ninx.ones(3, 2))
    np.testing.assert_allclose(y.numpy(), np.broadcast_to(layer.bias.numpy(), (3, 2)))
    assert seen == [(3, 2)]
    pre.remove(), post.remove()
    layer(ninx.ones(1, 2))
    assert seen == [(3, 2)]


def test_clip_grad_norm_scales_to_the_joint_norm():
    a, b = nn.Parameter(ninx.zeros(2)), nn.Parameter(ninx.zeros(1))
    a.grad, b.grad = ninx.tensor([3.0, 0.0]), ninx.tensor([4.0])
    norm = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert math.isclose(norm.item(), 5.0, rel_tol=1e-6)
    np.testing.assert_allclose(np.concatenate([a.grad.numpy(), b.grad.numpy()]), [0.6, 0, 0.8], rtol=1e-5)
    nn.utils.clip_grad_value_([a, b], 0.7)
    np.testing.assert_allclose(b.grad.numpy(), [0.7])


def test_inference_mode_records_no_graph_and_no_grad_is_a_decorator():
    x = leaf([1.0])
    with ninx.inference_mode():
        assert not (x * 2.0).requires_grad

    @ninx.no_grad()
    def doubled(t):
        return t * 2.0
    assert not doubled(x).requires_grad and (x * 2.0).requires_grad


def test_import_ninx_makes_data_and_the_new_modules_available():
    assert hasattr(ninx.data, "DataLoader")
    for name in ("CrossEntropyLoss", "Identity", "Sigmoid", "ModuleList"):
        assert hasattr(nn, name)


def test_optimizers_refuse_non_finite_hyperparameters():
    p = nn.Parameter(ninx.zeros(2))
    for make in (lambda: ninx.optim.SGD([p], lr=float("nan")), lambda: ninx.optim.Adam([p], lr=float("inf")),
                 lambda: ninx.optim.SGD([p], lr=0.1, momentum=float("nan"))):
        with pytest.raises(ValueError, match="finite"):
            make()
