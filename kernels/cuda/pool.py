"""Max and average pooling on the cuda device: pool.cu, one thread per output (forward) or input (backward),
indexed in int where the input and output are small enough (launch.index_type)."""
import numpy as np

from .launch import Source, index_type, window_args

SOURCE = Source("pool", indexed=("max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"))


def max_pool2d(device, x, g):
    """(y, argmax): the window maxima and, for each, its flat index iy·W + ix in the input plane."""
    y = device.xp.empty(g.output_shape, dtype=x.dtype)
    argmax = device.xp.empty(g.output_shape, dtype=np.int64)
    index = index_type(x.size, y.size)
    SOURCE.each_element(device, "max_pool2d", x.dtype, y.size,
                        (device.xp.ascontiguousarray(x), *window_args(g), index(y.size), y, argmax), index)
    return y, argmax


def max_pool2d_backward(device, gy, argmax, g):
    """Each input pixel sums the output gradients of the windows whose maximum it was."""
    xp = device.xp
    gx = xp.empty(g.input_shape, dtype=gy.dtype)
    index = index_type(gx.size, gy.size)
    SOURCE.each_element(device, "max_pool2d_backward", gy.dtype, gx.size,
                        (xp.ascontiguousarray(gy), xp.ascontiguousarray(argmax, dtype=np.int64), *window_args(g),
                         index(gx.size), gx), index)
    return gx


def _average_args(g, count_include_pad, divisor_override):
    """h, w, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override, oh, ow, as avg-pool kernels take them."""
    return tuple(np.int32(v) for v in (g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, bool(count_include_pad),
                                       divisor_override or 0, g.oh, g.ow))


def avg_pool2d(device, x, g, count_include_pad=True, divisor_override=0):
    y = device.xp.empty(g.output_shape, dtype=x.dtype)
    index = index_type(x.size, y.size)
    SOURCE.each_element(device, "avg_pool2d", x.dtype, y.size,
                        (device.xp.ascontiguousarray(x), *_average_args(g, count_include_pad, divisor_override),
                         index(y.size), y), index)
    return y


def avg_pool2d_backward(device, gy, g, count_include_pad=True, divisor_override=0):
    gx = device.xp.empty(g.input_shape, dtype=gy.dtype)
    index = index_type(gx.size, gy.size)
    SOURCE.each_element(device, "avg_pool2d_backward", gy.dtype, gx.size,
                        (device.xp.ascontiguousarray(gy), *_average_args(g, count_include_pad, divisor_override),
                         index(gx.size), gx), index)
    return gx
