"""ninx.optim: SGD, Adam and AdamW against PyTorch's update rules worked out by hand, parameter groups,
learning-rate schedules, and checkpoints (optimizer and scheduler state_dict) that resume bit for bit."""
import math

import numpy as np
import pytest

import ninx
from ninx import nn
from ninx.nn import functional as F
from ninx.optim import SGD, Adam, AdamW
from ninx.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR, StepLR


def run_steps(optimizer, param, grads):
    """Set each gradient by hand, step, and return the parameter's values after every step."""
    values = []
    for g in grads:
        param.grad = ninx.tensor([g], dtype="float64", device=param.device)
        optimizer.step()
        values.append(param.item())
    return values


def scalar(device="cpu", value=1.0):
    return nn.Parameter(ninx.tensor([value], dtype="float64", device=device))


# ---- update rules -------------------------------------------------------------------------------------

def test_sgd_with_momentum_dampening_and_weight_decay(device):
    p = scalar(device)
    opt = SGD([p], lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
    # step 1: g = 0.5 + 0.01·1 = 0.51;  b = g (first step, no dampening) = 0.51;  p = 1 − 0.1·0.51 = 0.949
    # step 2: g = −0.2 + 0.01·0.949 = −0.19051;  b = 0.9·0.51 + 0.9·(−0.19051) = 0.287541;  p = 0.949 − 0.0287541
    assert run_steps(opt, p, [0.5, -0.2]) == pytest.approx([0.949, 0.9202459], abs=1e-12)


def test_sgd_nesterov(device):
    p = scalar(device)
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    # step 1: b = 0.5;  g = 0.5 + 0.9·0.5 = 0.95;  p = 1 − 0.095 = 0.905
    # step 2: b = 0.9·0.5 − 0.2 = 0.25;  g = −0.2 + 0.9·0.25 = 0.025;  p = 0.905 − 0.0025 = 0.9025
    assert run_steps(opt, p, [0.5, -0.2]) == pytest.approx([0.905, 0.9025], abs=1e-12)


def test_plain_sgd_and_argument_checks():
    p = scalar()
    assert run_steps(SGD([p], lr=0.5), p, [1.0, 2.0]) == pytest.approx([0.5, -0.5])
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_adam_bias_correction_and_eps_outside_the_root(device):
    p = scalar(device)
    opt = Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    # step 1: m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025
    #         p = 1 − (0.1 / (1 − 0.9)) · 0.05 / (√0.00025 / √(1 − 0.999) + 1e-8) = 1 − 0.05 / (0.5 + 1e-8)
    p1 = 1 - 0.05 / (0.5 + 1e-8)
    # step 2: m = 0.9·0.05 + 0.1·(−0.2) = 0.025, v = 0.999·0.00025 + 0.001·0.04 = 0.00028975
    #         p = p1 − (0.1 / (1 − 0.9²)) · 0.025 / (√0.00028975 / √(1 − 0.999²) + 1e-8)
    p2 = p1 - (0.1 / 0.19) * 0.025 / (math.sqrt(0.00028975) / math.sqrt(1 - 0.998001) + 1e-8)
    assert run_steps(opt, p, [0.5, -0.2]) == pytest.approx([p1, p2], abs=1e-12)
    assert opt.state[p]["step"] == 2


def test_adam_adds_weight_decay_to_the_gradient_and_adamw_decays_the_weight(device):
    p = scalar(device)
    # Adam: g = 0.5 + 0.5·1 = 1;  m = 0.1, v = 0.001;  p = 1 − 1·0.1 / (1 + 1e-8)
    assert run_steps(Adam([p], lr=0.1, weight_decay=0.5), p, [0.5]) == pytest.approx([1 - 0.1 / (1 + 1e-8)], abs=1e-12)
    p = scalar(device)
    # AdamW: p = 1·(1 − 0.1·0.5) = 0.95, then the Adam step on g = 0.5: 0.95 − 0.05 / (0.5 + 1e-8)
    assert run_steps(AdamW([p], lr=0.1, weight_decay=0.5), p, [0.5]) == \
        pytest.approx([0.95 - 0.05 / (0.5 + 1e-8)], abs=1e-12)


def test_parameter_groups_and_parameters_without_gradients():
    a, b, frozen = scalar(), scalar(), scalar()
    opt = SGD([{"params": [a]}, {"params": [b, frozen], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = ninx.tensor([1.0], dtype="float64"), ninx.tensor([1.0], dtype="float64")
    opt.step()
    assert (a.item(), b.item(), frozen.item()) == pytest.approx((0.9, 0.0, 1.0))
    assert opt.param_groups[1]["momentum"] == 0.0  # defaults fill what a group does not set
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        SGD([{"params": [scalar()], "betas": (0.9, 0.99)}], lr=0.1)


def test_float32_parameters_stay_float32(device):
    model = nn.Linear(3, 2).to(device)
    for opt in (SGD(model.parameters(), lr=0.1, momentum=0.9), Adam(model.parameters()), AdamW(model.parameters())):
        F.cross_entropy(model(ninx.randn(4, 3).to(device)), ninx.tensor([0, 1, 1, 0], device=device)).backward()
        opt.step()
        assert all(p.dtype == np.float32 and p.device == device for p in model.parameters())


# ---- schedules ----------------------------------------------------------------------------------------

def lrs(scheduler, epochs):
    values = [scheduler.get_last_lr()[0]]
    for _ in range(epochs):
        scheduler.optimizer.step()
        scheduler.step()
        values.append(scheduler.get_last_lr()[0])
    assert values[-1] == scheduler.optimizer.param_groups[0]["lr"]
    return values


def test_step_cosine_and_linear_schedules():
    assert lrs(StepLR(SGD([scalar()], lr=1.0), step_size=2, gamma=0.5), 5) == [1, 1, 0.5, 0.5, 0.25, 0.25]
    # 0.1 + 0.9·(1 + cos(π·t/4))/2 for t = 0 … 4
    assert lrs(CosineAnnealingLR(SGD([scalar()], lr=1.0), T_max=4, eta_min=0.1), 4) == \
        pytest.approx([1.0, 0.1 + 0.45 * (1 + math.sqrt(0.5)), 0.55, 0.1 + 0.45 * (1 - math.sqrt(0.5)), 0.1])
    # 0.4·(0.25 + 0.75·min(t, 3)/3)
    assert lrs(LinearLR(SGD([scalar()], lr=0.4), start_factor=0.25, total_iters=3), 4) == \
        pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4])


def test_warm_up_then_cosine():
    opt = SGD([{"params": [scalar()]}, {"params": [scalar()], "lr": 2.0}], lr=1.0)
    schedule = SequentialLR(opt, [LinearLR(opt, start_factor=0.5, total_iters=2), CosineAnnealingLR(opt, T_max=2)],
                            milestones=[2])
    assert lrs(schedule, 4) == pytest.approx([0.5, 0.75, 1.0, 0.5, 0.0])
    assert opt.param_groups[1]["lr"] == pytest.approx(0.0) and opt.param_groups[1]["initial_lr"] == 2.0


# ---- checkpoints --------------------------------------------------------------------------------------

def snapshot(value):
    """A deep copy with every Tensor as a numpy array, as a checkpoint file would hold it."""
    if isinstance(value, ninx.Tensor):
        return value.numpy().copy()
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value)
    return value


def make_run(seed, optimizer_name):
    ninx.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.GlobalAvgPool2d(),
                          nn.Flatten(), nn.Linear(4, 3))
    if optimizer_name == "sgd":
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    else:
        opt = {"adam": Adam, "adamw": AdamW}[optimizer_name](model.parameters(), lr=0.01)
    schedule = SequentialLR(opt, [LinearLR(opt, start_factor=0.1, total_iters=2), CosineAnnealingLR(opt, T_max=4)],
                            milestones=[2])
    return model, opt, schedule


