"""ONNX export, checked by a real other side: onnxruntime runs the exported graph and reproduces ninx's own
forward (within 1e-5 of the largest output), with a batch size other than the one traced."""
import numpy as np
import onnxruntime
import pytest

import ninx
import ninx.onnx
from ninx import nn
from ninx.models import MODELS, get_model, input_shape
from ninx.nn import functional as F


def run_both(model, shape, path, batch=3):
    """Export with batch 2, then run ninx and onnxruntime on a batch of `batch`; returns both outputs."""
    rng = np.random.default_rng(0)
    ninx.onnx.export(model, rng.standard_normal((2,) + shape).astype(np.float32), path)
    x = rng.standard_normal((batch,) + shape).astype(np.float32)
    with ninx.no_grad():
        expected = model.eval()(ninx.tensor(x)).numpy()
    got = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    return got, expected


def assert_reproduced(got, expected):
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_exports_and_onnxruntime_reproduces_it(name, tmp_path):
    ninx.manual_seed(0)
    channels, height, width = input_shape(name)
    # the ImageNet models at 64×64 — the same graph of ops, at a CI-sized cost — but where their strides and
    # pools need more: d2l's NiN (an 11×11/4 stem and three 3/2 pools) keeps 224, GoogLeNet takes 96
    side = min(height, {"nin": 224, "googlenet": 96}.get(name, 64))
    assert_reproduced(*run_both(get_model(name), (channels, side, side), tmp_path / f"{name}.onnx"))


class AfterNiN(nn.Module):
    """The ops of the networks after NiN: depthwise conv, SiLU, the hard activations, adaptive average pooling
    to a size that does not divide the input, local response norm, a squeeze-and-excitation gate."""

    def __init__(self):
        super().__init__()
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-3, beta=0.75, k=2.0)
        self.depthwise = nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.pool = nn.AdaptiveAvgPool2d((4, 3))

    def forward(self, x):
        h = nn.functional.silu(self.depthwise(self.lrn(x)))
        h = nn.functional.hardswish(h) + nn.functional.hardsigmoid(h) * nn.functional.hardtanh(h, -0.5, 0.5)
        gate = F.global_avg_pool2d(h).sigmoid()
        return self.pool(h * gate).flatten(1)


def test_the_ops_after_nin_are_reproduced(tmp_path):
    ninx.manual_seed(2)
    assert_reproduced(*run_both(AfterNiN(), (4, 14, 10), tmp_path / "after.onnx"))


class EveryOp(nn.Module):
    """A model touching every mapped op: grouped, dilated and padded convs, ReLU, ReLU6, batch norm, both
    pools in ceil mode, global average pooling, concatenation, sigmoid gating, linear, softmax, arithmetic."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2)
        self.bn = nn.BatchNorm2d(8)
        self.pointwise = nn.Conv2d(8, 8, 1, bias=False)
        self.pool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.avg = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        h = F.relu(self.bn(self.conv(x)))
        h = F.relu6(self.pointwise(h) * 3.0 - 1.0)
        a, b = self.pool(h), self.avg(h)
        h = ninx.cat([a, b * b.sigmoid()], dim=1) / 2.0
        h = self.drop(F.global_avg_pool2d(h).flatten(1))
        h = self.fc(h).clamp(-3.0, 3.0)
        h = F.softmax(h, dim=1) + h.mean(dim=1, keepdim=True).exp() + (h * h + 1.0).sqrt().abs()
        h = -F.log_softmax(h, dim=1) + (h ** 2).sum(dim=1, keepdim=True).log()
        return h.clone().to(ninx.float64).to(ninx.float32)


def test_a_model_using_every_mapped_op_is_reproduced(tmp_path):
    ninx.manual_seed(1)
    model = EveryOp()
    model.bn.running_mean.copy_(ninx.randn(8) * 0.1)
    model.bn.running_var.copy_(ninx.randn(8).abs() + 0.5)
    x, y = ninx.onnx._trace(model, np.zeros((1, 4, 10, 10), np.float32))
    _, after = ninx.onnx._trace(AfterNiN(), np.zeros((1, 4, 14, 10), np.float32))
    traced = {type(fn) for out in (y, after) for fn in ninx.onnx._functions_in_order(out)}
    assert traced == set(ninx.onnx.MAPPINGS)
    assert_reproduced(*run_both(model, (4, 10, 10), tmp_path / "every.onnx", batch=4))  # ceil mode: 6×6, not 5×5


def test_the_graph_names_parameters_and_buffers_as_the_state_dict(tmp_path):
    model = get_model("nin-digits")
    proto = ninx.onnx.export(model, np.zeros((1, 1, 8, 8), np.float32), tmp_path / "m.onnx")
    names = {i.name for i in proto.graph.initializer}
    assert {"0.0.weight", "0.0.bias", "0.2.weight"} <= names
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_an_op_without_a_mapping_is_named(tmp_path):
    class Slicing(nn.Module):
        def forward(self, x):
            return x[:, :2] * 1.0

    model = Slicing()
    model.w = nn.Parameter(ninx.zeros(1))
    with pytest.raises(NotImplementedError, match="IndexBackward"):
        ninx.onnx.export(model, np.zeros((1, 3), np.float32), tmp_path / "s.onnx")


def test_an_existing_file_is_kept_unless_overwrite(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"mine")
    model = get_model("nin-digits")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ninx.onnx.export(model, np.zeros((1, 1, 8, 8), np.float32), path)
    assert path.read_bytes() == b"mine"
    ninx.onnx.export(model, np.zeros((1, 1, 8, 8), np.float32), path, overwrite=True)
    assert path.stat().st_size > 1000
