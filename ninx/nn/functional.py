"""Stateless neural-network ops with PyTorch's names, argument order and semantics (layout NCHW).

Every function checks its arguments — ranks, channels, groups, window geometry, dtypes, devices — and
raises a ValueError/TypeError naming the argument and the shapes before any kernel runs.
"""
import numpy as np

from .. import random
from ..geometry import padding_only_window, pair, window2d
from ..ops.activation import Clamp, Dropout, Hardsigmoid, Hardswish, Hardtanh, Sigmoid, SiLU
from ..ops.adaptive_pool import AdaptiveAvgPool2d, AdaptiveMaxPool2d
from ..ops.batchnorm import BatchNorm
from ..ops.conv import Conv2d
from ..ops.depthwise import DepthwiseConv2d
from ..ops.loss import CrossEntropy, LogSoftmax, Softmax
from ..ops.lrn import LocalResponseNorm
from ..ops.pool import AvgPool2d, MaxPool2d
from ..tensor import FLOAT_DTYPES, Tensor, check_dim


def _check_tensor(op, name, value, ndim=None):
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim not in ((ndim,) if isinstance(ndim, int) else ndim):
        raise ValueError(f"{op}: {name} must have {ndim} dimensions, got shape {value.shape}")


def _check_float(op, name, value):
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {value.dtype} of shape {value.shape}")


def _check_same(op, named):
    """All named tensors share one dtype and one device."""
    (first_name, first), *rest = named
    for name, t in rest:
        if t.dtype != first.dtype:
            raise TypeError(f"{op}: {name} is {t.dtype} {t.shape} but {first_name} is {first.dtype} {first.shape}")
        if t.device != first.device:
            raise ValueError(f"{op}: {name} is on {t.device} but {first_name} is on {first.device}")


def _positive_int(op, name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) of input (N, C, H, W) with weight (oC, C/groups, kh, kw).

    groups == C > 1 (depthwise, oC a multiple of C) runs the direct depthwise kernels (ninx/ops/depthwise.py);
    every other case is lowered onto the GEMM core (ninx/ops/conv.py)."""
    geometry = _conv_geometry("conv2d", input, weight, bias, stride, padding, dilation, groups)
    if groups == input.shape[1] > 1:  # depthwise: each group is a few filters over one channel, computed directly
        return DepthwiseConv2d.apply(input, weight, bias, geometry=geometry)
    return Conv2d.apply(input, weight, bias, geometry=geometry, groups=groups)


def conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, cap=float("inf")):
    """relu(conv2d(…)) (cap = inf) or relu6 (cap = 6) as one op: bias and clamp in the GEMM's write-back.

    `nn.Sequential` runs a Conv2d followed by a ReLU/ReLU6 this way; the values and gradients are those of
    the two ops one after the other. A depthwise convolution runs its own kernels, then the clamp."""
    if cap not in (float("inf"), 6.0):
        raise ValueError(f"conv2d_relu: cap must be inf (ReLU) or 6 (ReLU6), got {cap}")
    geometry = _conv_geometry("conv2d_relu", input, weight, bias, stride, padding, dilation, groups)
    if groups == input.shape[1] > 1:
        y = DepthwiseConv2d.apply(input, weight, bias, geometry=geometry)
        return Clamp.apply(y, cap=float(cap))
    return Conv2d.apply(input, weight, bias, geometry=geometry, groups=groups, cap=float(cap))


def _conv_geometry(op, input, weight, bias, stride, padding, dilation, groups):
    """Check a convolution's arguments; its window geometry."""
    _check_tensor(op, "input", input, 4)
    _check_tensor(op, "weight", weight, 4)
    _check_float(op, "input", input)
    named = [("input", input), ("weight", weight)]
    if bias is not None:
        _check_tensor(op, "bias", bias, 1)
        named.append(("bias", bias))
    _check_same(op, named)
    _positive_int(op, "groups", groups)
    channels, out_channels = input.shape[1], weight.shape[0]
    if channels % groups or out_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide input channels {channels} (input {input.shape}) "
                         f"and output channels {out_channels} (weight {weight.shape})")
    if weight.shape[1] * groups != channels:
        raise ValueError(f"{op}: weight {weight.shape} expects {weight.shape[1] * groups} input channels with "
                         f"groups={groups}, but input {input.shape} has {channels}")
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},) for weight {weight.shape}, got {bias.shape}")
    if isinstance(padding, str):
        padding = _named_padding(op, padding, weight.shape[2:], stride, dilation)
    return window2d(op, input.shape, weight.shape[2:], stride, padding, dilation)


