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


def conv(c_in, c_out, k):
    """Parameters of a k×k convolution with bias: c_out·c_in·k² weights + c_out biases."""
    return c_out * c_in * k * k + c_out


def count(model):
    return sum(p.numel() for p in model.parameters())


# ---- parameter counts, by hand ---------------------------------------------------------------------------

def test_d2l_nin_has_1992166_parameters():
    # block 1: 1·96·11² + 96 = 11,712;  two 1×1: 2·(96·96 + 96) = 18,624               →    30,336
    # block 2: 96·256·5² + 256 = 614,656;  two 1×1: 2·(256·256 + 256) = 131,584         →   746,240
    # block 3: 256·384·3² + 384 = 885,120;  two 1×1: 2·(384·384 + 384) = 295,680        → 1,180,800
    # block 4: 384·10·3² + 10 = 34,570;  two 1×1: 2·(10·10 + 10) = 220                  →    34,790
    assert 30_336 + 746_240 + 1_180_800 + 34_790 == 1_992_166
    assert conv(1, 96, 11) + 2 * conv(96, 96, 1) == 30_336  # the helper agrees with the arithmetic above
    assert count(nin_d2l()) == 1_992_166


def test_small_nin_has_979814_parameters():
    # block 1: 1·96·5² + 96 = 2,496;  two 1×1: 2·(96·96 + 96) = 18,624                  →  21,120
    # block 2: 96·192·5² + 192 = 460,992;  two 1×1: 2·(192·192 + 192) = 74,112          → 535,104
    # block 3: 192·192·3² + 192 = 331,968;  two 1×1: 74,112                             → 406,080
    # block 4: 192·10·3² + 10 = 17,290;  two 1×1: 2·(10·10 + 10) = 220                  →  17,510
    assert 21_120 + 535_104 + 406_080 + 17_510 == 979_814
    assert count(get_model("nin-small")) == 979_814


def test_cifar10_nin_has_966986_parameters():
    # mlpconv 1: 3·192·5² + 192 = 14,592;  192·160 + 160 = 30,880;  160·96 + 96 = 15,456      →  60,928
    # mlpconv 2: 96·192·5² + 192 = 460,992;  two 192·192 + 192 = 2·37,056 = 74,112           → 535,104
    # mlpconv 3: 192·192·3² + 192 = 331,968;  192·192 + 192 = 37,056;  192·10 + 10 = 1,930   → 370,954
    assert 60_928 + 535_104 + 370_954 == 966_986
    assert count(nin_cifar10()) == 966_986


def test_32_and_digits_nins():
    # nin-32: 3·64·25 + 64 = 4,864 + 2·(64·64 + 64) = 8,320                  →  13,184
    #         64·128·25 + 128 = 204,928 + 2·(128·128 + 128) = 33,024         → 237,952
    #         128·128·9 + 128 = 147,584 + 33,024                             → 180,608
    #         128·10·9 + 10 = 11,530 + 2·110 = 220                           →  11,750
    assert count(get_model("nin-32")) == 13_184 + 237_952 + 180_608 + 11_750 == 443_494
    # nin-digits: 1·32·9 + 32 = 320 + 2·(32·32 + 32) = 2,112                 →   2,432
    #             32·64·9 + 64 = 18,496 + 2·(64·64 + 64) = 8,320             →  26,816
    #             64·10·9 + 10 = 5,770 + 2·110 = 220                         →   5,990
    assert count(get_model("nin-digits")) == 2_432 + 26_816 + 5_990 == 35_238


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
    assert set(MODELS) == {"nin", "nin-cifar10", "nin-small", "nin-digits", "nin-32"}
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
