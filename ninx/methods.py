"""The Tensor's operators and the methods that run ops, installed on the class in one block at the end.

They live here, not in tensor.py, because the ops import `Tensor`: this module is imported once both exist.
Names, arguments and results follow PyTorch's Tensor methods.
"""
from collections import namedtuple

import numpy as np

from .nn import functional as F
from .ops.arithmetic import Abs, Add, Cast, Clip, Clone, Div, Exp, Log, Mul, Neg, Pow, Sqrt, Sub
from .ops.matmul import matmul
from .ops.reduction import Extreme, ExtremeAlong, Mean, Sum, normalize_dims
from .ops.shape import Index, Permute, Reshape, ToDevice
from .tensor import FLOAT_DTYPES, DimensionError, Tensor, as_shape, check_dim, get_backend, parse_to

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])  # torch.return_types.max / min


def _operand(self, other):
    """`other` as a Tensor on this backend: python/numpy numbers take this tensor's dtype."""
    if isinstance(other, Tensor):
        if other.dtype != self.dtype:
            raise TypeError(f"mismatched dtypes: {self.dtype} {self.shape} and {other.dtype} {other.shape}")
        return other
    return Tensor(self.backend.asarray(other, self.dtype), self.backend)


def _binary(op, reflected=False):
    if reflected:
        return lambda self, other: op.apply(_operand(self, other), self)
    return lambda self, other: op.apply(self, _operand(self, other))


def _power(self, exponent):
    if isinstance(exponent, Tensor):
        raise TypeError("power takes a python number as exponent")
    return Pow.apply(self, exponent=float(exponent))


def _compare(op):
    """A comparison: a bool tensor outside the graph (masks, accuracy)."""
    return lambda self, other: Tensor(op(self.data, other.data if isinstance(other, Tensor) else other), self.backend)


def _getitem(self, index):
    if self.ndim == 0 and not (index is Ellipsis or index is None or (isinstance(index, tuple) and not index)):
        raise DimensionError(f"invalid index {index!r} of a 0-d tensor")
    return Index.apply(self, index=index.data if isinstance(index, Tensor) else index)


def _setitem(self, index, value):
    self._modify("__setitem__")
    value = value.data if isinstance(value, Tensor) else value
    self.data[index.data if isinstance(index, Tensor) else index] = value


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(self.shape[0]))


# ---- reductions -----------------------------------------------------------------------------------
def _sum(self, dim=None, keepdim=False):
    return Sum.apply(self, dims=normalize_dims(dim, self.ndim, "sum"), keepdim=keepdim)


def _mean(self, dim=None, keepdim=False):
    if self.dtype not in FLOAT_DTYPES:
        raise TypeError(f"mean() needs a float tensor, got {self.dtype}: convert with .float() first")
    return Mean.apply(self, dims=normalize_dims(dim, self.ndim, "mean"), keepdim=keepdim)


def _extreme(largest):
    name = "max" if largest else "min"

    def method(self, dim=None, keepdim=False):
        """The largest (smallest) value, or with `dim` the (values, indices) along it, as torch.max/min."""
        if dim is None:
            if self.numel() == 0:
                raise ValueError(f"{name}() of an empty tensor of shape {self.shape}: give a dim")
            return Extreme.apply(self, dims=normalize_dims(None, self.ndim), keepdim=False, largest=largest)
        if isinstance(dim, Tensor):
            raise NotImplementedError(f"{name}(other): the elementwise form is not in ninx; use clamp")
        dim = check_dim(name, dim, self.ndim, self.shape)
        return ValuesIndices(*ExtremeAlong.apply(self, dim=dim, keepdim=keepdim, largest=largest))
    method.__name__ = name
    return method


def _extreme_over(largest):
    name = "amax" if largest else "amin"

    def method(self, dim=None, keepdim=False):
        """Like torch.amax/amin: over several dims; the gradient is shared evenly among tied extremes."""
        dims = normalize_dims(dim, self.ndim, name)
        if any(self.shape[d] == 0 for d in dims) or (not dims and self.numel() == 0):
            raise ValueError(f"{name}(): reducing an empty axis of shape {self.shape}")
        return Extreme.apply(self, dims=dims, keepdim=keepdim, largest=largest)
    method.__name__ = name
    return method