def _named_padding(op, padding, kernel, stride, dilation):
    """PyTorch's padding='valid' (none) and 'same' (output as large as the input: stride 1, symmetric)."""
    if padding == "valid":
        return 0
    if padding != "same":
        raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    if pair(stride, "stride") != (1, 1):
        raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride}")
    spans = [d * (k - 1) for k, d in zip(kernel, pair(dilation, "dilation"))]
    if any(span % 2 for span in spans):
        raise NotImplementedError(f"{op}: padding='same' with an even kernel extent {tuple(kernel)} needs "
                                  f"asymmetric padding, which ninx does not implement; pad explicitly")
    return tuple(span // 2 for span in spans)


def _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode):
    _check_tensor(op, "input", input, 4)
    _check_float(op, "input", input)
    stride = kernel_size if stride is None or stride == () or stride == [] else stride
    geometry = window2d(op, input.shape, kernel_size, stride, padding, dilation, ceil_mode)
    g = geometry
    # PyTorch: padding may be at most half the kernel (k // 2, whatever the dilation)
    if g.ph > g.kh // 2 or g.pw > g.kw // 2:
        raise ValueError(f"{op}: padding {(g.ph, g.pw)} must be at most half of the kernel {(g.kh, g.kw)} "
                         f"for input of shape {input.shape}")
    # a dilated window can still step over the whole input; it would have no maximum
    for axis, sizes in (("height", (g.h, g.kh, g.sh, g.ph, g.dh, g.oh)),
                        ("width", (g.w, g.kw, g.sw, g.pw, g.dw, g.ow))):
        empty = padding_only_window(*sizes)
        if empty is not None:
            raise ValueError(f"{op}: window {empty} along the {axis} covers only padding (kernel {(g.kh, g.kw)}, "
                             f"dilation {(g.dh, g.dw)}, padding {(g.ph, g.pw)}) for input of shape {input.shape}")
    if g.oh <= 0 or g.ow <= 0:
        raise ValueError(f"{op}: output would be empty ({g.oh}×{g.ow}) for input {input.shape}")
    return geometry


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Window maxima over (N, C, H, W); stride defaults to kernel_size; padding never wins a max."""
    geometry = _pool_geometry("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    return MaxPool2d.apply(input, geometry=geometry)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Window means over (N, C, H, W), with PyTorch's rules for padding and the divisor."""
    geometry = _pool_geometry("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        _positive_int("avg_pool2d", "divisor_override", divisor_override)
    return AvgPool2d.apply(input, geometry=geometry, count_include_pad=bool(count_include_pad),
                           divisor_override=divisor_override)


def global_avg_pool2d(input):
    """Mean of each channel over the whole plane: (N, C, H, W) → (N, C, 1, 1). NiN's classifier head."""
    _check_tensor("global_avg_pool2d", "input", input, 4)
    _check_float("global_avg_pool2d", "input", input)
    return input.mean(dim=(2, 3), keepdim=True)


def _adaptive_size(op, input, output_size):
    """(oh, ow) for an NCHW input: an int or a pair, None keeping the input's size along that axis."""
    _check_tensor(op, "input", input, 4)
    _check_float(op, "input", input)
    sizes = (output_size, output_size) if output_size is None or isinstance(output_size, int) else output_size
    if not isinstance(sizes, (tuple, list)) or len(sizes) != 2:
        raise TypeError(f"{op}: output_size must be an int, None or a pair of them, got {output_size!r}")
    sizes = tuple(input.shape[2 + axis] if s is None else s for axis, s in enumerate(sizes))
    for s in sizes:
        if not isinstance(s, int) or isinstance(s, bool) or s <= 0:
            raise ValueError(f"{op}: output_size must be positive, got {output_size!r} for input {input.shape}")
    if 0 in input.shape[2:]:
        raise ValueError(f"{op}: input {input.shape} has an empty plane")
    return sizes


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to output_size (oh, ow) for any input size, PyTorch's cells floor(i·H/oh) to
    ceil((i + 1)·H/oh) (see ninx/ops/adaptive_pool.py); (1, 1) is global average pooling."""
    oh, ow = _adaptive_size("adaptive_avg_pool2d", input, output_size)
    h, w = input.shape[2:]
    if (oh, ow) == (1, 1):
        return global_avg_pool2d(input)
    if h % oh == 0 and w % ow == 0:  # the cells are avg_pool2d's windows, kernel = stride = H/oh
        return avg_pool2d(input, (h // oh, w // ow))
    return AdaptiveAvgPool2d.apply(input, output_size=(oh, ow))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling to output_size (oh, ow) over PyTorch's adaptive cells; the gradient goes to each cell's first
    maximum."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d(return_indices=True): ninx keeps the indices inside the op")
    return AdaptiveMaxPool2d.apply(input, output_size=_adaptive_size("adaptive_max_pool2d", input, output_size))


def _activation(op, function, input, **params):
    """An elementwise activation: a float tensor in, `function` applied."""
    _check_tensor(op, "input", input)
    _check_float(op, "input", input)
    return function.apply(input, **params)


def relu(input, inplace=False):
    """max(x, 0). `inplace` is accepted and computed out of place."""
    return _activation("relu", Clamp, input, cap=float("inf"))


def relu6(input, inplace=False):
    """min(max(x, 0), 6)."""
    return _activation("relu6", Clamp, input, cap=6.0)


def dropout(input, p=0.5, training=True):
    """Zero each element with probability p while training and scale the rest by 1/(1 − p)."""
    _check_tensor("dropout", "input", input)
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    keep = random.generator().random(input.shape) >= p
    mask = input.backend.asarray(keep / (1 - p), input.dtype)
    return Dropout.apply(input, mask=mask)


def linear(input, weight, bias=None):
    """input (…, in) @ weightᵀ (in, out) + bias: a fully connected layer."""
    op = "linear"
    _check_tensor(op, "input", input)
    _check_tensor(op, "weight", weight, 2)
    named = [("input", input), ("weight", weight)] + ([("bias", bias)] if bias is not None else [])
    _check_same(op, named)
    if input.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"{op}: input {input.shape} has {input.shape[-1:]} features, weight {weight.shape} "
                         f"expects {weight.shape[1]}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"{op}: bias must have shape {weight.shape[:1]} for weight {weight.shape}, got {bias.shape}")
    y = input @ weight.T
    return y + bias if bias is not None else y


def _softmax_along(op, function, input, dim):
    """Softmax-like op along `dim`; a 0-d input is one value along its only axis, as in PyTorch."""
    _check_tensor(op, "input", input)
    _check_float(op, "input", input)
    axis = check_dim(op, dim, input.ndim, input.shape)
    if input.ndim == 0:
        return function.apply(input.reshape(1), dim=0).reshape(())
    return function.apply(input, dim=axis)


def log_softmax(input, dim):
    return _softmax_along("log_softmax", LogSoftmax, input, dim)


def softmax(input, dim):
    return _softmax_along("softmax", Softmax, input, dim)


def sigmoid(input):
    """The logistic function 1 / (1 + e^(−x)), stable at any magnitude (σ(±100) is 1 and 0)."""
    return _activation("sigmoid", Sigmoid, input)


def silu(input, inplace=False):
    """x·σ(x) (swish), stable at any magnitude. `inplace` is accepted and computed out of place."""
    return _activation("silu", SiLU, input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """min(max(x, min_val), max_val)."""
    if not min_val < max_val:
        raise ValueError(f"hardtanh: min_val {min_val} must be less than max_val {max_val}")
    return _activation("hardtanh", Hardtanh, input, low=float(min_val), high=float(max_val))


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6, the piecewise-linear sigmoid."""
    return _activation("hardsigmoid", Hardsigmoid, input)


def hardswish(input, inplace=False):
    """x·relu6(x + 3) / 6, the piecewise-polynomial swish."""
    return _activation("hardswish", Hardswish, input)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + α/n · Σ x² over a window of n = `size` channels)^β, PyTorch's window (see ninx/ops/lrn.py)."""
    op = "local_response_norm"
    _check_tensor(op, "input", input)
    _check_float(op, "input", input)
    if input.ndim < 3:
        raise ValueError(f"{op}: input must have 3 or more dimensions (N, C, …), got shape {input.shape}")
    _positive_int(op, "size", size)
    return LocalResponseNorm.apply(input, size=size, alpha=float(alpha), beta=float(beta), k=float(k))


