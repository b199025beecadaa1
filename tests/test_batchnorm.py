"""Batch normalisation: the kernels and F.batch_norm against a numpy reference written from the definition
(biased variance to normalise, unbiased to update running_var, momentum), gradients by finite differences in
both modes, and BatchNorm2d's train/eval behaviour and buffers, as in PyTorch."""
import numpy as np
import pytest

import ninx
from ninx import nn
from ninx.backend import get_backend
from ninx.nn import functional as F
from ninx.testing import gradcheck


def reference(x, mean, var, weight, bias, eps):
    """(x − mean)/√(var + eps)·weight + bias per channel, in float64."""
    shape = (1, -1, 1, 1)
    x = x.astype(np.float64)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * weight.reshape(shape) + bias.reshape(shape)


def host(array):
    """A backend array (numpy or cupy) as numpy, in its own dtype."""
    return ninx.tensor(array, dtype=array.dtype).numpy()


def batch(seed, shape=(4, 3, 5, 6)):
    """Values with a different offset and scale per channel, so per-channel statistics matter."""
    rng = np.random.default_rng(seed)
    channel = (1, shape[1], 1, 1)
    return rng.standard_normal(shape) * rng.uniform(0.5, 3, channel) + rng.uniform(-2, 2, channel)


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float64", 1e-12)])
def test_kernels_compute_stats_and_normalise_per_channel(device, dtype, tol):
    backend = get_backend(device)
    x = batch(0)
    rng = np.random.default_rng(1)
    weight, bias, inv_std = rng.standard_normal(3), rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    mean, var = backend.batch_norm_stats(backend.asarray(x, dtype))
    np.testing.assert_allclose(host(mean), x.mean(axis=(0, 2, 3)), rtol=tol, atol=tol)
    np.testing.assert_allclose(host(var), x.var(axis=(0, 2, 3)), rtol=tol, atol=tol)
    arrays = [backend.asarray(a, dtype) for a in (x, x.mean(axis=(0, 2, 3)), inv_std, weight, bias)]
    y = backend.batch_norm_forward(*arrays)
    expected = reference(x, x.mean(axis=(0, 2, 3)), 1 / inv_std ** 2, weight, bias, 0)
    np.testing.assert_allclose(host(y), expected, rtol=10 * tol, atol=10 * tol)


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float64", 1e-12)])
def test_few_channels_over_many_values_reduce_alike_on_every_run(device, dtype, tol):
    """Two channels of 25600 values each (the cuda device reduces them in slices, side by side, then merges
    the slices): the statistics and the backward's sums within the tolerances, and the same bytes twice."""
    backend = get_backend(device)
    x, gy = batch(14, (16, 2, 40, 40)), np.random.default_rng(15).standard_normal((16, 2, 40, 40))
    runs = []
    for _ in range(2):
        mean, var = backend.batch_norm_stats(backend.asarray(x, dtype))
        inv_std = backend.asarray(1 / np.sqrt(host(var) + 1e-5), dtype)
        gx, gw, gb = backend.batch_norm_backward(backend.asarray(x, dtype), backend.asarray(gy, dtype), mean, inv_std,
                                                 backend.asarray(np.ones(2), dtype), True)
        runs.append([host(a) for a in (mean, var, gx, gw, gb)])
    assert all(first.tobytes() == second.tobytes() for first, second in zip(*runs))
    mean, var, gx, gw, gb = runs[0]
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=tol, atol=tol)
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3)), rtol=tol, atol=tol)
    c = (1, -1, 1, 1)
    xhat = (x - mean.astype(np.float64).reshape(c)) * (1 / np.sqrt(var.astype(np.float64) + 1e-5)).reshape(c)
    scale = np.sqrt(gy.size / 2)  # the sums grow as √M
    np.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), atol=tol * scale)
    np.testing.assert_allclose(gw, (gy * xhat).sum(axis=(0, 2, 3)), atol=10 * tol * scale)


