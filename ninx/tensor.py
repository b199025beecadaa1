"""`Tensor`: an array on a backend, plus what autograd needs (requires_grad, grad, creator, generation)."""
import numpy as np

from . import autograd
from .backend import Backend, get_backend

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ALLOWED_DTYPES = FLOAT_DTYPES + (np.dtype(np.int64), np.dtype(np.bool_))
_DTYPE_NAMES = {dtype.name for dtype in _ALLOWED_DTYPES}


def _default_dtype(data):
    """float32 for floating (and python-number) data, int64 for integers, bool for booleans."""
    kind = np.asarray(data).dtype.kind if not hasattr(data, "dtype") else np.dtype(data.dtype).kind
    return {"i": np.int64, "u": np.int64, "b": np.bool_}.get(kind, np.float32)


def as_shape(args):
    """Shape given as separate ints `f(2, 3)` or as one sequence `f((2, 3))`, as a tuple."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def tensor(data, dtype=None, requires_grad=False, device="cpu"):
    """A new Tensor holding a copy of `data`; float32 unless `dtype` says otherwise (ints stay int64)."""
    if isinstance(data, Tensor):
        data = data.data
    backend = get_backend(device)
    dtype = np.dtype(dtype if dtype is not None else _default_dtype(data))
    if dtype not in _ALLOWED_DTYPES:
        raise TypeError(f"dtype must be one of float32, float64, int64, bool; got {dtype}")
    array = backend.xp.array(_to_host_if_foreign(data, backend), dtype=dtype, copy=True)
    return Tensor(array, backend, requires_grad)


def _to_host_if_foreign(data, backend):
    """Arrays of another backend (cupy on a cpu tensor, say) are brought over through the host."""
    if backend.name == "cpu" and hasattr(data, "get") and not isinstance(data, np.ndarray):
        return data.get()
    return data


def is_device(target):
    """Whether `target` is a device ('cpu', 'cuda:0', a Backend) rather than a dtype (np.float64, 'float64')."""
    return isinstance(target, Backend) or (isinstance(target, str) and target not in _DTYPE_NAMES)


def common_backend(tensors):
    """The one backend shared by `tensors`; mixing devices is an error, as in PyTorch."""
    backends = {t.backend for t in tensors}
    if len(backends) > 1:
        raise ValueError("tensors are on different devices: "
                         + ", ".join(f"{tuple(t.shape)} on {t.device}" for t in tensors))
    return backends.pop() if backends else get_backend("cpu")


class Movable:
    """PyTorch's shorthands for `to(...)`, shared by tensors and modules."""

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)


