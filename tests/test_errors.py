"""Bad input: a ValueError or TypeError whose message names the argument and the shapes, raised before any
kernel runs (every kernel of the backend is swapped for one that fails the test if it is called)."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
from ninx.backend import KERNELS, get_backend
from ninx.nn import functional as F
from strategies import CONV_FAULTS, POOL_FAULTS, invalid_conv_cases, invalid_pool_cases, values


@contextlib.contextmanager
def kernels_forbidden(device):
    """Make every kernel of `device`'s backend fail the test if it is called."""
    backend = get_backend(device)
    saved = {name: getattr(backend, name) for name in KERNELS}

    def refuse(name):
        def kernel(*args, **kwargs):
            raise AssertionError(f"kernel {name} ran before the arguments were checked")
        return kernel
    try:
        for name in saved:
            setattr(backend, name, refuse(name))
        yield
    finally:
        for name, kernel in saved.items():
            setattr(backend, name, kernel)


def assert_raises_naming(error, words, call):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [w for w in words if w not in message]
    assert not missing, f"message {message!r} does not mention {missing}"


@pytest.mark.parametrize("fault", CONV_FAULTS)
@settings(max_examples=5)
@given(data=st.data())
def test_invalid_conv2d_raises_before_any_kernel(device, fault, data):
    bad = data.draw(invalid_conv_cases(fault))
    case = bad.case
    x, w, b = case.arrays()
    xt = case.x_layout.view(ninx.tensor(case.x_layout.store(x), dtype=case.dtype, device=device))
    wt = case.w_layout.view(ninx.tensor(case.w_layout.store(w), dtype=case.w_dtype or case.dtype, device=device))
    bt = None if b is None else ninx.tensor(b, dtype=case.dtype, device=device)
    with kernels_forbidden(device):
        assert_raises_naming(bad.error, bad.words, lambda: F.conv2d(xt, wt, bt, **case.options))


@pytest.mark.parametrize("fault", POOL_FAULTS)
@settings(max_examples=5)
@given(data=st.data())
def test_invalid_pooling_raises_before_any_kernel(device, fault, data):
    bad = data.draw(invalid_pool_cases(fault))
    case = bad.case
    xt = case.layout.view(ninx.tensor(case.layout.store(values(case.x_shape, case.seed)), dtype=case.dtype,
                                      device=device))
    calls = []
    if bad.fault != "divisor":
        calls.append(lambda: F.max_pool2d(xt, **case.max_options))
    if bad.fault not in ("dilation", "empty_window"):  # avg_pool2d has no dilation
        calls.append(lambda: F.avg_pool2d(xt, **case.avg_options))
    with kernels_forbidden(device):
        for call in calls:
            assert_raises_naming(bad.error, bad.words, call)


def _t(shape, device, dtype=np.float32):
    return ninx.tensor(values(shape, 0), dtype=dtype, device=device)