def _arg_extreme(largest):
    def method(self, dim=None, keepdim=False):
        xp = self.backend.xp
        pick = xp.argmax if largest else xp.argmin
        if self.numel() == 0:
            raise ValueError(f"{pick.__name__}() of an empty tensor of shape {self.shape}")
        if dim is None:
            index = pick(self.data.reshape(-1))
            return Tensor(xp.asarray(index).reshape((1,) * self.ndim if keepdim else ()), self.backend)
        dim = check_dim(pick.__name__, dim, self.ndim, self.shape)
        if self.ndim == 0:
            return Tensor(xp.zeros((), dtype=np.int64), self.backend)
        index = pick(self.data, axis=dim)
        return Tensor(xp.expand_dims(index, dim) if keepdim else xp.asarray(index), self.backend)
    return method


def _logical(reduce):
    def method(self, dim=None, keepdim=False):
        axes = normalize_dims(dim, self.ndim, reduce)
        return Tensor(self.backend.xp.asarray(getattr(self.data.astype(bool), reduce)(axis=axes, keepdims=keepdim)),
                      self.backend)
    return method


# ---- elementwise ----------------------------------------------------------------------------------
def _float_op(op, name):
    def method(self):
        if self.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name}() needs a float tensor, got {self.dtype}")
        return op.apply(self)
    method.__name__ = name
    return method


def _clamp(self, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both")
    for name, bound in (("min", min), ("max", max)):
        if isinstance(bound, Tensor):
            raise NotImplementedError(f"clamp: a tensor {name} is not in ninx; give a python number")
    return Clip.apply(self, low=min, high=max)


# ---- shapes -----------------------------------------------------------------------------------------
def _reshape(self, *shape):
    return Reshape.apply(self, shape=as_shape(shape))


def _flatten(self, start_dim=0, end_dim=-1):
    if self.ndim == 0:
        return self.reshape(1)
    start, end = check_dim("flatten", start_dim, self.ndim, self.shape), check_dim("flatten", end_dim, self.ndim, self.shape)
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
    middle = int(np.prod(self.shape[start:end + 1], dtype=np.int64))
    return self.reshape(self.shape[:start] + (middle,) + self.shape[end + 1:])


def _permute(self, *dims):
    dims = as_shape(dims)
    if len(dims) != self.ndim:
        raise ValueError(f"permute: dims {dims} must name each of the {self.ndim} axes of shape {self.shape}")
    axes = tuple(check_dim("permute", d, self.ndim, self.shape) for d in dims)
    if sorted(axes) != list(range(self.ndim)):
        raise ValueError(f"permute: dims {dims} is not a permutation of the axes of shape {self.shape}")
    return Permute.apply(self, dims=axes)


def _transpose(self, dim0, dim1):
    if self.ndim == 0:
        check_dim("transpose", dim0, 0), check_dim("transpose", dim1, 0)
        return self
    dims = list(range(self.ndim))
    a, b = check_dim("transpose", dim0, self.ndim, self.shape), check_dim("transpose", dim1, self.ndim, self.shape)
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(self, dims=tuple(dims))


def _t(self):
    if self.ndim > 2:
        raise ValueError(f"t() expects a tensor of at most 2 dimensions, got shape {self.shape}; use transpose")
    return self if self.ndim < 2 else self.transpose(0, 1)


def _squeeze(self, dim=None):
    if dim is None:
        dims = {i for i, n in enumerate(self.shape) if n == 1}
    else:
        dims = {check_dim("squeeze", d, self.ndim, self.shape) for d in ((dim,) if isinstance(dim, int) else dim)}
        dims = {d for d in dims if self.ndim and self.shape[d] == 1}  # PyTorch leaves other sizes alone
    return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in dims))


def _unsqueeze(self, dim):
    axis = check_dim("unsqueeze", dim, self.ndim + 1, self.shape)
    return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])