class Tensor(Movable):
    """A multi-dimensional array that records the ops applied to it when `requires_grad` is set."""

    __array_priority__ = 1000  # numpy scalars and arrays defer to Tensor's operators

    def __init__(self, data, backend, requires_grad=False):
        self.data = data
        self.backend = backend
        self.grad = None
        self.creator = None
        self.generation = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---- properties -------------------------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def device(self):
        return self.backend.name

    @property
    def is_leaf(self):
        return self.creator is None

    def dim(self):
        return self.data.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return self.shape[0]

    def requires_grad_(self, flag=True):
        if flag and self.dtype not in FLOAT_DTYPES:
            raise TypeError(f"only float32/float64 tensors can require grad, this one is {self.dtype}")
        self.requires_grad = flag
        return self

    # ---- leaving the graph and the device ---------------------------------------------------------
    def numpy(self):
        """The data as a numpy array (a view on the cpu; a host copy from the GPU)."""
        return self.data if isinstance(self.data, np.ndarray) else self.data.get()

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data, self.backend)

    def to(self, target):
        """A copy on another device ('cpu', 'cuda') or in another dtype; `self` when nothing changes."""
        if is_device(target):
            backend = get_backend(target)
            if backend is self.backend:
                return self
            from .ops.shape import ToDevice
            return ToDevice.apply(self, backend=backend)
        dtype = np.dtype(target)
        if dtype == self.dtype:
            return self
        from .ops.arithmetic import Cast
        return Cast.apply(self, dtype=dtype)


    # ---- autograd ---------------------------------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate gradients of this tensor into the `.grad` of every leaf it depends on."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.numel() != 1:
                raise ValueError(f"backward() without grad needs a one-element tensor, got shape {self.shape}")
            grad = self.backend.xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else self.backend.asarray(grad, self.dtype)
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"grad has shape {tuple(grad.shape)}, tensor has shape {self.shape}")
        autograd.backward(self, grad)

    def _accumulate(self, g):
        asarray = self.backend.xp.asarray  # numpy arithmetic on 0-d arrays gives scalars; a grad stays an array
        if self.grad is None:  # a copy: backward may hand the same array to several leaves
            self.grad = Tensor(asarray(g).copy(), self.backend)
        else:
            self.grad.data = asarray(self.grad.data + g)

    def zero_grad_(self):
        self.grad = None

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = [f"dtype={self.dtype}"] if self.dtype != np.float32 else []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # ---- operators ----------------------------------------------------------------------------------
    def _operand(self, other):
        """`other` as a Tensor on this backend: python/numpy numbers take this tensor's dtype."""
        if isinstance(other, Tensor):
            if other.dtype != self.dtype:
                raise TypeError(f"mismatched dtypes: {self.dtype} {self.shape} and {other.dtype} {other.shape}")
            return other
        return Tensor(self.backend.asarray(other, self.dtype), self.backend)

    def __add__(self, other):
        from .ops.arithmetic import Add
        return Add.apply(self, self._operand(other))

    def __radd__(self, other):
        return self._operand(other) + self

    def __sub__(self, other):
        from .ops.arithmetic import Sub
        return Sub.apply(self, self._operand(other))

    def __rsub__(self, other):
        return self._operand(other) - self

    def __mul__(self, other):
        from .ops.arithmetic import Mul
        return Mul.apply(self, self._operand(other))

    def __rmul__(self, other):
        return self._operand(other) * self

    def __truediv__(self, other):
        from .ops.arithmetic import Div
        return Div.apply(self, self._operand(other))

    def __rtruediv__(self, other):
        return self._operand(other) / self

    def __neg__(self):
        from .ops.arithmetic import Neg
        return Neg.apply(self)

    def __pow__(self, exponent):
        from .ops.arithmetic import Pow
        if isinstance(exponent, Tensor):
            raise TypeError("power takes a python number as exponent")
        return Pow.apply(self, exponent=float(exponent))

    def __matmul__(self, other):
        from .ops.matmul import matmul
        return matmul(self, self._operand(other))

    def __rmatmul__(self, other):
        from .ops.matmul import matmul
        return matmul(self._operand(other), self)

    def __getitem__(self, index):
        from .ops.shape import Index
        return Index.apply(self, index=index.data if isinstance(index, Tensor) else index)

    # comparisons give bool tensors outside the graph (masks, accuracy)
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other), self.backend)

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    __hash__ = object.__hash__

    # ---- methods --------------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False):
        from .ops.reduction import Sum
        return Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False):
        from .ops.reduction import Mean
        return Mean.apply(self, dim=dim, keepdim=keepdim)

    def max(self, dim=None, keepdim=False):
        """Largest value over `dim` (like torch.amax: the gradient is shared evenly among tied maxima)."""
        from .ops.reduction import Max
        return Max.apply(self, dim=dim, keepdim=keepdim)

    def argmax(self, dim=None):
        return Tensor(self.backend.xp.argmax(self.data, axis=dim), self.backend)

    def exp(self):
        from .ops.arithmetic import Exp
        return Exp.apply(self)

    def log(self):
        from .ops.arithmetic import Log
        return Log.apply(self)

    def relu(self):
        from .nn.functional import relu
        return relu(self)

    def reshape(self, *shape):
        from .ops.shape import Reshape
        return Reshape.apply(self, shape=as_shape(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        start, end = start_dim % max(self.ndim, 1), end_dim % max(self.ndim, 1)
        if self.ndim == 0:
            return self.reshape(1)
        middle = int(np.prod(self.shape[start:end + 1], dtype=np.int64))
        return self.reshape(self.shape[:start] + (middle,) + self.shape[end + 1:])

    def permute(self, *dims):
        from .ops.shape import Permute
        return Permute.apply(self, dims=as_shape(dims))

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(dims)

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))

    def contiguous(self):
        return self
