"""Adaptive average and max pooling to any output size, with PyTorch's cells.

Along an axis of size H pooled to oh, output cell i covers input rows [start_i, end_i) with

    start_i = floor(i·H / oh),   end_i = ceil((i + 1)·H / oh)

so the cells tile the axis, overlapping by a row where oh does not divide H (GoogLeNet's auxiliary heads pool
14×14 to 4×4: rows 0–3, 3–7, 7–10, 10–13). The average over a rectangle of cells is separable: with the
averaging matrices A_h (oh × H), A_h[i, r] = 1/(end_i − start_i) on the cell's rows and 0 elsewhere,

    y[n, c] = A_h · x[n, c] · A_wᵀ,        gx[n, c] = A_hᵀ · gy[n, c] · A_w

The max keeps each cell's first maximum (row-major; NaN wins) as a flat index iy·W + ix into its input
plane, and the gradient goes there. Both are a few array-module (`xp`) calls per output cell or in all.
"""
from ..autograd import Function


def cells(size, out):
    """[(start, end)] of the `out` adaptive cells along an axis of `size`."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def averaging_matrix(xp, size, out, dtype):
    """A (out × size): row i averages the input positions of cell i."""
    a = xp.zeros((out, size), dtype=dtype)
    for i, (start, end) in enumerate(cells(size, out)):
        a[i, start:end] = 1 / (end - start)
    return a


class AdaptiveAvgPool2d(Function):
    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        xp, (oh, ow), (h, w) = self.backend.xp, self.output_size, x.shape[2:]
        self.rows, self.columns = averaging_matrix(xp, h, oh, x.dtype), averaging_matrix(xp, w, ow, x.dtype)
        return xp.matmul(xp.matmul(self.rows, x), self.columns.T)

    def backward(self, gy):
        xp = self.backend.xp
        return xp.matmul(xp.matmul(self.rows.T, gy), self.columns)


class AdaptiveMaxPool2d(Function):
    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        xp, (oh, ow) = self.backend.xp, self.output_size
        n, c, h, w = self.shape = x.shape
        y = xp.empty((n, c, oh, ow), dtype=x.dtype)
        self.argmax = xp.empty((n, c, oh, ow), dtype=xp.int64)
        for i, (y0, y1) in enumerate(cells(h, oh)):
            for j, (x0, x1) in enumerate(cells(w, ow)):
                cell = x[:, :, y0:y1, x0:x1].reshape(n, c, (y1 - y0) * (x1 - x0))
                nan = xp.isnan(cell)
                # argmax takes the first maximum; a NaN, where there is one, takes over (the first NaN)
                where = xp.where(nan.any(axis=2), nan.argmax(axis=2), cell.argmax(axis=2))
                y[:, :, i, j] = xp.take_along_axis(cell, where[:, :, None], axis=2)[:, :, 0]
                self.argmax[:, :, i, j] = (y0 + where // (x1 - x0)) * w + x0 + where % (x1 - x0)
        return y

    def backward(self, gy):
        xp, (n, c, h, w), (oh, ow) = self.backend.xp, self.shape, self.output_size
        gx = xp.zeros((n * c, h * w), dtype=gy.dtype)
        planes = xp.arange(n * c)
        argmax, gy = self.argmax.reshape(n * c, oh * ow), gy.reshape(n * c, oh * ow)
        for k in range(oh * ow):  # one cell at a time: within a cell each plane appears once
            gx[planes, argmax[:, k]] += gy[:, k]
        return gx.reshape(n, c, h, w)
