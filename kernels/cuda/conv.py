"""The convolution on the cuda device: conv.cu's implicit GEMM on the GEMM core's mainloop, no column matrix.

A 1×1 stride-1 unpadded convolution of one group is a plain batched GEMM — W (oC, C) @ x[n] viewed as
(C, H·W), every image against the same W — and goes to gemm.cu's kernel with its strided (16-byte) loads.
Every other one goes to conv.cu, whose loaders gather the windows from x (forward), the taps from dy (input
gradient) and both (weight gradient) on the fly. Memory beyond the tensors themselves: the weight transposed
per group for the input gradient, and the split weight gradient's partial sums.
"""
import numpy as np

from . import tiling
from .gemm import epilogue_args, gemm, slices_for, sum_slices
from .launch import Source

SOURCE = Source("conv", (), tiled=("conv_forward", "conv_input_grad", "conv_weight_grad"))


def _sizes(g, filters, groups):
    """The sizes conv.cu's kernels take, after checking that its 32-bit indices hold them."""
    extents = {"C·H·W": g.c * g.h * g.w, "oC·oh·ow": filters * g.oh * g.ow, "N·H·W": g.n * g.h * g.w,
               "N·oh·ow": g.n * g.oh * g.ow, "oC·C·kh·kw": filters * g.c * g.kh * g.kw}
    too_large = {name: extent for name, extent in extents.items() if extent > tiling.INDEX_LIMIT}
    if too_large:
        raise ValueError(f"conv2d on cuda: input {g.input_shape}, {filters} filters, {groups} groups: "
                         f"{too_large} exceed the kernels' 32-bit indices")
    return tuple(np.int32(v) for v in (g.n, g.c, filters, groups, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw,
                                       g.dh, g.dw, g.oh, g.ow))


def _launch(device, name, dtype, m, n, depth, count, args):
    """The tiled kernel `name` over `count` m×n products of depth `depth`, with the tile the table gives them."""
    tile = tiling.choose(device, m, n, count)
    SOURCE.kernel(device, name, dtype, tile)(tile.grid(m, n, count, "conv2d", depth), (tile.threads,), args)


def conv2d(device, x, weight, g, groups, bias=None, relu_cap=None):
    """y (N, oC, oh, ow) = conv(x, weight) (+ bias[o]), then ReLU (relu_cap=inf) or ReLU6 (6) when given: the
    epilogue of the one kernel."""
    xp, filters = device.xp, weight.shape[0]
    x, weight = xp.ascontiguousarray(x), xp.ascontiguousarray(weight)
    bias = None if bias is None else xp.ascontiguousarray(bias, dtype=x.dtype)
    y = xp.empty((g.n, filters, g.oh, g.ow), dtype=x.dtype)
    if y.size == 0:
        return y
    if g.pointwise and groups == 1:
        gemm(device, weight.reshape(1, filters, g.c), x.reshape(g.n, g.c, g.h * g.w),
             y.reshape(g.n, filters, g.oh * g.ow), bias=bias, relu_cap=relu_cap)
        return y
    _, bias_arg, low, high = epilogue_args(x.dtype, None, bias, relu_cap)
    _launch(device, "conv_forward", x.dtype, filters // groups, g.n * g.oh * g.ow, g.c // groups * g.kh * g.kw,
            groups, (x, weight, bias_arg, low, high, *_sizes(g, filters, groups), y))
    return y


def conv2d_backward_input(device, gy, weight, g, groups):
    """The input gradient (N, C, H, W): each input pixel gathers the taps of dy it fed."""
    xp, filters = device.xp, weight.shape[0]
    gy = xp.ascontiguousarray(gy)
    gx = xp.empty(g.input_shape, dtype=gy.dtype)
    if gx.size == 0:
        return gx
    if g.pointwise and groups == 1:  # dx[n] = Wᵀ @ dy[n]
        gemm(device, weight.reshape(1, filters, g.c).transpose(0, 2, 1), gy.reshape(g.n, filters, g.h * g.w),
             gx.reshape(g.n, g.c, g.h * g.w))
        return gx
    kg, cg = filters // groups, g.c // groups
    # weight_t[group, c, (k, r, s)] = weight[group·Kg + k, c, r, s]: A of the input gradient, row-major
    weight_t = xp.ascontiguousarray(weight.reshape(groups, kg, cg, g.kh * g.kw).transpose(0, 2, 1, 3))
    _launch(device, "conv_input_grad", gy.dtype, cg, g.n * g.h * g.w, kg * g.kh * g.kw, groups,
            (gy, weight_t, *_sizes(g, filters, groups), gx))
    return gx


def conv2d_backward_bias(device, gy):
    """The bias gradient (oC,): Σ gy over N, oh, ow (CuPy's reduction)."""
    return gy.sum(axis=(0, 2, 3))


def conv2d_backward_weight(device, x, gy, g, groups):
    """The weight gradient (oC, C/G, kh, kw), summed over the batch: the reduction over (n, oh, ow) is split
    into slices when the output tiles alone would leave the GPU idle, and the slices summed in order."""
    xp, filters = device.xp, gy.shape[1]
    x, gy = xp.ascontiguousarray(x), xp.ascontiguousarray(gy)
    kg, columns = filters // groups, g.c // groups * g.kh * g.kw
    gw = xp.empty((groups, kg, columns), dtype=gy.dtype)
    if gw.size == 0 or g.n == 0:
        gw[...] = 0
        return gw.reshape(filters, g.c // groups, g.kh, g.kw)
    if g.pointwise and groups == 1:  # dW = Σₙ dy[n] @ x[n]ᵀ, the GEMM's batch-reduce
        gemm(device, gy.reshape(g.n, filters, g.oh * g.ow), x.reshape(g.n, g.c, g.h * g.w).transpose(0, 2, 1), gw)
        return gw.reshape(filters, g.c, 1, 1)
    depth, tile = g.n * g.oh * g.ow, tiling.choose(device, kg, columns, groups)
    steps = -(-depth // tile.depth)
    slices = min(slices_for(device, tile.blocks(kg, columns) * groups, steps), max(1, tiling.MAX_GRID_YZ // groups))
    chunk = -(-steps // slices) * tile.depth  # (n, p, q) per slice, whole steps
    slices = -(-depth // chunk)
    partial = gw if slices == 1 else xp.empty((slices * groups, kg, columns), dtype=gy.dtype)
    SOURCE.kernel(device, "conv_weight_grad", gy.dtype, tile)(
        tile.grid(kg, columns, slices * groups, "conv2d", depth), (tile.threads,),
        (x, gy, np.int32(slices), np.int32(chunk), *_sizes(g, filters, groups), partial))
    if slices > 1:
        sum_slices(device, partial, slices, gw)
    return gw.reshape(filters, g.c // groups, g.kh, g.kw)
