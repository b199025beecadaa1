"""`Tensor`: an array on a backend, plus what autograd needs (requires_grad, grad, creator, generation, version).

The operators and the methods that run ops (`+`, `@`, `sum`, `reshape`, …) are installed on the class by
`ninx/methods.py`, once the ops are importable; this file holds what needs no op.
"""
import numpy as np

from . import autograd
from .backend import Backend, get_backend

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ALLOWED_DTYPES = FLOAT_DTYPES + (np.dtype(np.int64), np.dtype(np.bool_))
_DTYPE_NAMES = {dtype.name for dtype in _ALLOWED_DTYPES}


class DimensionError(IndexError, ValueError):
    """A dimension out of range: an IndexError as in PyTorch, and a ValueError as every bad argument in ninx."""


def check_dim(op, dim, ndim, shape=None):
    """`dim` (negatives allowed) as an axis of a tensor of `ndim` dimensions; a 0-d tensor accepts 0 and -1."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    size = max(ndim, 1)
    if not -size <= dim < size:
        of = f"shape {tuple(shape)}" if shape is not None else f"{ndim} dimensions"
        raise DimensionError(f"{op}: dim {dim} is out of range for a tensor of {of} "
                             f"(expected a dim in [{-size}, {size - 1}])")
    return int(dim) % size


_default_float = np.dtype(np.float32)


def set_default_dtype(dtype):
    """The floating dtype of tensors made from python numbers and lists, and of new layers' parameters."""
    global _default_float
    resolved = as_dtype(dtype)
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"set_default_dtype: the default must be float32 or float64, got {dtype!r}")
    _default_float = resolved


def get_default_dtype():
    return _default_float


def _inferred_dtype(data):
    """As torch.tensor: an array's (or numpy scalar's) own float32/float64 is kept; python numbers and lists
    take the default floating dtype; integers become int64 and booleans bool."""
    if hasattr(data, "dtype"):
        kind, own = np.dtype(data.dtype).kind, np.dtype(data.dtype)
        if own in FLOAT_DTYPES:
            return own
    else:
        kind = np.asarray(data).dtype.kind
    return {"i": np.int64, "u": np.int64, "b": np.bool_}.get(kind, _default_float)


def as_dtype(dtype):
    """`dtype` as a numpy dtype ninx computes in (float32, float64, int64, bool), or a TypeError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in _ALLOWED_DTYPES:
        raise TypeError(f"dtype must be one of float32, float64, int64, bool; got {dtype!r}")
    return resolved


def as_shape(args):
    """Shape given as separate ints `f(2, 3)` or as one sequence `f((2, 3))`, as a tuple."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def tensor(data, dtype=None, requires_grad=False, device="cpu"):
    """A new Tensor holding a copy of `data`. Without `dtype`, an array keeps its float32/float64 (as
    torch.tensor), python numbers and lists get the default float dtype (float32), integers int64."""
    if isinstance(data, Tensor):
        data = data.data
    backend = get_backend(device)
    dtype = as_dtype(dtype if dtype is not None else _inferred_dtype(data))
    array = backend.xp.array(_to_host_if_foreign(data, backend), dtype=dtype, copy=True)
    return Tensor(array, backend, requires_grad)


