"""Edge inputs flow or are refused by name: empty batches give empty results and zero gradients through every
op (as in PyTorch), 0-d tensors accept dim 0 and -1, and out-of-range dims, zero kernels and empty reductions
raise a ValueError/TypeError naming the argument."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
from ninx import nn
from ninx.nn import functional as F


def _conv(x):
    return F.conv2d(x, ninx.tensor(np.ones((2, x.shape[1], 3, 3)), dtype=x.dtype, device=x.device), padding=1)


def _pointwise(x):
    return F.conv2d(x, ninx.tensor(np.ones((2, x.shape[1], 1, 1)), dtype=x.dtype, device=x.device))


def _depthwise(x):
    c = x.shape[1]
    return F.conv2d(x, ninx.tensor(np.ones((2 * c, 1, 3, 3)), dtype=x.dtype, device=x.device), padding=1, groups=c)


def _batch_norm_eval(x):
    bn = nn.BatchNorm2d(x.shape[1]).to(x.device, x.dtype).eval()
    return bn(x)


def _linear(x):
    rows = x.flatten(1)
    return F.linear(rows, ninx.tensor(np.ones((3, rows.shape[1])), dtype=x.dtype, device=x.device))


# every op that takes an (N, C, H, W) batch, as a function of it
BATCH_OPS = {
    "conv2d 3×3": _conv, "conv2d 1×1": _pointwise, "linear": _linear, "batch_norm (eval)": _batch_norm_eval,
    "relu": F.relu, "relu6": F.relu6, "sigmoid": F.sigmoid, "max_pool2d": lambda x: F.max_pool2d(x, 2),
    "avg_pool2d": lambda x: F.avg_pool2d(x, 2), "global_avg_pool2d": F.global_avg_pool2d,
    "softmax": lambda x: F.softmax(x, 1), "log_softmax": lambda x: F.log_softmax(x, 1),
    "dropout": lambda x: F.dropout(x, 0.5), "flatten": lambda x: x.flatten(1), "mul": lambda x: x * 2.0,
    "add": lambda x: x + x, "sum(dim)": lambda x: x.sum(dim=(2, 3)), "mean(dim)": lambda x: x.mean(dim=1),
    "permute": lambda x: x.permute(0, 2, 3, 1), "index": lambda x: x[:, :1], "cat": lambda x: ninx.cat([x, x], 1),
    "clamp": lambda x: x.clamp(-1, 1), "abs": lambda x: x.abs(), "exp": lambda x: x.exp(),
    "conv2d depthwise": _depthwise, "silu": F.silu, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
    "hardtanh": F.hardtanh, "adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, 3),
    "adaptive_max_pool2d": lambda x: F.adaptive_max_pool2d(x, 3),
    "local_response_norm": lambda x: F.local_response_norm(x, 2),
    "stochastic_depth": lambda x: F.stochastic_depth(x, 0.5, "row"),
}


@pytest.mark.parametrize("op", sorted(BATCH_OPS))
@settings(max_examples=4)
@given(c=st.integers(1, 3), h=st.integers(2, 5), w=st.integers(2, 5))
def test_an_empty_batch_flows_forward_and_backward(op, device, c, h, w):
    x = ninx.tensor(np.zeros((0, c, h, w)), dtype=np.float64, requires_grad=True, device=device)
    y = BATCH_OPS[op](x)
    assert y.shape[0] == 0 and y.numel() == 0
    y.sum().backward()
    assert x.grad.shape == x.shape


@settings(max_examples=10)
@given(m=st.integers(0, 3), k=st.integers(0, 3), n=st.integers(0, 3))
def test_matmul_with_zero_sized_dimensions_is_an_empty_or_zero_product(device, m, k, n):
    a = ninx.tensor(np.ones((m, k)), dtype=np.float64, requires_grad=True, device=device)
    b = ninx.tensor(np.ones((2, k, n)), dtype=np.float64, requires_grad=True, device=device)
    y = a @ b
    np.testing.assert_array_equal(y.numpy(), np.ones((m, k)) @ np.ones((2, k, n)))  # K = 0: zeros
    y.sum().backward()
    assert a.grad.shape == (m, k) and b.grad.shape == (2, k, n)


def test_an_empty_batch_through_a_model_and_its_loss(device):
    model = ninx.models.get_model("nin-digits").to(device).eval()
    logits = model(ninx.zeros(0, 1, 8, 8, device=device))
    assert logits.shape == (0, 10)
    assert np.isnan(F.cross_entropy(logits, ninx.tensor(np.zeros(0, np.int64), device=device)).item())  # 0/0


def test_zero_dimensional_tensors_take_dim_0_and_minus_1():
    x = ninx.tensor(3.0, requires_grad=True)
    assert x.sum(0).item() == 3.0 and x.mean(-1).item() == 3.0 and x.amax(0).item() == 3.0
    assert F.softmax(x, -1).item() == 1.0 and F.log_softmax(x, 0).item() == 0.0
    assert x.argmax().item() == 0 and x.argmax(0).item() == 0
    values, index = x.max(0)
    assert values.item() == 3.0 and index.item() == 0
    with pytest.raises(IndexError, match="dim 1 is out of range"):
        x.sum(1)


def test_argmax_of_a_whole_tensor_is_a_tensor_whose_item_works():
    assert ninx.tensor([[1.0, 7.0], [3.0, 2.0]]).argmax().item() == 1
    assert ninx.tensor([[1.0, 7.0], [3.0, 2.0]]).argmin(dim=1, keepdim=True).tolist() == [[0], [1]]


@pytest.mark.parametrize("call", [lambda t: t.transpose(0, 5), lambda t: t.sum(dim=2), lambda t: t.unsqueeze(4),
                                  lambda t: t.permute(0, 0), lambda t: t.squeeze(-3), lambda t: t.size(2),
                                  lambda t: t.flatten(0, 3), lambda t: ninx.cat([t, t], 2)])
def test_an_out_of_range_dim_is_an_error_naming_it(call):
    with pytest.raises(ValueError, match=r"dim|dims"):
        call(ninx.zeros(2, 3))


def test_mean_over_an_empty_dim_list_reduces_everything_as_pytorch():
    x = ninx.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.mean(dim=[]).item() == 2.5 and x.sum(dim=()).item() == 10.0


def test_log_softmax_over_an_empty_axis_is_empty():
    assert F.log_softmax(ninx.zeros(2, 0), 1).shape == (2, 0)


@pytest.mark.parametrize("args", [dict(kernel_size=0), dict(kernel_size=(3, 0)), dict(kernel_size=3, stride=0),
                                  dict(kernel_size=3, padding=-1), dict(kernel_size=3, dilation=0)])
def test_conv2d_modules_refuse_non_positive_geometry_by_name(args):
    name = next(k for k, v in args.items() if v in (0, (3, 0), -1))
    with pytest.raises(ValueError, match=name):
        nn.Conv2d(3, 4, **args)


def test_reducing_an_empty_tensor_without_dim_is_refused():
    with pytest.raises(ValueError, match="empty"):
        ninx.zeros(0, 3).max()
    with pytest.raises(ValueError, match="empty"):
        ninx.zeros(0, 3).argmax()
