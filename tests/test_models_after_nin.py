"""The networks after NiN: parameter counts pinned to torchvision's (and hand-counted for single blocks),
state-dict names, order and shapes, buffers and layer hyper-parameters as torchvision's, a round trip through
.safetensors, and every model's forward and backward at small sizes. Nothing here imports torch."""
import math

import numpy as np
import pytest

import ninx
from ninx import nn
from ninx.models import (GoogLeNet, Inception, InvertedResidual, MBConv, get_model, googlenet, input_shape,
                         mobilenet_v2)
from ninx.models.blocks import make_divisible
from ninx.models.efficientnet import MBConvConfig
from ninx.summary import summary


def count(model):
    return sum(p.numel() for p in model.parameters())


def conv_bn(c_in, c_out, k, groups=1):
    """Parameters of conv (no bias) + batch norm: c_out·(c_in/groups)·k² + 2·c_out."""
    return c_out * c_in // groups * k * k + 2 * c_out


@pytest.mark.parametrize("name, params", [
    ("mobilenet_v2", 3_504_872), ("googlenet", 6_624_904), ("mobilenet_v1", 4_231_976),
    ("efficientnet_b0", 5_288_548), ("efficientnet_b1", 7_794_184), ("efficientnet_b2", 9_109_994),
    ("efficientnet_b3", 12_233_232), ("efficientnet_b4", 19_341_616), ("efficientnet_b5", 30_389_784),
    ("efficientnet_b6", 43_040_704), ("efficientnet_b7", 66_347_960)])
def test_full_size_parameter_counts_are_torchvisions(name, params):
    """torchvision's published num_params (1000 classes; GoogLeNet without its auxiliary heads)."""
    assert count(get_model(name, num_classes=1000)) == params


def test_googlenet_auxiliary_heads_add_two_classifiers():
    # each head: conv_bn(528 or 512 → 128, 1×1), fc 2048 → 1024, fc 1024 → 1000
    heads = sum(conv_bn(c, 128, 1) + 2048 * 1024 + 1024 + 1024 * 1000 + 1000 for c in (512, 528))
    assert count(googlenet(aux_logits=True)) == 6_624_904 + heads == 13_004_888


def test_single_blocks_by_hand():
    # MobileNetV2's first stride-2 block: expand 16 → 96, depthwise 3×3, project to 24
    assert count(InvertedResidual(16, 24, 2, 6)) == conv_bn(16, 96, 1) + conv_bn(96, 96, 3, 96) + conv_bn(96, 24, 1)
    # inception3a: 1×1 64 | 1×1 96 → 3×3 128 | 1×1 16 → "5×5" (3×3) 32 | pool → 1×1 32
    assert count(Inception(192, 64, 96, 128, 16, 32, 32)) == (
        conv_bn(192, 64, 1) + conv_bn(192, 96, 1) + conv_bn(96, 128, 3) + conv_bn(192, 16, 1) + conv_bn(16, 32, 3)
        + conv_bn(192, 32, 1))
    # an MBConv6 5×5 from 40 to 80: expand to 240, depthwise, SE squeeze to 40 // 4 = 10 (with biases), project
    block = MBConv(MBConvConfig(6, 5, 2, 40, 80, 1), 0.0, nn.BatchNorm2d)
    se = 240 * 10 + 10 + 10 * 240 + 240
    assert count(block) == conv_bn(40, 240, 1) + conv_bn(240, 240, 5, 240) + se + conv_bn(240, 80, 1)


def test_make_divisible_is_torchvisions_rounding():
    assert [make_divisible(v) for v in (32 * 0.35, 16 * 0.5, 24 * 1.4, 1280 * 1.0, 3.0, 100 * 0.75)] == \
        [16, 8, 32, 1280, 8, 72]  # 11.2 → 8 would lose more than 10%, so 16; 33.6 → 32; 75 → 72


