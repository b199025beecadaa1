"""Reductions over axes: sum, mean, max and min (PyTorch's `dim`/`keepdim`; `dim=[]` means every axis)."""
from ..autograd import Function
from ..tensor import check_dim


def normalize_dims(dim, ndim, op="reduction"):
    """`dim` (None, int or sequence, negatives allowed) as a sorted tuple of axes; None and [] mean all.

    A 0-d tensor accepts dim 0 and -1, as in PyTorch, and reduces over nothing."""
    if dim is None or (not isinstance(dim, int) and len(tuple(dim)) == 0):
        return tuple(range(ndim))
    dims = tuple(check_dim(op, d, ndim) for d in ((dim,) if isinstance(dim, int) else tuple(dim)))
    if len(set(dims)) != len(dims):
        raise ValueError(f"{op}: dim {dim} names an axis twice")
    return tuple(sorted(dims)) if ndim else ()


ROW_SUM_MOST = 4096  # the longest rows summed as a matrix-vector product (see `axis_sum`)


def axis_sum(x, dims, keepdims, xp):
    """x summed over `dims`. Where they are the trailing axes of a C-contiguous float x, a matrix-vector
    product with ones: numpy's reduction pays about 10 ns a row and does not vectorise short rows (global
    average pooling of 128×1280×7×7 float32 3.3 → 0.9 ms, of 128×10×2×2 19 → 2.3 µs). Rows of at most
    ROW_SUM_MOST elements only: a BLAS sum runs along each vector lane in order, where numpy sums pairwise,
    and its rounding grows with the row's length."""
    length = 1
    for d in dims:
        length *= x.shape[d]
    kept = x.ndim - len(dims)
    if (dims and dims == tuple(range(kept, x.ndim)) and 0 < length <= ROW_SUM_MOST and x.size
            and x.dtype.kind == "f" and x.dtype.itemsize >= 4 and x.flags.c_contiguous):
        rows = x.reshape(-1, length) @ xp.ones(length, x.dtype)
        return rows.reshape(x.shape[:kept] + ((1,) * len(dims) if keepdims else ()))
    return x.sum(axis=dims, keepdims=keepdims)


def expand_reduced(g, x_shape, dims):
    """Reinsert the reduced axes of `g` as size 1, so it broadcasts against the input."""
    shape = [1 if i in dims else n for i, n in enumerate(x_shape)]
    return g.reshape(shape)


class Sum(Function):
    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        self.x_shape = x.shape
        return axis_sum(x, self.dims, self.keepdim, self.backend.xp)

    def backward(self, gy):
        xp = self.backend.xp
        return xp.broadcast_to(expand_reduced(gy, self.x_shape, self.dims), self.x_shape).copy()


class Mean(Function):
    """The mean over axes; over none of the values (an empty axis) it is NaN, as in PyTorch."""

    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        self.x_shape = x.shape
        count = self.count()
        total = axis_sum(x, self.dims, self.keepdim, self.backend.xp)
        return total / x.dtype.type(count) if count else total + x.dtype.type("nan")

    def count(self):
        count = 1
        for d in self.dims:
            count *= self.x_shape[d]
        return count

    def backward(self, gy):
        xp = self.backend.xp
        g = expand_reduced(gy, self.x_shape, self.dims) / gy.dtype.type(max(self.count(), 1))
        return xp.broadcast_to(g, self.x_shape).copy()


class Extreme(Function):
    """Maximum (or minimum) over axes, like torch.amax/amin: the gradient is shared evenly among the elements
    equal to it."""

    def __init__(self, dims, keepdim, largest):
        self.dims, self.keepdim, self.largest = dims, keepdim, largest

    def name(self):
        return ("Amax" if self.largest else "Amin") + "Backward"

    def forward(self, x):
        self.x = x
        self.y = x.max(axis=self.dims, keepdims=True) if self.largest else x.min(axis=self.dims, keepdims=True)
        return self.y if self.keepdim else self.y.reshape([n for i, n in enumerate(x.shape) if i not in self.dims])

    def backward(self, gy):
        mask = self.x == self.y
        count = mask.sum(axis=self.dims, keepdims=True)
        return mask * (expand_reduced(gy, self.x.shape, self.dims) / count.astype(gy.dtype))


class ExtremeAlong(Function):
    """(values, indices) of the maximum (or minimum) along one axis, like torch.max(x, dim): the gradient goes
    to the element the index names (the first extreme, or the first NaN)."""

    def __init__(self, dim, keepdim, largest):
        self.dim, self.keepdim, self.largest = dim, keepdim, largest

    def name(self):
        return ("Max" if self.largest else "Min") + "Backward"

    def forward(self, x):
        xp = self.backend.xp
        self.x_shape = x.shape
        if x.ndim == 0:
            self.indices = xp.zeros((), dtype="int64")
            return x.copy(), self.indices
        if x.shape[self.dim] == 0:
            raise ValueError(f"{self.name()[:3].lower()}(dim={self.dim}): the axis is empty in shape {x.shape}")
        indices = (xp.argmax if self.largest else xp.argmin)(x, axis=self.dim)  # the first extreme, or first NaN
        self.indices = xp.expand_dims(indices, self.dim)
        values = xp.take_along_axis(x, self.indices, axis=self.dim)
        if not self.keepdim:
            return values.squeeze(self.dim), indices
        return values, self.indices

    def backward(self, gy, _):
        xp = self.backend.xp
        if len(self.x_shape) == 0:
            return gy
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        g = gy if self.keepdim else xp.expand_dims(gy, self.dim)
        # gx[i₀, …, indices[i₀, …, 0, …], …] = g[i₀, …, 0, …]: an open grid on every axis but `dim`
        grids = [xp.arange(n).reshape([-1 if i == j else 1 for j in range(gx.ndim)])
                 for i, n in enumerate(self.indices.shape)]
        grids[self.dim] = self.indices
        gx[tuple(grids)] = g
        return gx
