"""im2col and col2im on the cuda device: conv.cu, one thread per column entry and per input pixel."""
import numpy as np

from .launch import Source, window_args

SOURCE = Source("conv", ("im2col", "col2im"))


def im2col(device, x, g):
    """Column matrix (N, C·kh·kw, oh·ow) of the NCHW input `x` for window geometry `g`."""
    cols = device.xp.empty((g.n, g.c * g.kh * g.kw, g.oh * g.ow), dtype=x.dtype)
    SOURCE.each_element(device, "im2col", x.dtype, cols.size,
                        (device.xp.ascontiguousarray(x), *window_args(g), np.int64(cols.size), cols))
    return cols


def col2im(device, cols, g):
    """The adjoint of `im2col`: each input pixel sums the column entries taken from it, giving (N, C, H, W)."""
    x = device.xp.empty(g.input_shape, dtype=cols.dtype)
    SOURCE.each_element(device, "col2im", cols.dtype, x.size,
                        (device.xp.ascontiguousarray(cols), *window_args(g), np.int64(x.size), x))
    return x