def test_mobilenet_v2_names_order_and_shapes_are_torchvisions():
    state = mobilenet_v2().state_dict()
    names = list(state)
    assert len(names) == 314
    assert names[:6] == ["features.0.0.weight", "features.0.1.weight", "features.0.1.bias",
                         "features.0.1.running_mean", "features.0.1.running_var", "features.0.1.num_batches_tracked"]
    assert names[-2:] == ["classifier.1.weight", "classifier.1.bias"]
    shapes = {"features.1.conv.0.0.weight": (32, 1, 3, 3), "features.1.conv.1.weight": (16, 32, 1, 1),
              "features.2.conv.0.0.weight": (96, 16, 1, 1), "features.2.conv.1.0.weight": (96, 1, 3, 3),
              "features.2.conv.2.weight": (24, 96, 1, 1), "features.2.conv.3.running_var": (24,),
              "features.18.0.weight": (1280, 320, 1, 1), "classifier.1.weight": (1000, 1280)}
    assert {n: state[n].shape for n in shapes} == shapes
    assert state["features.0.1.num_batches_tracked"].dtype == np.int64


def test_googlenet_names_and_hyper_parameters_are_torchvisions():
    model = googlenet()
    state = model.state_dict()
    assert len(state) == 344 and list(state)[:3] == ["conv1.conv.weight", "conv1.bn.weight", "conv1.bn.bias"]
    assert state["inception3a.branch3.1.conv.weight"].shape == (32, 16, 3, 3)  # the "5×5" is 3×3 (vision#906)
    assert state["inception5b.branch4.1.conv.weight"].shape == (128, 832, 1, 1)
    assert state["fc.weight"].shape == (1000, 1024) and model.aux1 is None
    assert {m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {0.001}
    pool = model.inception3a.branch4[0]
    assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 1, 1, True)
    aux = googlenet(aux_logits=True).state_dict()
    assert [n for n in aux if n.startswith("aux1.")][:2] == ["aux1.conv.conv.weight", "aux1.conv.bn.weight"]
    assert aux["aux2.fc1.weight"].shape == (1024, 2048) and aux["aux2.conv.conv.weight"].shape == (128, 528, 1, 1)


def test_efficientnet_names_hyper_parameters_and_drop_rates_are_torchvisions():
    b0, b7 = get_model("efficientnet_b0", num_classes=1000), get_model("efficientnet_b7", num_classes=1000)
    state = b0.state_dict()
    assert len(state) == 360
    shapes = {"features.1.0.block.0.0.weight": (32, 1, 3, 3), "features.1.0.block.1.fc1.weight": (8, 32, 1, 1),
              "features.1.0.block.1.fc2.bias": (32,), "features.1.0.block.2.0.weight": (16, 32, 1, 1),
              "features.3.0.block.1.0.weight": (144, 1, 5, 5), "features.6.3.block.2.fc1.weight": (48, 1152, 1, 1),
              "features.8.0.weight": (1280, 320, 1, 1), "classifier.1.weight": (1000, 1280)}
    assert {n: state[n].shape for n in shapes} == shapes
    rates = [m.stochastic_depth.p for m in b0.modules() if isinstance(m, MBConv)]
    assert rates == pytest.approx([0.2 * i / 16 for i in range(16)])
    assert {(m.eps, m.momentum) for m in b0.modules() if isinstance(m, nn.BatchNorm2d)} == {(1e-5, 0.1)}
    assert {(m.eps, m.momentum) for m in b7.modules() if isinstance(m, nn.BatchNorm2d)} == {(1e-3, 0.01)}
    assert [len(stage) for stage in list(b7.features)[1:-1]] == [math.ceil(n * 3.1) for n in (1, 2, 2, 3, 3, 4, 1)]
    assert b7.classifier[0].p == 0.5 and input_shape("efficientnet_b7") == (3, 600, 600)


def test_a_torchvision_layout_state_dict_round_trips_through_safetensors(tmp_path):
    """Save MobileNetV2's state dict as .safetensors and load it into a fresh model: no renaming, same logits."""
    ninx.manual_seed(1)
    source = get_model("mobilenet_v2", num_classes=10)
    path = tmp_path / "mobilenet_v2.safetensors"
    ninx.save(source.state_dict(), path, metadata={"model": "mobilenet_v2"})
    ninx.manual_seed(2)
    target = get_model("mobilenet_v2", num_classes=10)
    target.load_state_dict(ninx.load(path))
    x = ninx.tensor(np.random.default_rng(0).standard_normal((1, 3, 32, 32)), dtype=np.float32)
    np.testing.assert_array_equal(target.eval()(x).numpy(), source.eval()(x).numpy())


