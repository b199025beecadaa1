"""Reductions over axes: sum, mean and max (PyTorch's `dim`/`keepdim`)."""
from ..autograd import Function


def normalize_dims(dim, ndim):
    """`dim` (None, int or sequence, negatives allowed) as a sorted tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise ValueError(f"dim {d} is out of range for a tensor of {ndim} dimensions")
    return tuple(sorted(d % max(ndim, 1) for d in dims))


def expand_reduced(g, x_shape, dims):
    """Reinsert the reduced axes of `g` as size 1, so it broadcasts against the input."""
    shape = [1 if i in dims else n for i, n in enumerate(x_shape)]
    return g.reshape(shape)


class Sum(Function):
    def __init__(self, dim, keepdim):
        self.dim, self.keepdim = dim, keepdim

    def forward(self, x):
        self.dims, self.x_shape = normalize_dims(self.dim, x.ndim), x.shape
        return x.sum(axis=self.dims, keepdims=self.keepdim)

    def backward(self, gy):
        xp = self.backend.xp
        return xp.broadcast_to(expand_reduced(gy, self.x_shape, self.dims), self.x_shape).copy()


class Mean(Function):
    def __init__(self, dim, keepdim):
        self.dim, self.keepdim = dim, keepdim

    def forward(self, x):
        self.dims, self.x_shape = normalize_dims(self.dim, x.ndim), x.shape
        return x.mean(axis=self.dims, keepdims=self.keepdim)

    def backward(self, gy):
        xp = self.backend.xp
        count = 1
        for d in self.dims:
            count *= self.x_shape[d]
        g = expand_reduced(gy, self.x_shape, self.dims) / gy.dtype.type(count)
        return xp.broadcast_to(g, self.x_shape).copy()


class Max(Function):
    """Maximum over axes; the gradient is shared evenly among the elements equal to the maximum."""

    def __init__(self, dim, keepdim):
        self.dim, self.keepdim = dim, keepdim

    def forward(self, x):
        self.dims, self.x = normalize_dims(self.dim, x.ndim), x
        self.y = x.max(axis=self.dims, keepdims=True)
        return self.y if self.keepdim else self.y.reshape([n for i, n in enumerate(x.shape) if i not in self.dims])

    def backward(self, gy):
        mask = self.x == self.y
        count = mask.sum(axis=self.dims, keepdims=True)
        return mask * (expand_reduced(gy, self.x.shape, self.dims) / count.astype(gy.dtype))