def stochastic_depth(input, p, mode, training=True):
    """Drop whole residual branches (Huang et al. 2016), torchvision's `stochastic_depth`: while training, zero
    each sample's input ("row") or the whole batch's ("batch") with probability p, and scale what survives by
    1/(1 − p), so the expectation is unchanged; the identity in evaluation or for p = 0."""
    op = "stochastic_depth"
    _check_tensor(op, "input", input)
    if not 0 <= p <= 1:
        raise ValueError(f"{op}: drop probability p must be in [0, 1], got {p}")
    if mode not in ("row", "batch"):
        raise ValueError(f"{op}: mode must be 'row' or 'batch', got {mode!r}")
    if not training or p == 0:
        return input
    survival = 1 - p
    shape = ((input.shape[0],) if mode == "row" else (1,)) + (1,) * (input.ndim - 1)
    keep = random.generator().random(shape) < survival
    mask = input.backend.asarray(keep / survival if survival > 0 else keep, input.dtype)
    return Dropout.apply(input, mask=mask)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits (N, C) against class labels (N,) or class probabilities (N, C), with PyTorch's
    class `weight`, `ignore_index` and `label_smoothing`; computed with the stable log-sum-exp."""
    op = "cross_entropy"
    _check_tensor(op, "input", input, 2)
    _check_float(op, "input", input)
    n, classes = input.shape
    xp, dtype = input.backend.xp, input.dtype
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if weight is not None:
        _check_tensor(op, "weight", weight, 1)
        _check_same(op, [("input", input), ("weight", weight)])
        if weight.shape != (classes,):
            raise ValueError(f"{op}: weight must have shape ({classes},) for input {input.shape}, got {weight.shape}")
    w = xp.ones(classes, dtype=dtype) if weight is None else weight.data
    target_data = target.data if isinstance(target, Tensor) else np.asarray(target)
    kind = target_data.dtype.kind
    if kind == "f" and tuple(target_data.shape) == input.shape:  # class probabilities
        if isinstance(target, Tensor):
            _check_same(op, [("input", input), ("target", target)])
        probabilities = input.backend.asarray(target_data, dtype)
        q = (probabilities * (1 - label_smoothing) + label_smoothing / classes) * w
        return CrossEntropy.apply(input, target=q, denominator=n, reduction=reduction)
    if kind in "iu" and tuple(target_data.shape) != (n,):
        raise ValueError(f"{op}: target must be integer class labels of shape ({n},) for input {input.shape}, got "
                         f"{tuple(target_data.shape)}")
    if kind not in "iu":
        raise TypeError(f"{op}: target must be integer class labels of shape ({n},) or float class probabilities "
                        f"of shape {input.shape} for input {input.shape}, got {target_data.dtype} "
                        f"{tuple(target_data.shape)}")
    labels = input.backend.asarray(target_data, np.int64)
    kept = labels != ignore_index
    valid = labels[kept]
    if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= classes):
        raise ValueError(f"{op}: target labels must lie in [0, {classes}) (or equal ignore_index={ignore_index}) "
                         f"for input {input.shape}")
    safe = xp.where(kept, labels, 0)
    row_weight = w[safe] * kept                               # w_y, 0 for ignored rows
    q = xp.zeros(input.shape, dtype=dtype)
    q[xp.arange(n), safe] = (1 - label_smoothing) * row_weight
    if label_smoothing:
        q += (label_smoothing / classes) * w * kept.reshape(-1, 1)
    return CrossEntropy.apply(input, target=q, denominator=float(row_weight.sum()), reduction=reduction)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise each channel of input (N, C, H, W), then scale by weight[c] and shift by bias[c].

    training=True uses the batch's mean and biased variance and, when running stats are given, updates them in
    place (running_var with the unbiased variance, as PyTorch); training=False uses the running statistics.
    """
    op = "batch_norm"
    _check_tensor(op, "input", input, 4)
    _check_float(op, "input", input)
    named = [("input", input)]
    channels = input.shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                        ("bias", bias)):
        if value is not None:
            _check_tensor(op, name, value, 1)
            if value.shape != (channels,):
                raise ValueError(f"{op}: {name} must have shape ({channels},) for input {input.shape}, "
                                 f"got {value.shape}")
            named.append((name, value))
    _check_same(op, named)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError(f"{op}: evaluation (training=False) needs running_mean and running_var")
    if training and input.numel() // max(channels, 1) <= 1:
        raise ValueError(f"{op}: training needs more than one value per channel, got input {input.shape}")
    if not 0 <= momentum <= 1:
        raise ValueError(f"{op}: momentum must be in [0, 1], got {momentum}")
    if eps <= 0:
        raise ValueError(f"{op}: eps must be positive, got {eps}")
    return BatchNorm.apply(input, weight, bias, running_mean=None if running_mean is None else running_mean.data,
                           running_var=None if running_var is None else running_var.data, training=bool(training),
                           momentum=float(momentum), eps=float(eps))
