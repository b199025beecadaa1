"""Depthwise convolution on the cuda device: depthwise.cu, one thread per output (forward) and per input pixel
(input gradient), one block per filter tap (weight gradient); indexed in int where the input, output and
weight are small enough (launch.index_type)."""
import numpy as np

from . import conv
from .launch import Source, index_type

SOURCE = Source("depthwise", indexed=("depthwise_conv2d", "depthwise_conv2d_backward_input",
                                      "depthwise_conv2d_backward_weight"))
THREADS = 128  # DEPTHWISE_THREADS in depthwise.cu: the weight gradient's block


def _args(g, out_channels):
    """channels, multiplier, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, as the kernels take them."""
    return tuple(np.int32(v) for v in (g.c, out_channels // g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw,
                                       g.dh, g.dw, g.oh, g.ow))


def depthwise_conv2d(device, x, weight, g, bias=None):
    """y (N, C·M, oh, ow) of x (N, C, H, W) and weight (C·M, 1, kh, kw), + bias[o] when given."""
    xp = device.xp
    y = xp.empty((g.n, weight.shape[0], g.oh, g.ow), dtype=x.dtype)
    index = index_type(x.size, weight.size, y.size)
    bias = xp.zeros(weight.shape[0], x.dtype) if bias is None else xp.ascontiguousarray(bias, dtype=x.dtype)
    SOURCE.each_element(device, "depthwise_conv2d", x.dtype, y.size,
                        (xp.ascontiguousarray(x), xp.ascontiguousarray(weight), bias, *_args(g, weight.shape[0]),
                         index(y.size), y), index)
    return y


def depthwise_conv2d_backward_input(device, gy, weight, g):
    """gx (N, C, H, W): each input pixel sums weight · gy over the taps that read it."""
    xp = device.xp
    gx = xp.empty(g.input_shape, dtype=gy.dtype)
    index = index_type(gx.size, weight.size, gy.size)
    SOURCE.each_element(device, "depthwise_conv2d_backward_input", gy.dtype, gx.size,
                        (xp.ascontiguousarray(gy), xp.ascontiguousarray(weight), *_args(g, weight.shape[0]),
                         index(gx.size), gx), index)
    return gx


def depthwise_conv2d_backward_weight(device, x, gy, g):
    """gw (C·M, 1, kh, kw): each tap sums gy · the input it read, over images and output positions."""
    xp = device.xp
    out_channels = gy.shape[1]
    gw = xp.empty((out_channels, 1, g.kh, g.kw), dtype=gy.dtype)
    if gw.size:
        SOURCE.kernel(device, "depthwise_conv2d_backward_weight", gy.dtype, index_type(x.size, gy.size))(
            (gw.size,), (THREADS,), (xp.ascontiguousarray(x), xp.ascontiguousarray(gy), np.int32(g.n),
                                     *_args(g, out_channels), gw))
    return gw


def depthwise_conv2d_backward_weight_bias(device, x, gy, g):
    """(gw, gb): the weight gradient, and conv2d's bias gradient (C·M,) = Σ gy over images and output positions."""
    return depthwise_conv2d_backward_weight(device, x, gy, g), conv.conv2d_backward_bias(device, gy)
