"""ninx.models: the NiN architectures layer by layer, their parameter counts worked out by hand (they equal
PyTorch's for the same layers), output shapes at their input sizes, the registry, and a small NiN that
learns."""
import numpy as np
import pytest

import ninx
from ninx import nn
from ninx.models import MODELS, get_model, input_shape, mlpconv, nin_block, nin_cifar10, nin_d2l
from ninx.nn import functional as F
from ninx.optim import Adam


def count(model):
    return sum(p.numel() for p in model.parameters())


def expected_params(model):
    """Parameters from each layer's hyper-parameters, not from its arrays: a k×k conv with bias has
    out·(in/groups)·kh·kw weights and out biases, a linear layer out·in + out, batch norm 2·C."""
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total += m.out_channels * (m.in_channels // m.groups) * kh * kw + (m.out_channels if m.bias is not None else 0)
        elif isinstance(m, nn.Linear):
            total += m.out_features * m.in_features + (m.out_features if m.bias is not None else 0)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            total += 2 * m.num_features
    return total


def conv_table(model):
    """(in, out, kernel) of every convolution, in order: the layer table of the model's docstring."""
    return [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in model.modules() if isinstance(m, nn.Conv2d)]


def mlpconv_rows(c_in, widths, k):
    return [(c_in, widths[0], k), (widths[0], widths[1], 1), (widths[1], widths[2], 1)]


# ---- parameter counts: from the layer table, and pinned ------------------------------------------------------

@pytest.mark.parametrize("name, rows, total", [
    ("nin", mlpconv_rows(1, (96,) * 3, 11) + mlpconv_rows(96, (256,) * 3, 5) + mlpconv_rows(256, (384,) * 3, 3)
     + mlpconv_rows(384, (10,) * 3, 3), 1_992_166),
    ("nin-small", mlpconv_rows(1, (96,) * 3, 5) + mlpconv_rows(96, (192,) * 3, 5)
     + mlpconv_rows(192, (192,) * 3, 3) + mlpconv_rows(192, (10,) * 3, 3), 979_814),
    ("nin-cifar10", mlpconv_rows(3, (192, 160, 96), 5) + mlpconv_rows(96, (192, 192, 192), 5)
     + mlpconv_rows(192, (192, 192, 10), 3), 966_986),
    ("nin-32", mlpconv_rows(3, (64,) * 3, 5) + mlpconv_rows(64, (128,) * 3, 5) + mlpconv_rows(128, (128,) * 3, 3)
     + mlpconv_rows(128, (10,) * 3, 3), 443_494),
    ("nin-digits", mlpconv_rows(1, (32,) * 3, 3) + mlpconv_rows(32, (64,) * 3, 3) + mlpconv_rows(64, (10,) * 3, 3),
     35_238),
])
def test_each_nin_has_its_layer_table_and_parameter_count(name, rows, total):
    model = get_model(name)
    assert conv_table(model) == rows
    assert count(model) == expected_params(model) == total


# ---- structure and shapes ---------------------------------------------------------------------------------

def test_nin_block_is_a_conv_and_two_1x1_convs_each_with_a_relu():
    block = nin_block(3, 8, 5, 2, 1)
    assert [type(m) for m in block] == [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU]
    first, pointwise = block[0], block[2]
    assert (first.in_channels, first.out_channels, first.kernel_size, first.stride, first.padding) == \
        (3, 8, (5, 5), (2, 2), (1, 1))
    assert (pointwise.kernel_size, pointwise.stride, pointwise.padding) == ((1, 1), (1, 1), (0, 0))
    assert [type(m) for m in mlpconv(3, (8, 6, 4), 3, final_relu=False)][-1] is nn.Conv2d


def test_d2l_nin_layout():
    model = nin_d2l()
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Sequential", "MaxPool2d", "Sequential", "MaxPool2d", "Sequential", "MaxPool2d", "Dropout",
                     "Sequential", "GlobalAvgPool2d", "Flatten"]
    assert model[6].p == 0.5 and (model[1].kernel_size, model[1].stride) == (3, 2)
    assert isinstance(model[7][-1], nn.ReLU)  # d2l ends the last block with a ReLU ...
    assert isinstance(nin_d2l(final_relu=False)[7][-1], nn.Conv2d)  # ... unless asked not to
    assert isinstance(get_model("nin-digits")[-3][-1], nn.Conv2d)  # the small NiNs drop it by default
    assert isinstance(get_model("nin-digits")[0][-1], nn.ReLU)  # only in the last block


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_its_input_size_to_class_scores(name):
    model = get_model(name, num_classes=7).eval()
    with ninx.no_grad():
        y = model(ninx.zeros(2, *input_shape(name)))
    assert y.shape == (2, 7)


def test_cifar10_nin_pools_round_up_as_caffe():
    model = nin_cifar10().eval()
    x = ninx.zeros(1, 3, 32, 32)
    sizes = []
    with ninx.no_grad():
        for layer in model:
            x = layer(x)
            sizes.append(x.shape[2:])
    assert sizes[:6] == [(32, 32), (16, 16), (16, 16), (16, 16), (8, 8), (8, 8)]


def test_registry():
    assert {"nin", "nin-cifar10", "nin-small", "nin-digits", "nin-32"} <= set(MODELS)
    assert input_shape("nin") == (1, 224, 224) and input_shape("nin-cifar10") == (3, 32, 32)
    assert input_shape("nin-small", in_channels=3) == (3, 28, 28)
    model = get_model("nin-small", num_classes=5, in_channels=3)
    assert model[0][0].in_channels == 3 and model[-3][-1].out_channels == 5
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        get_model("resnet")
    with pytest.raises(ValueError, match="init must be"):
        get_model("nin-digits", init="orthogonal")


def test_kaiming_normal_init_keeps_relu_activations_scale():
    ninx.manual_seed(0)
    model = get_model("nin-32")  # init="kaiming_normal": std √(2/fan_in), zero bias
    first = model[0][0]
    assert first.weight.numpy().std() == pytest.approx(np.sqrt(2 / (3 * 25)), rel=0.05)
    assert not first.bias.numpy().any()


# ---- learning -----------------------------------------------------------------------------------------------

def separable_digits(n, seed):
    """8×8 images of 10 classes: a fixed random pattern per class plus noise, normalised."""
    rng = np.random.default_rng(seed)
    patterns = np.random.default_rng(1234).standard_normal((10, 1, 8, 8))
    labels = rng.integers(0, 10, n)
    images = patterns[labels] + 0.5 * rng.standard_normal((n, 1, 8, 8))
    return ((images - images.mean()) / images.std()).astype(np.float32), labels


def test_the_digits_nin_learns_a_small_slice():
    ninx.manual_seed(0)
    x, y = separable_digits(320, seed=0)
    model = get_model("nin-digits")
    opt = Adam(model.parameters(), lr=5e-3)
    losses = []
    for epoch in range(10):
        for i in range(0, len(x), 16):
            loss = F.cross_entropy(model(ninx.tensor(x[i:i + 16])), ninx.tensor(y[i:i + 16]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert np.mean(losses[:3]) > 1.8  # starts near chance, ln 10 ≈ 2.30
    assert np.mean(losses[-10:]) < 0.5
    x_test, y_test = separable_digits(200, seed=1)
    with ninx.no_grad():
        accuracy = (model.eval()(ninx.tensor(x_test)).argmax(1).numpy() == y_test).mean()
    assert accuracy > 0.9
