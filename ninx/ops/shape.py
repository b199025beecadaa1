"""Ops that move data without arithmetic: reshape, permute, indexing, concatenation, device copies."""
import numpy as np

from ..autograd import Function


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {tuple(x.shape)} to {self.shape}") from None

    def backward(self, gy):
        return gy.reshape(self.x_shape)


class Permute(Function):
    """Reorder axes (a view); the gradient applies the inverse permutation."""

    def __init__(self, dims):
        self.dims = dims

    def forward(self, x):
        if sorted(d % max(x.ndim, 1) for d in self.dims) != list(range(x.ndim)):
            raise ValueError(f"dims {self.dims} is not a permutation of the {x.ndim} axes of shape {x.shape}")
        self.dims = tuple(d % x.ndim for d in self.dims)
        return x.transpose(self.dims)

    def backward(self, gy):
        return gy.transpose(np.argsort(self.dims))


def is_basic(index):
    """Whether `index` uses basic indexing only (ints, slices, None, Ellipsis), which never repeats an element."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts) and \
        not any(isinstance(p, bool) for p in parts)


class Index(Function):
    """x[index] for basic and integer-array indices; the gradient scatters back (adding repeats)."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = self.backend.xp
        gx = xp.zeros(self.x_shape, dtype=self.x_dtype)
        if is_basic(self.index):  # slices, ints, None, ...: every element is picked at most once
            gx[self.index] = gy
        elif xp is np:
            np.add.at(gx, self.index, gy)
        else:
            import cupyx
            cupyx.scatter_add(gx, self.index, gy)
        return gx


class Cat(Function):
    """Concatenation along `dim`; the gradient is split at the same boundaries."""

    def __init__(self, dim):
        self.dim = dim

    def forward(self, *xs):
        self.sizes = [x.shape[self.dim] for x in xs]
        return self.backend.xp.concatenate(xs, axis=self.dim)

    def backward(self, gy):
        bounds = np.cumsum(self.sizes)[:-1]
        return tuple(self.backend.xp.split(gy, bounds, axis=self.dim))


class ToDevice(Function):
    """A copy onto another backend; the gradient travels back."""

    def __init__(self, backend):
        self.target = backend

    def forward(self, x):
        self.source, self.backend = self.backend, self.target  # the output lives on the target
        host = x if isinstance(x, np.ndarray) else x.get()
        return self.target.xp.array(host, dtype=x.dtype)  # a copy, even where both devices hold numpy arrays

    def backward(self, gy):
        host = gy if isinstance(gy, np.ndarray) else gy.get()
        return self.source.xp.array(host, dtype=gy.dtype)
