"""ninx.nn: the Module API (registration, traversal, state_dict, modes, devices, repr), the layers against
their functional ops, PyTorch's default initialisation, and ninx.nn.init's fans and gains."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import ninx
from ninx import nn
from ninx.nn import functional as F


class Block(nn.Module):
    """A custom module: a parameter, a buffer, a plain attribute and a sub-module."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(2))
        self.register_buffer("count", ninx.tensor(0))
        self.label = "block"
        self.inner = nn.Linear(2, 2)

    def forward(self, x):
        return self.inner(x) * self.scale


def small_model():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.5), nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(4, 3))


# ---- registration and traversal -------------------------------------------------------------------------

def test_attributes_register_parameters_buffers_and_modules():
    block = Block()
    assert [n for n, _ in block.named_parameters()] == ["scale", "inner.weight", "inner.bias"]
    assert [n for n, _ in block.named_buffers()] == ["count"]
    assert [n for n, _ in block.named_children()] == ["inner"]
    assert [n for n, _ in block.named_modules()] == ["", "inner"]
    assert block.label == "block" and "label" not in block.state_dict()
    assert all(p.requires_grad for p in block.parameters())
    with pytest.raises(TypeError, match="parameter 'scale'"):
        block.scale = ninx.ones(2)  # a plain tensor cannot silently replace a parameter
    del block.inner
    assert [n for n, _ in block.named_parameters()] == ["scale"]


def test_shared_parameters_are_listed_once():
    linear = nn.Linear(3, 3)
    model = nn.Sequential(linear, nn.ReLU(), linear)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]


def test_sequential_indexes_slices_and_applies_in_order():
    layers = [("conv", nn.Conv2d(1, 2, 1)), ("act", nn.ReLU()), ("pool", nn.GlobalAvgPool2d())]
    model = nn.Sequential(OrderedDict(layers))
    assert len(model) == 3 and isinstance(model[1], nn.ReLU) and model.conv is model[0]
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and [type(m) for m in tail] == [nn.ReLU, nn.GlobalAvgPool2d]
    x = ninx.randn(2, 1, 4, 4)
    np.testing.assert_allclose(model(x).numpy(), F.global_avg_pool2d(F.relu(model.conv(x))).numpy())


def test_module_without_super_init_is_reported():
    class Broken(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(np.ones(1))

    with pytest.raises(AttributeError, match="super"):
        Broken()


# ---- state_dict -----------------------------------------------------------------------------------------

def test_state_dict_round_trip_reproduces_the_outputs():
    ninx.manual_seed(0)
    source, target = small_model().eval(), small_model().eval()
    x = ninx.randn(2, 2, 4, 4)
    source.train()(x)  # move the batch-norm running statistics away from their initial values
    source.eval()
    state = source.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                           "1.num_batches_tracked", "7.weight", "7.bias"]
    target.load_state_dict({k: v.numpy().copy() for k, v in state.items()})  # arrays are accepted too
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())
    assert target[1].num_batches_tracked.item() == 1


def test_load_state_dict_copies_in_place():
    model = nn.Linear(2, 2)
    weight = model.weight
    state = {k: ninx.tensor(v.numpy() + 1) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert model.weight is weight  # an optimizer holding the parameter sees the loaded values
    state["weight"].data[...] = 0
    assert model.weight.numpy().any()  # ... which are a copy


def test_load_state_dict_names_the_mismatch_and_copies_nothing():
    model = small_model()
    before = model[0].weight.numpy().copy()
    state = {k: v.numpy().copy() + 1 for k, v in model.state_dict().items()}
    state["7.weight"] = np.zeros((3, 5))
    with pytest.raises(ValueError, match=r"'7\.weight': \(3, 5\) in the state dict, \(3, 4\) in the module"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model[0].weight.numpy(), before)
    del state["7.weight"]
    with pytest.raises(ValueError, match=r"missing keys \['7\.weight'\]"):
        model.load_state_dict(state)
    state["7.weight"], state["extra"] = np.zeros((3, 4)), np.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        model.load_state_dict(state)


def test_non_persistent_buffers_stay_out_of_state_dict():
    module = nn.Module()
    module.register_buffer("kept", ninx.zeros(2))
    module.register_buffer("scratch", ninx.zeros(2), persistent=False)
    assert list(module.state_dict()) == ["kept"]
    assert [n for n, _ in module.named_buffers()] == ["kept", "scratch"]


# ---- modes, gradients, devices, dtypes ------------------------------------------------------------------

def test_train_and_eval_reach_every_module_and_change_dropout():
    model = small_model()
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    drop = nn.Dropout(0.5)
    x = ninx.ones(1000)
    ninx.manual_seed(1)
    y = drop(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6  # kept values scaled by 1/(1 − p)
    assert drop.eval()(x) is x


def test_zero_grad_forgets_gradients():
    model = nn.Linear(3, 2)
    model(ninx.ones(4, 3)).sum().backward()
    assert model.weight.grad is not None
    model.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None


def test_to_moves_parameters_and_buffers_in_place(device):
    model = small_model()
    weight = model[0].weight
    model.to(device)
    assert model[0].weight is weight and weight.device == device
    assert all(t.device == device for t in list(model.parameters()) + list(model.buffers()))
    y = model.eval()(ninx.randn(2, 2, 4, 4).to(device))
    assert y.device == device and y.shape == (2, 3)


def test_double_casts_floating_tensors_and_keeps_integer_buffers():
    model = small_model().double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64 and model[1].num_batches_tracked.dtype == np.int64
    assert model.eval()(ninx.randn(1, 2, 4, 4, dtype="float64")).dtype == np.float64
    assert model.to("float32")[0].weight.dtype == np.float32


# ---- repr -----------------------------------------------------------------------------------------------

def test_repr_reads_like_pytorch():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 96, 11, 4), nn.ReLU()), nn.MaxPool2d(3, stride=2),
                          nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(96, 10, bias=False))
    assert repr(model) == """Sequential(
  (0): Sequential(
    (0): Conv2d(1, 96, kernel_size=(11, 11), stride=(4, 4))
    (1): ReLU()
  )
  (1): MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)
  (2): AdaptiveAvgPool2d(output_size=(1, 1))
  (3): Flatten(start_dim=1, end_dim=-1)
  (4): Linear(in_features=96, out_features=10, bias=False)
)"""
    assert repr(nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False)) == \
        "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=2, bias=False)"
    assert repr(nn.Parameter(np.ones(2))).startswith("Parameter containing:\ntensor(")


