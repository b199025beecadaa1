"""ninx.summary: per-layer shapes, parameters, MACs and activation bytes, and the prediction and training
memory totals, checked by hand on a small model and on the small NiN (121 M MACs per image)."""
import numpy as np
import pytest

import ninx
from ninx import nn
from ninx.models import get_model
from ninx.summary import format_bytes, summary


def tiny():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3))


def test_a_small_model_by_hand():
    s = summary(tiny(), (5, 2, 4, 4), optimizer="adam")
    # conv: output (5, 4, 4, 4); MACs N·oC·oH·oW·C·kh·kw = 5·4·4·4·2·3·3 = 5,760; params 4·2·9 + 4 = 76
    # relu: same shape, 0 MACs;  pool 2: (5, 4, 2, 2);  flatten: (5, 16)
    # linear: MACs N·in·out = 5·16·3 = 240; params 16·3 + 3 = 51
    assert [(r.name, r.kind, r.output_shape, r.params, r.macs) for r in s.rows] == [
        ("0", "Conv2d", (5, 4, 4, 4), 76, 5_760), ("1", "ReLU", (5, 4, 4, 4), 0, 0),
        ("2", "MaxPool2d", (5, 4, 2, 2), 0, 0), ("3", "Flatten", (5, 16), 0, 0), ("4", "Linear", (5, 3), 51, 240)]
    # float32 outputs: 5·64·4 = 1,280 (conv, relu), 5·16·4 = 320 (pool, flatten), 5·3·4 = 60 (linear)
    assert [r.activation_bytes for r in s.rows] == [1_280, 1_280, 320, 320, 60]
    assert (s.params, s.macs, s.param_bytes) == (127, 6_000, 508)
    assert s.input_bytes == 5 * 2 * 4 * 4 * 4 == 640
    assert s.activation_bytes == 1_280 + 1_280 + 320 + 320 + 60 == 3_260
    # prediction: weights + the largest (layer input + output) = 508 + (1,280 + 1,280)
    assert s.peak_activation_bytes == 2_560 and s.inference_bytes == 3_068
    # training with Adam: weights 508 + gradients 508 + two moments 1,016 + input 640 + activations 3,260
    assert s.training_bytes == 508 + 508 + 1_016 + 640 + 3_260 == 5_932
    assert summary(tiny(), (5, 2, 4, 4), optimizer="sgd").training_bytes == 5_932 - 1_016
    assert summary(tiny(), (5, 2, 4, 4), optimizer="sgd-momentum").training_bytes == 5_932 - 508


def test_grouped_convolution_counts_input_channels_per_group():
    s = summary(nn.Sequential(nn.Conv2d(4, 6, 3, groups=2, bias=False)), (1, 4, 5, 5))
    # output (1, 6, 3, 3); each output sees C/G = 2 channels: 6·3·3·2·3·3 = 972
    assert s.rows[0].macs == 972 and s.params == 6 * 2 * 3 * 3


def test_small_nin_costs_121_million_macs_per_image():
    # at 28×28 (k×k conv, then two 1×1 convs, all per output pixel):
    #   block 1, 28×28: 784·(1·25·96 + 2·96·96)       = 784·20,832   = 16,332,288
    #   block 2, 13×13: 169·(96·25·192 + 2·192·192)   = 169·534,528  = 90,335,232
    #   block 3,  6×6:   36·(192·9·192 + 2·192·192)   = 36·405,504   = 14,598,144
    #   block 4,  2×2:    4·(192·9·10 + 2·10·10)      = 4·17,480     =     69,920
    per_image = 16_332_288 + 90_335_232 + 14_598_144 + 69_920
    assert per_image == 121_335_584
    s = summary(get_model("nin-small"), (2, 1, 28, 28))
    assert s.macs == 2 * per_image and s.params == 979_814
    assert s.rows[0].name == "0.0" and s.rows[-1].output_shape == (2, 10)


def test_the_table_prints_rows_and_totals():
    text = str(summary(tiny(), (5, 2, 4, 4)))
    assert "Conv2d" in text and "(5, 4, 4, 4)" in text and "5,760" in text
    assert "parameters: 127" in text and "prediction memory: 3.0 KiB" in text
    assert "training memory with adam: 5.8 KiB" in text
    assert format_bytes(512) == "512 B" and format_bytes(3 * 2 ** 20) == "3.0 MiB"


def test_tracing_leaves_the_model_and_the_random_generator_alone():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    ninx.manual_seed(0)
    expected = ninx.random.generator().random(3)
    ninx.manual_seed(0)
    summary(model, (4, 1, 6, 6))
    assert model.training and all(m.training for m in model.modules())
    np.testing.assert_array_equal(ninx.random.generator().random(3), expected)  # dropout drew nothing
    assert model[1].num_batches_tracked.item() == 0


def test_models_beyond_sequential_are_traced_and_bad_arguments_rejected():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

        def forward(self, x):
            return x + self.conv(x)

    s = summary(Residual(), (3, 1, 4, 4))
    assert [(r.name, r.output_shape, r.params, r.macs) for r in s.rows] == [("conv", (3, 1, 4, 4), 2, 3 * 16)]
    with pytest.raises(ValueError, match="optimizer must be one of"):
        summary(tiny(), (1, 2, 4, 4), optimizer="lbfgs")