# (what, error, words the message must contain, call(device))
BAD_CALLS = [
    ("matmul inner sizes", ValueError, ["(2, 3)", "(4, 5)"], lambda d: _t((2, 3), d) @ _t((4, 5), d)),
    ("matmul batch axes", ValueError, ["(2, 3, 4)", "(5, 4, 1)"], lambda d: _t((2, 3, 4), d) @ _t((5, 4, 1), d)),
    ("matmul of a scalar", ValueError, ["()", "(3,)"], lambda d: _t((), d) @ _t((3,), d)),
    ("operator dtypes", TypeError, ["float32", "float64", "(2, 3)", "(3,)"],
     lambda d: _t((2, 3), d) + _t((3,), d, np.float64)),
    ("matmul dtypes", TypeError, ["float32", "float64", "(2, 3)", "(3, 4)"],
     lambda d: _t((2, 3), d) @ _t((3, 4), d, np.float64)),
    ("shapes that do not broadcast", ValueError, ["(2,3)", "(4,)"], lambda d: _t((2, 3), d) * _t((4,), d)),
    ("conv2d input not a tensor", TypeError, ["input"],
     lambda d: F.conv2d(np.ones((1, 1, 3, 3)), _t((1, 1, 1, 1), d))),
    ("conv2d integer input", TypeError, ["input", "int64", "(1, 1, 3, 3)"],
     lambda d: F.conv2d(_t((1, 1, 3, 3), d, np.int64), _t((1, 1, 1, 1), d))),
    ("conv2d weight rank", ValueError, ["weight", "(1, 1, 3)"],
     lambda d: F.conv2d(_t((1, 1, 3, 3), d), _t((1, 1, 3), d))),
    ("conv2d padding 'full'", ValueError, ["padding", "full"],
     lambda d: F.conv2d(_t((1, 1, 3, 3), d), _t((1, 1, 3, 3), d), padding="full")),
    ("conv2d padding 'same' with stride", ValueError, ["same", "stride"],
     lambda d: F.conv2d(_t((1, 1, 3, 3), d), _t((1, 1, 3, 3), d), stride=2, padding="same")),
    ("conv2d fractional stride", TypeError, ["stride", "1.5"],
     lambda d: F.conv2d(_t((1, 1, 3, 3), d), _t((1, 1, 3, 3), d), stride=1.5)),
    ("conv2d bias dtype", TypeError, ["bias", "float64", "input", "float32"],
     lambda d: F.conv2d(_t((1, 1, 3, 3), d), _t((2, 1, 3, 3), d), _t((2,), d, np.float64))),
    ("linear features", ValueError, ["input", "(4, 3)", "weight", "(2, 5)"],
     lambda d: F.linear(_t((4, 3), d), _t((2, 5), d))),
    ("linear bias shape", ValueError, ["bias", "(3,)", "(2, 5)"],
     lambda d: F.linear(_t((4, 5), d), _t((2, 5), d), _t((3,), d))),
    ("linear weight rank", ValueError, ["weight", "(5,)"], lambda d: F.linear(_t((4, 5), d), _t((5,), d))),
    ("linear dtypes", TypeError, ["weight", "float64", "input", "float32"],
     lambda d: F.linear(_t((4, 5), d), _t((2, 5), d, np.float64))),
    ("cross_entropy label count", ValueError, ["target", "(4,)", "(3,)", "(4, 5)"],
     lambda d: F.cross_entropy(_t((4, 5), d), np.array([0, 1, 2]))),
    ("cross_entropy label range", ValueError, ["target", "[0, 5)", "(4, 5)"],
     lambda d: F.cross_entropy(_t((4, 5), d), np.array([0, 1, 5, 2]))),
    ("cross_entropy negative label", ValueError, ["target", "(2, 5)"],
     lambda d: F.cross_entropy(_t((2, 5), d), [0, -1])),
    ("cross_entropy float labels", TypeError, ["target", "float"],
     lambda d: F.cross_entropy(_t((2, 5), d), ninx.tensor([0.0, 1.0], device=d))),
    ("cross_entropy input rank", ValueError, ["input", "(2, 5, 1)"],
     lambda d: F.cross_entropy(_t((2, 5, 1), d), np.array([0, 1]))),
    ("cross_entropy reduction", ValueError, ["reduction", "'avg'"],
     lambda d: F.cross_entropy(_t((2, 5), d), np.array([0, 1]), reduction="avg")),
    ("cat shapes", ValueError, ["(2, 3)", "(2, 4)", "dim 0"], lambda d: ninx.cat([_t((2, 3), d), _t((2, 4), d)], 0)),
    ("cat dtypes", TypeError, ["float64", "float32"], lambda d: ninx.cat([_t((2, 3), d), _t((2, 3), d, np.float64)])),
    ("cat of nothing", ValueError, ["at least one"], lambda d: ninx.cat([])),
    ("reshape size", ValueError, ["(2, 3)", "(4,)"], lambda d: _t((2, 3), d).reshape(4)),
    ("permute axes", ValueError, ["(0, 0)", "(2, 3)"], lambda d: _t((2, 3), d).permute(0, 0)),
    ("sum axis", ValueError, ["dim 2", "2 dimensions"], lambda d: _t((2, 3), d).sum(dim=2)),
    ("max axis", ValueError, ["dim -3"], lambda d: _t((2, 3), d).max(dim=-3)),
    ("softmax axis", ValueError, ["dim 2", "(2, 3)"], lambda d: F.softmax(_t((2, 3), d), dim=2)),
    ("log_softmax axis", ValueError, ["dim -3", "(2, 3)"], lambda d: F.log_softmax(_t((2, 3), d), dim=-3)),
    ("dropout p", ValueError, ["p", "1.5"], lambda d: F.dropout(_t((2, 3), d), p=1.5)),
    ("max_pool2d padding over half the kernel, however dilated", ValueError, ["padding", "(2, 2)", "(1, 1, 9, 9)"],
     lambda d: F.max_pool2d(_t((1, 1, 9, 9), d), 2, dilation=3, padding=2)),
    ("adaptive pool size", ValueError, ["output_size", "0", "(1, 1, 5, 4)"],
     lambda d: F.adaptive_avg_pool2d(_t((1, 1, 5, 4), d), (2, 0))),
    ("integer tensor requiring grad", TypeError, ["int64"],
     lambda d: ninx.tensor([1, 2], requires_grad=True, device=d)),
    ("unsupported dtype", TypeError, ["complex128"], lambda d: ninx.tensor([1, 2], dtype=np.complex128, device=d)),
    ("backward of a non-scalar", ValueError, ["(2, 3)"],
     lambda d: (ninx.tensor(np.ones((2, 3)), requires_grad=True, device=d) * 2).backward()),
    ("backward gradient shape", ValueError, ["(3,)", "(2, 3)"],
     lambda d: (ninx.tensor(np.ones((2, 3)), requires_grad=True, device=d) * 2).backward(np.ones(3))),
    ("backward create_graph", NotImplementedError, ["create_graph"],
     lambda d: (ninx.tensor(np.ones(1), requires_grad=True, device=d) * 2).backward(create_graph=True)),
    ("transpose past the last dim", ValueError, ["transpose", "dim 5", "(2, 3)"],
     lambda d: _t((2, 3), d).transpose(0, 5)),
    ("squeeze dim", ValueError, ["squeeze", "dim 2"], lambda d: _t((2, 3), d).squeeze(2)),
    ("unsqueeze dim", ValueError, ["unsqueeze", "dim 4"], lambda d: _t((2, 3), d).unsqueeze(4)),
    ("max dim", ValueError, ["max", "dim 5"], lambda d: _t((2, 3), d).max(5)),
    ("split sizes", ValueError, ["split", "[1, 1]", "3"], lambda d: _t((2, 3), d).split([1, 1], dim=1)),
    ("clamp without bounds", ValueError, ["clamp", "min", "max"], lambda d: _t((2, 3), d).clamp()),
    ("clamp with a tensor bound", NotImplementedError, ["clamp", "tensor"],
     lambda d: _t((2, 3), d).clamp(min=_t((2, 3), d))),
    ("bool of several values", RuntimeError, ["ambiguous", "(2, 3)"], lambda d: bool(_t((2, 3), d) > 0)),
    ("iteration over a 0-d tensor", TypeError, ["0-d"], lambda d: list(_t((), d))),
    ("cast to float16", TypeError, ["float16", "float32"], lambda d: _t((2, 3), d).to(np.float16)),
    ("to an unknown device", ValueError, ["device", "'tpu'"], lambda d: _t((2, 3), d).to("tpu")),
    ("Conv2d kernel 0", ValueError, ["Conv2d", "kernel_size", "(0, 0)"], lambda d: ninx.nn.Conv2d(3, 4, 0)),
    ("Conv2d padding mode", NotImplementedError, ["padding_mode", "'reflect'"],
     lambda d: ninx.nn.Conv2d(3, 4, 3, padding_mode="reflect")),
    ("Linear features", ValueError, ["Linear", "in_features", "-1"], lambda d: ninx.nn.Linear(-1, 3)),
    ("BatchNorm2d features", ValueError, ["BatchNorm2d", "num_features", "0"], lambda d: ninx.nn.BatchNorm2d(0)),
    ("MaxPool2d return_indices", NotImplementedError, ["return_indices"],
     lambda d: ninx.nn.MaxPool2d(2, return_indices=True)),
    ("SGD lr nan", ValueError, ["SGD", "lr", "nan"],
     lambda d: ninx.optim.SGD([ninx.nn.Parameter(_t((2,), d))], lr=float("nan"))),
    ("Adam betas nan", ValueError, ["Adam", "betas"],
     lambda d: ninx.optim.Adam([ninx.nn.Parameter(_t((2,), d))], betas=(0.9, float("nan")))),
    ("cross_entropy label_smoothing", ValueError, ["label_smoothing", "1.5"],
     lambda d: F.cross_entropy(_t((2, 5), d), [0, 1], label_smoothing=1.5)),
    ("cross_entropy weight shape", ValueError, ["weight", "(5,)", "(3,)"],
     lambda d: F.cross_entropy(_t((2, 5), d), [0, 1], weight=_t((3,), d))),
    ("cross_entropy float labels from a list", TypeError, ["target", "float64"],
     lambda d: F.cross_entropy(_t((2, 5), d), [0.0, 1.0])),
    ("clip_grad_norm_ max_norm", ValueError, ["max_norm", "nan"],
     lambda d: ninx.nn.utils.clip_grad_norm_([ninx.nn.Parameter(_t((2,), d))], float("nan"))),
    ("a hook that is not callable", TypeError, ["hook", "int"],
     lambda d: ninx.nn.Linear(2, 2).register_forward_hook(3)),
]


@pytest.mark.parametrize("what, error, words, call", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_call_raises_naming_arguments_and_shapes(device, what, error, words, call):
    with kernels_forbidden(device):
        assert_raises_naming(error, words, lambda: call(device))