def _split(self, split_size_or_sections, dim=0):
    """Pieces of `split_size` along `dim` (the last one smaller), or pieces of the listed sizes."""
    dim = check_dim("split", dim, self.ndim, self.shape)
    if self.ndim == 0:
        raise ValueError("split: a 0-d tensor has no axis to split")
    size = self.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, size - start) for start in range(0, size, step)] or [0]
    else:
        sizes = [int(n) for n in split_size_or_sections]
        if sum(sizes) != size or any(n < 0 for n in sizes):
            raise ValueError(f"split: sizes {sizes} must be non-negative and sum to {size}, the size of dim {dim} "
                             f"of shape {self.shape}")
    bounds = np.cumsum([0] + sizes)
    lead = (slice(None),) * dim
    return tuple(self[lead + (slice(int(a), int(b)),)] for a, b in zip(bounds[:-1], bounds[1:]))


def _chunk(self, chunks, dim=0):
    if not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    size = self.shape[check_dim("chunk", dim, self.ndim, self.shape)]
    return self.split(max(-(-size // chunks), 1), dim)


# ---- copies, devices, dtypes --------------------------------------------------------------------
def _to(self, *args, device=None, dtype=None, copy=False):
    """A copy on another device and/or in another dtype; `self` when nothing changes (unless copy=True).

    As PyTorch: `to(device)`, `to(dtype)`, `to(device, dtype)`, `to(other_tensor)`, or keywords."""
    device, dtype = parse_to(args, device, dtype)
    result = self
    if device is not None and get_backend(device) is not self.backend:
        result = ToDevice.apply(result, backend=get_backend(device))
    if dtype is not None and dtype != result.dtype:
        result = Cast.apply(result, dtype=dtype)
    return Clone.apply(result) if copy and result is self else result


METHODS = {
    "__add__": _binary(Add), "__radd__": _binary(Add, reflected=True),
    "__sub__": _binary(Sub), "__rsub__": _binary(Sub, reflected=True),
    "__mul__": _binary(Mul), "__rmul__": _binary(Mul, reflected=True),
    "__truediv__": _binary(Div), "__rtruediv__": _binary(Div, reflected=True),
    "__matmul__": lambda self, other: matmul(self, _operand(self, other)),
    "__rmatmul__": lambda self, other: matmul(_operand(self, other), self),
    "__neg__": lambda self: Neg.apply(self), "__pow__": _power,
    "__eq__": _compare(lambda a, b: a == b), "__ne__": _compare(lambda a, b: a != b),
    "__lt__": _compare(lambda a, b: a < b), "__le__": _compare(lambda a, b: a <= b),
    "__gt__": _compare(lambda a, b: a > b), "__ge__": _compare(lambda a, b: a >= b),
    "__getitem__": _getitem, "__setitem__": _setitem, "__iter__": _iter,
    "sum": _sum, "mean": _mean, "max": _extreme(True), "min": _extreme(False),
    "amax": _extreme_over(True), "amin": _extreme_over(False),
    "argmax": _arg_extreme(True), "argmin": _arg_extreme(False), "any": _logical("any"), "all": _logical("all"),
    "exp": _float_op(Exp, "exp"), "log": _float_op(Log, "log"), "sqrt": _float_op(Sqrt, "sqrt"),
    "abs": lambda self: Abs.apply(self), "clamp": _clamp, "clip": _clamp,
    "sigmoid": lambda self: F.sigmoid(self), "relu": lambda self: F.relu(self),
    "softmax": lambda self, dim: F.softmax(self, dim), "log_softmax": lambda self, dim: F.log_softmax(self, dim),
    "reshape": _reshape, "view": _reshape, "flatten": _flatten, "permute": _permute, "transpose": _transpose,
    "t": _t, "T": property(lambda self: self.permute(tuple(reversed(range(self.ndim))))),
    "squeeze": _squeeze, "unsqueeze": _unsqueeze, "split": _split, "chunk": _chunk,
    "clone": lambda self: Clone.apply(self), "contiguous": lambda self: self,
    "to": _to, "long": lambda self: self.to(np.int64),
}

for _name, _method in METHODS.items():
    setattr(Tensor, _name, _method)