# ---- layers against functional ----------------------------------------------------------------------------

def test_layers_compute_their_functional_op(device):
    x = ninx.randn(2, 4, 6, 6).to(device)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2).to(device)
    pairs = [
        (conv, F.conv2d(x, conv.weight, conv.bias, 2, 1, 1, 2)),
        (nn.ReLU(), F.relu(x)), (nn.ReLU6(), F.relu6(x * 4)),
        (nn.MaxPool2d(3, 2, padding=1), F.max_pool2d(x, 3, 2, 1)),
        (nn.AvgPool2d(2), F.avg_pool2d(x, 2, 2)),
        (nn.AdaptiveAvgPool2d(3), F.avg_pool2d(x, 2)),
        (nn.GlobalAvgPool2d(), F.global_avg_pool2d(x)),
        (nn.Flatten(), x.reshape(2, 144)),
    ]
    for layer, expected in pairs:
        y = layer(x * 4) if isinstance(layer, nn.ReLU6) else layer(x)
        np.testing.assert_allclose(y.numpy(), expected.numpy(), err_msg=repr(layer))


def test_linear_is_x_times_weight_transposed_plus_bias(device):
    layer = nn.Linear(5, 3).to(device)
    x = np.random.default_rng(0).standard_normal((4, 5))
    expected = x @ layer.weight.numpy().T.astype(np.float64) + layer.bias.numpy()
    np.testing.assert_allclose(layer(ninx.tensor(x, dtype=np.float32, device=device)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_conv_checks_its_arguments():
    with pytest.raises(ValueError, match="groups=3 must divide"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="in_channels must be a positive int"):
        nn.Conv2d(0, 6, 3)


# ---- initialisation ---------------------------------------------------------------------------------------

def test_default_initialisation_is_pytorchs():
    """kaiming_uniform(a=√5) gives U(±1/√fan_in) for the weight; the bias is U(±1/√fan_in) too."""
    ninx.manual_seed(0)
    conv = nn.Conv2d(16, 64, 3)  # fan_in = 16·3·3 = 144: bound 1/12
    for p in (conv.weight, conv.bias):
        assert np.abs(p.numpy()).max() <= 1 / 12 + 1e-7
    assert conv.weight.numpy().std() == pytest.approx(1 / 12 / math.sqrt(3), rel=0.03)
    linear = nn.Linear(400, 50)  # bound 1/20
    assert np.abs(linear.weight.numpy()).max() <= 1 / 20 + 1e-7
    assert linear.weight.numpy().std() == pytest.approx(1 / 20 / math.sqrt(3), rel=0.03)


def test_initialisation_is_reproducible_with_manual_seed():
    ninx.manual_seed(3)
    a = nn.Conv2d(3, 4, 3).weight.numpy().copy()
    ninx.manual_seed(3)
    np.testing.assert_array_equal(nn.Conv2d(3, 4, 3).weight.numpy(), a)


def test_init_fans_and_gains_follow_pytorch():
    w = ninx.zeros(32, 16, 3, 3)
    assert nn.init.calculate_fan_in_and_fan_out(w) == (144, 288)
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("linear") == 1.0
    with pytest.raises(ValueError):
        nn.init.calculate_gain("swish")

    ninx.manual_seed(0)
    big = ninx.zeros(256, 128, 3, 3)  # fan_in 1152, fan_out 2304
    cases = [
        (lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / 1152)),
        (lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 2304)),
        (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2 / 1152)),
        (lambda t: nn.init.xavier_normal_(t), math.sqrt(2 / (1152 + 2304))),
        (lambda t: nn.init.xavier_uniform_(t, gain=2.0), 2 * math.sqrt(2 / (1152 + 2304))),
        (lambda t: nn.init.normal_(t, 1.0, 0.5), 0.5),
        (lambda t: nn.init.uniform_(t, -3.0, 3.0), 3 / math.sqrt(3)),
    ]
    for init, std in cases:
        assert init(big) is big
        assert big.numpy().std() == pytest.approx(std, rel=0.02)
    assert np.abs(nn.init.xavier_uniform_(big).numpy()).max() <= math.sqrt(6 / (1152 + 2304)) + 1e-7
    assert nn.init.zeros_(big).numpy().max() == 0 and nn.init.ones_(big).numpy().min() == 1
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.kaiming_normal_(ninx.zeros(3))