def train(model, opt, schedule, batches):
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        schedule.step()


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam", "adamw"])
def test_resuming_from_state_dicts_is_bit_identical(optimizer_name):
    rng = np.random.default_rng(0)
    batches = [(ninx.tensor(rng.standard_normal((4, 1, 5, 5)), dtype=np.float32), ninx.tensor(rng.integers(0, 3, 4)))
               for _ in range(6)]
    model, opt, schedule = make_run(0, optimizer_name)
    train(model, opt, schedule, batches)

    first, opt1, schedule1 = make_run(0, optimizer_name)
    train(first, opt1, schedule1, batches[:3])
    saved = snapshot({"model": first.state_dict(), "optim": opt1.state_dict(), "schedule": schedule1.state_dict()})
    resumed, opt2, schedule2 = make_run(1, optimizer_name)  # different initial weights: all must come from the file
    resumed.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["optim"])
    schedule2.load_state_dict(saved["schedule"])
    train(resumed, opt2, schedule2, batches[3:])

    for (name, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]
    assert schedule.last_epoch == schedule2.last_epoch == 6


def test_optimizer_state_dict_lists_state_by_parameter_index():
    a, b = scalar(), scalar()
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    b.grad = ninx.tensor([1.0], dtype="float64")
    opt.step()
    state = opt.state_dict()
    assert list(state["state"]) == [1] and state["state"][1]["momentum_buffer"].tolist() == [1.0]
    assert state["param_groups"] == [{"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0,
                                      "nesterov": False, "params": [0, 1]}]
    with pytest.raises(ValueError, match="saved groups hold"):
        SGD([a], lr=0.1).load_state_dict(state)