@pytest.mark.parametrize("training", [True, False])
def test_backward_kernel_matches_the_closed_forms(device, training):
    """gbias = Σgy, gweight = Σgy·x̂; gx = w·inv_std/M·(M·gy − gbias − x̂·gweight) or gy·w·inv_std."""
    backend = get_backend(device)
    rng = np.random.default_rng(2)
    x, gy = batch(3), rng.standard_normal((4, 3, 5, 6))
    mean, inv_std, weight = rng.standard_normal(3), rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    gx, gw, gb = backend.batch_norm_backward(*[backend.asarray(a, "float64") for a in (x, gy, mean, inv_std, weight)],
                                             training)
    c = (1, -1, 1, 1)
    xhat = (x - mean.reshape(c)) * inv_std.reshape(c)
    m = x.size // 3
    sum_gy, sum_gy_xhat = gy.sum(axis=(0, 2, 3)), (gy * xhat).sum(axis=(0, 2, 3))
    expected_gx = (weight * inv_std / m).reshape(c) * (m * gy - sum_gy.reshape(c) - xhat * sum_gy_xhat.reshape(c)) \
        if training else gy * (weight * inv_std).reshape(c)
    for got, want in ((gx, expected_gx), (gw, sum_gy_xhat), (gb, sum_gy)):
        np.testing.assert_allclose(host(got), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_normalises_with_batch_stats_and_updates_running_stats(device, dtype):
    x = batch(4)
    rng = np.random.default_rng(5)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    running_mean, running_var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm, rv = (ninx.tensor(a, dtype=dtype, device=device) for a in (running_mean, running_var))
    y = F.batch_norm(ninx.tensor(x, dtype=dtype, device=device), rm, rv, ninx.tensor(w, dtype=dtype, device=device),
                     ninx.tensor(b, dtype=dtype, device=device), training=True, momentum=0.25, eps=1e-3)
    tol = 1e-5 if dtype == "float32" else 1e-12
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))  # biased: divides by M = N·H·W
    np.testing.assert_allclose(y.numpy(), reference(x, mean, var, w, b, 1e-3), rtol=tol, atol=tol)
    m = x.size // 3
    np.testing.assert_allclose(rm.numpy(), 0.75 * running_mean + 0.25 * mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(rv.numpy(), 0.75 * running_var + 0.25 * var * m / (m - 1), rtol=tol, atol=tol)


def test_evaluation_uses_the_running_stats_and_leaves_them_alone(device):
    x = batch(6)
    rm = ninx.tensor([0.5, -1.0, 2.0], device=device)
    rv = ninx.tensor([1.5, 0.25, 4.0], device=device)
    y = F.batch_norm(ninx.tensor(x, dtype=np.float32, device=device), rm, rv, training=False, eps=1e-5)
    expected = reference(x, np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25, 4.0]), np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert rm.tolist() == [0.5, -1.0, 2.0] and rv.tolist() == [1.5, 0.25, 4.0]


def test_a_permuted_input_is_normalised_like_a_contiguous_one(device):
    x = batch(7, (5, 6, 3, 4))  # viewed as (N, C, H, W) = (4, 3, 5, 6) below
    view = ninx.tensor(x, dtype="float64", device=device).permute(3, 2, 0, 1)
    y = F.batch_norm(view, None, None, training=True)
    xt = x.transpose(3, 2, 0, 1)
    expected = reference(xt, xt.mean(axis=(0, 2, 3)), xt.var(axis=(0, 2, 3)), np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_finite_differences(device, training):
    rng = np.random.default_rng(8)
    running_mean, running_var = rng.standard_normal(2), rng.uniform(0.5, 2, 2)

    def fn(x, w, b):
        rm, rv = (ninx.tensor(a, dtype="float64", device=device) for a in (running_mean, running_var))
        return F.batch_norm(x, rm, rv, w, b, training=training)

    # full Jacobian on a tiny batch, random projections on a larger one
    for shape in ((2, 2, 2, 2), (3, 2, 4, 5)):
        x = ninx.tensor(batch(9, shape), dtype="float64", requires_grad=True, device=device)
        w, b = (ninx.tensor(rng.standard_normal(2), dtype="float64", requires_grad=True, device=device)
                for _ in range(2))
        gradcheck(fn, [x, w, b])


def test_gradients_without_weight_and_bias(device):
    x = ninx.tensor(batch(10, (2, 2, 2, 2)), dtype="float64", requires_grad=True, device=device)
    gradcheck(lambda t: F.batch_norm(t, None, None, training=True), [x])


def test_module_behaves_as_pytorch_in_train_and_eval(device):
    bn = nn.BatchNorm2d(3, momentum=0.5).to(device)
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    x = batch(11)
    y = bn(ninx.tensor(x, dtype=np.float32, device=device))
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 2, 3)), 0, atol=1e-5)  # batch stats: zero mean, unit var
    np.testing.assert_allclose(y.numpy().var(axis=(0, 2, 3)), 1, atol=1e-3)
    m = x.size // 3
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.5 + 0.5 * x.var(axis=(0, 2, 3)) * m / (m - 1), rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1

    bn.eval()
    y = bn(ninx.tensor(x, dtype=np.float32, device=device))
    expected = reference(x, bn.running_mean.numpy(), bn.running_var.numpy(), np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert bn.num_batches_tracked.item() == 1


def test_momentum_none_averages_all_batches_equally():
    bn = nn.BatchNorm2d(2, momentum=None)
    batches = [batch(s, (3, 2, 2, 2)) for s in range(3)]
    for x in batches:
        bn(ninx.tensor(x, dtype=np.float32))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean(axis=(0, 2, 3)) for x in batches], axis=0),
                               rtol=1e-5)


def test_without_running_stats_or_affine_parameters():
    bn = nn.BatchNorm2d(3, affine=False, track_running_stats=False).eval()
    assert list(bn.parameters()) == [] and bn.state_dict() == {}
    x = batch(12)
    y = bn(ninx.tensor(x, dtype=np.float32))  # no running stats: batch statistics even in eval mode
    expected = reference(x, x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)), np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert repr(bn) == "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)"


def test_arguments_are_checked():
    x = ninx.tensor(batch(13), dtype=np.float32)
    stats = ninx.zeros(3), ninx.ones(3)
    with pytest.raises(ValueError, match="4 dimensions"):
        F.batch_norm(ninx.zeros(4, 3), *stats)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.batch_norm(x, *stats, weight=ninx.ones(4))
    with pytest.raises(ValueError, match="needs running_mean"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(ninx.zeros(1, 3, 1, 1), *stats, training=True)
    with pytest.raises(TypeError, match="float64"):
        F.batch_norm(x, ninx.zeros(3, dtype="float64"), ninx.ones(3, dtype="float64"))