@pytest.mark.parametrize("name", ["mobilenet_v2-small", "mobilenet_v1-small", "googlenet-small",
                                  "efficientnet-small"])
def test_small_variants_train_a_step_on_28x28_and_8x8_images(name):
    ninx.manual_seed(0)
    model = get_model(name, num_classes=10, in_channels=1)
    for side in (28, 8):
        x = ninx.tensor(np.random.default_rng(side).standard_normal((3, 1, side, side)), dtype=np.float32)
        loss = nn.functional.cross_entropy(model.train()(x), np.array([0, 1, 2]))
        model.zero_grad()
        loss.backward()
        assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in model.parameters())
    assert model.eval()(ninx.tensor(np.zeros((2, 1, 28, 28)), dtype=np.float32)).shape == (2, 10)


@pytest.mark.parametrize("name, side", [("mobilenet_v2", 32), ("mobilenet_v1", 32), ("efficientnet_b0", 32),
                                        ("googlenet", 64)])
def test_full_size_models_run_forward_and_backward_at_a_small_input(name, side):
    ninx.manual_seed(0)
    model = get_model(name, num_classes=5)
    x = ninx.tensor(np.random.default_rng(0).standard_normal((2, 3, side, side)), dtype=np.float32)
    model.eval()(x).sum().backward()
    assert model.features[0][0].weight.grad is not None if hasattr(model, "features") else \
        model.conv1.conv.weight.grad is not None


def test_googlenet_returns_auxiliary_logits_in_training_and_transforms_its_input():
    ninx.manual_seed(0)
    model = googlenet(num_classes=4, aux_logits=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
    out = model.train()(ninx.tensor(x, dtype=np.float32))
    assert [t.shape for t in out] == [(2, 4)] * 3 and out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert model.eval()(ninx.tensor(x, dtype=np.float32)).shape == (2, 4)
    transformed = GoogLeNet(num_classes=4, transform_input=True)
    plain = GoogLeNet(num_classes=4)
    plain.load_state_dict(transformed.state_dict())
    std, mean = np.array([0.229, 0.224, 0.225]), np.array([0.485, 0.456, 0.406])
    by_hand = x * (std / 0.5).reshape(1, 3, 1, 1) + ((mean - 0.5) / 0.5).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(transformed.eval()(ninx.tensor(x, dtype=np.float32)).numpy(),
                               plain.eval()(ninx.tensor(by_hand, dtype=np.float32)).numpy(),
                               rtol=1e-4, atol=1e-6)


def test_summary_counts_depthwise_and_squeeze_excitation_macs():
    """B0's first block at 112²: depthwise 3×3 on 32 channels is 112²·32·9 MACs; its SE 1×1 convs act on the
    pooled 1×1 map, 32·8 MACs each."""
    model = get_model("efficientnet_b0", num_classes=1000)
    s = summary(model, (1, 3, 224, 224))
    rows = {r.name: r for r in s.rows}
    assert rows["features.1.0.block.0.0"].macs == 112 * 112 * 32 * 9
    assert rows["features.1.0.block.1.fc1"].macs == 32 * 8 and rows["features.1.0.block.1.fc2"].macs == 8 * 32
    assert s.params == 5_288_548 and 380e6 < s.macs < 395e6  # the paper's 0.39 B FLOPs (multiply-adds)


@pytest.mark.parametrize("name, params", [("mobilenet_v2-small", 209_066), ("mobilenet_v1-small", 142_570),
                                          ("googlenet-small", 102_254), ("efficientnet-small", 385_738),
                                          ("googlenet", 5_610_154)])
def test_ninx_summary_lists_the_new_models(capsys, name, params):
    """`ninx summary --model NAME` (10 classes, the model's own input size) traces the model to its totals."""
    from ninx.cli import main
    assert main(["summary", "--model", name]) == 0
    out = capsys.readouterr().out
    assert f"parameters: {params:,}" in out and "Conv2d" in out
