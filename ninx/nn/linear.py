"""`Linear`: a learnt fully connected layer y = x·Wᵀ + b with PyTorch's default initialisation."""
import math

import numpy as np

from ..tensor import get_default_dtype
from . import functional as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """Maps (…, in_features) to (…, out_features); weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.zeros((out_features, in_features), get_default_dtype()))
        self.bias = Parameter(np.zeros(out_features, get_default_dtype())) if bias else None
        self.reset_parameters()
        self.to(device=device, dtype=dtype)

    def reset_parameters(self):
        """PyTorch's default: weight kaiming_uniform(a=√5), i.e. U(±1/√in_features); bias the same bound."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
