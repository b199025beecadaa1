"""Layers without parameters — activations, pooling, local response normalisation, dropout and stochastic depth,
flatten — as modules over `functional`."""
from . import functional as F
from .module import Module


class _Activation(Module):
    """An elementwise activation. `inplace=True` is accepted for PyTorch code and computed out of place: the
    values are the same, the input is left as it was."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_Activation):
    def forward(self, input):
        return F.relu(input)


class ReLU6(_Activation):
    def forward(self, input):
        return F.relu6(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class SiLU(_Activation):
    def forward(self, input):
        return F.silu(input)


class Hardsigmoid(_Activation):
    def forward(self, input):
        return F.hardsigmoid(input)


class Hardswish(_Activation):
    def forward(self, input):
        return F.hardswish(input)


class Hardtanh(_Activation):
    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__(inplace)
        if not min_val < max_val:
            raise ValueError(f"Hardtanh: min_val {min_val} must be less than max_val {max_val}")
        self.min_val, self.max_val = min_val, max_val

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class Identity(Module):
    """Returns its input; takes and ignores any arguments, as PyTorch's (a placeholder for a removed layer)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        if return_indices:
            raise NotImplementedError("MaxPool2d(return_indices=True): ninx keeps the indices inside the op only")
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size from any input size; (1, 1) is global average pooling."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output size from any input size."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        if return_indices:
            raise NotImplementedError("AdaptiveMaxPool2d(return_indices=True): ninx keeps the indices inside the op")
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class LocalResponseNorm(Module):
    """Normalise each channel by its n = `size` neighbours' energy: x / (k + α/n · Σ x²)^β (AlexNet, GoogLeNet)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class StochasticDepth(Module):
    """torchvision's drop-path: in training, drop the input per sample ("row") or per batch ("batch") with
    probability p, scaling survivors by 1/(1 − p); the identity in eval mode. EfficientNet's residual branches."""

    def __init__(self, p, mode):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"StochasticDepth: drop probability p must be in [0, 1], got {p}")
        if mode not in ("row", "batch"):
            raise ValueError(f"StochasticDepth: mode must be 'row' or 'batch', got {mode!r}")
        self.p, self.mode = p, mode

    def forward(self, input):
        return F.stochastic_depth(input, self.p, self.mode, self.training)

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"


class GlobalAvgPool2d(Module):
    """(N, C, H, W) → (N, C, 1, 1): each channel's mean — NiN's classifier in place of fully connected layers."""

    def forward(self, input):
        return F.global_avg_pool2d(input)


class Dropout(Module):
    """Zero each element with probability p in training mode (scaling the rest by 1/(1 − p)); identity in eval."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.inplace = inplace  # computed out of place, as the activations
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Merge dims start_dim..end_dim into one: (N, C, 1, 1) → (N, C) with the defaults."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