def from_numpy(array):
    """A cpu Tensor sharing `array`'s memory (as torch.from_numpy): changes to either show in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy array, got {type(array).__name__}")
    as_dtype(array.dtype)
    return Tensor(array, get_backend("cpu"))


def from_dlpack(source):
    """A Tensor sharing the memory of any DLPack producer (numpy ≥ 1.22, CuPy, PyTorch, JAX…), zero-copy:
    host memory becomes a cpu tensor, CUDA memory a cuda tensor (through CuPy)."""
    if isinstance(source, Tensor):
        return source.detach()
    device_type, _ = source.__dlpack_device__()
    if device_type == 1:  # kDLCPU
        return from_numpy(np.from_dlpack(source))
    if device_type == 2:  # kDLCUDA
        import cupy
        array = cupy.from_dlpack(source)
        as_dtype(array.dtype)
        return Tensor(array, get_backend("cuda"))
    raise ValueError(f"from_dlpack: DLPack device type {device_type} is neither the host (1) nor CUDA (2)")


def _to_host_if_foreign(data, backend):
    """Arrays of another backend (cupy on a cpu tensor, say) are brought over through the host."""
    if backend.name == "cpu" and hasattr(data, "get") and not isinstance(data, np.ndarray):
        return data.get()
    return data


def is_device(target):
    """Whether `target` is a device ('cpu', 'cuda:0', a Backend) rather than a dtype (np.float64, 'float64')."""
    return isinstance(target, Backend) or (isinstance(target, str) and target not in _DTYPE_NAMES)


def parse_to(args, device=None, dtype=None):
    """(device, dtype) from PyTorch's forms of `to`: (device), (dtype), (device, dtype), (tensor), keywords."""
    if len(args) > 2:
        raise TypeError(f"to() takes at most a device and a dtype, got {len(args)} arguments")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif is_device(arg):
            device = arg
        else:
            dtype = arg
    if device is not None:
        get_backend(device)  # a ValueError naming the device, before anything moves
    return device, (None if dtype is None else as_dtype(dtype))


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
        self._version = 0
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

    @property
    def grad_fn(self):
        """The graph node that made this tensor (None for a leaf), as PyTorch's `grad_fn`."""
        return self.creator

    def dim(self):
        return self.data.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[check_dim("size", dim, self.ndim, self.shape)]

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def requires_grad_(self, flag=True):
        if flag and self.dtype not in FLOAT_DTYPES:
            raise TypeError(f"only float32/float64 tensors can require grad, this one is {self.dtype}")
        if not flag and not self.is_leaf:
            raise RuntimeError("requires_grad_(False) on a tensor made by an op: use detach()")
        self.requires_grad = bool(flag)
        return self

    # ---- python values ------------------------------------------------------------------------------
    def _one_value(self, what):
        if self.numel() != 1:
            raise RuntimeError(f"{what} of a tensor with {self.numel()} values (shape {self.shape}) is ambiguous; "
                               f"use .any() or .all(), or pick one element")
        return self.numpy().reshape(()).item()

    def __bool__(self):
        return bool(self._one_value("the truth value"))

    def __float__(self):
        return float(self._one_value("float()"))

    def __int__(self):
        return int(self._one_value("int()"))

    def __index__(self):
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of one element can be used as an index, got {self.dtype}")
        return int(self._one_value("an index"))

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
        """The same data, cut from the graph (it shares the version counter's meaning: same memory)."""
        return Tensor(self.data, self.backend)

    def __dlpack__(self, stream=None, **kwargs):
        """The DLPack capsule of this tensor's memory (zero-copy), for numpy.from_dlpack, cupy, torch, jax…"""
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("__dlpack__ of a tensor that requires grad: call detach() first, as in PyTorch")
        return self.data.__dlpack__(**({"stream": stream} if stream is not None else {}), **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        """numpy.asarray(tensor): the cpu data (a copy from the GPU)."""
        array = self.numpy()
        return array if dtype is None else array.astype(dtype, copy=False)

    # ---- in-place changes -----------------------------------------------------------------------------
    def _modify(self, op):
        """Bump the version before an in-place change; refuse where the graph would need to see it."""
        if autograd.is_grad_enabled() and self.requires_grad:
            raise RuntimeError(f"{op}: in-place change of a tensor of shape {self.shape} that requires grad; "
                               f"do it under ninx.no_grad() (a leaf) or out of place (a result of an op)")
        self._version += 1

    def copy_(self, src):
        """Copy `src` (a Tensor, array or number) into this tensor, broadcasting; casts to this dtype."""
        self._modify("copy_")
        value = src.data if isinstance(src, Tensor) else src
        self.data[...] = self.backend.asarray(_to_host_if_foreign(value, self.backend), self.dtype)
        return self

    def fill_(self, value):
        return self.copy_(value)

    def zero_(self):
        return self.copy_(0)

    def bump_version(self):
        """Record a change of `data` made in place by ninx itself (an optimizer step, `load_state_dict`)."""
        self._version += 1

    # ---- autograd ---------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate gradients of this tensor into the `.grad` of every leaf it depends on.

        The graph is freed on the way unless retain_graph=True; a second backward through it then raises."""
        if create_graph:
            raise NotImplementedError("backward(create_graph=True): ninx does not differentiate backward passes")
        if inputs is not None:
            raise NotImplementedError("backward(inputs=...): ninx accumulates into every leaf")
        if not self.requires_grad:
            raise RuntimeError(f"backward() on a tensor of shape {self.shape} that does not require grad "
                               f"(no input of the ops that made it requires grad, or it was made under no_grad)")
        if gradient is None:
            if self.numel() != 1:
                raise ValueError(f"backward() without a gradient needs a one-element tensor, got shape "
                                 f"{self.shape}")
            gradient = self.backend.xp.ones_like(self.data)
        else:
            gradient = gradient.data if isinstance(gradient, Tensor) else self.backend.asarray(gradient, self.dtype)
            if tuple(gradient.shape) != self.shape:
                raise ValueError(f"gradient has shape {tuple(gradient.shape)}, tensor has shape {self.shape}")
        autograd.backward(self, gradient, retain_graph=bool(retain_graph))

    def _accumulate(self, g, owned=False):
        """Add g to .grad; a first g is copied unless `owned` (nothing else refers to it, `autograd._owned`):
        backward may hand the same array to several leaves, or a view of the caller's gradient."""
        asarray = self.backend.xp.asarray  # numpy arithmetic on 0-d arrays gives scalars; a grad stays an array
        if self.grad is None:
            self.grad = Tensor(asarray(g) if owned else asarray(g).copy(), self.backend)
        else:
            self.grad.data = asarray(self.grad.data + g)

    def zero_grad_(self):
        self.grad = None

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = [f"dtype={self.dtype}"] if self.dtype != np.float32 else []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.creator is not None:
            extras.append(f"grad_fn={self.creator!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    __hash__ = object.__hash__
