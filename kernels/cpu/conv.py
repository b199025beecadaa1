"""The convolution on the CPU: lowered onto the GEMM core through im2col, a chunk of images at a time.

For x (N, C, H, W), weight (oC, C/G, kh, kw) in G groups and output (N, oC, oh, ow), with L = oh·ow and
K = (C/G)·kh·kw, group g of image n is batch entry i = n·G + g of one batched GEMM:

    forward   Y[i]  = W[g] (oC/G × K) @ cols[i] (K × L)
    input     dcols[i] = W[g]ᵀ @ dY[i]                       then col2im (or a reshape for 1×1)
    weight    dW[g] = Σₙ dY[i] @ cols[i]ᵀ                    (the core's batch-reduce form: out[i % G])

    cols[n, (c·kh + i)·kw + j, oy·ow + ox] = x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]   (0 outside)

For a 1×1 kernel with stride 1 and no padding, cols[i] *is* x[n] viewed as (C/G, H·W): each pixel's channel
vector is multiplied by the same matrix — a fully-connected layer applied at every pixel — so that path
never builds a column matrix.

Every other convolution builds its columns a chunk of images at a time (at most COLUMN_BYTES of them) and
keeps none: the backward builds each chunk again from x. A whole batch's columns would be K/C times the
input (25× for a 5×5 kernel: 207 MB for the small NiN's second block at batch 128). We lower with an
explicit im2col rather than an implicit GEMM (the CUDA backend's way) because the column chunk is then an
ordinary operand of the one packed GEMM core, and a reader can print it. col2im adds each column entry back
to the pixel it came from; each (n, c) plane is owned by one thread, so the sums are deterministic.
"""
from dataclasses import replace

import numpy as np
from numba import njit, prange

from .activation import relu
from .epilogue import gemm

COLUMN_BYTES = 8 << 20  # the most column matrix built at once: a memory bound (speed was the same at 8 MiB,
# 32 MiB and a whole batch on the 2-core Zen 5), not a cache size, so it does not follow the CPU target


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols):
    n_images, channels, h, w = x.shape
    for plane in prange(n_images * channels):
        n, c = plane // channels, plane % channels
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oy in range(oh):
                    iy = oy * sh - ph + i * dh
                    for ox in range(ow):
                        ix = ox * sw - pw + j * dw
                        inside = 0 <= iy < h and 0 <= ix < w
                        cols[n, row, oy * ow + ox] = x[n, c, iy, ix] if inside else 0


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx):
    n_images, channels, h, w = gx.shape
    for plane in prange(n_images * channels):
        n, c = plane // channels, plane % channels
        gx[n, c] = 0
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oy in range(oh):
                    iy = oy * sh - ph + i * dh
                    if 0 <= iy < h:
                        for ox in range(ow):
                            ix = ox * sw - pw + j * dw
                            if 0 <= ix < w:
                                gx[n, c, iy, ix] += cols[n, row, oy * ow + ox]


def _args(g):
    return g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow


def im2col(x, g):
    """Column matrix (N, C·kh·kw, oh·ow) of the NCHW input `x` for window geometry `g`."""
    cols = np.empty((g.n, g.c * g.kh * g.kw, g.oh * g.ow), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), *_args(g), cols)
    return cols


def col2im(cols, g):
    """The adjoint of `im2col`: sums each column entry into its source pixel, giving (N, C, H, W)."""
    gx = np.empty(g.input_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), *_args(g), gx)
    return gx


def _pointwise(g):
    return (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (1, 1, 1, 1, 0, 0)


def _chunks(g, itemsize):
    """Slices of the batch whose column matrices hold at most COLUMN_BYTES (one image at least); the whole
    batch at once for a 1×1 convolution, whose columns are a view."""
    per_image = g.c * g.kh * g.kw * g.oh * g.ow * itemsize
    step = g.n if _pointwise(g) else max(1, COLUMN_BYTES // max(per_image, 1))
    return [slice(start, min(start + step, g.n)) for start in range(0, g.n, step)]


def _columns(x, images, g, groups):
    """cols for the images `images` of x, as (images·G, K, L): a view for 1×1, else built by im2col."""
    count = images.stop - images.start
    if _pointwise(g):
        return np.ascontiguousarray(x[images]).reshape(count * groups, g.c // groups, g.oh * g.ow)
    return im2col(x[images], replace(g, n=count)).reshape(count * groups, -1, g.oh * g.ow)


def conv2d(x, weight, g, groups, bias=None, relu_cap=None):
    """y (N, oC, oh, ow) = conv(x, weight) (+ bias[o]), then ReLU (relu_cap=inf) or ReLU6 (6) when given —
    fused into the GEMM's write-back for one group, whose rows of W span every output channel."""
    x, out_channels, length = np.ascontiguousarray(x), weight.shape[0], g.oh * g.ow
    w3 = weight.reshape(groups, out_channels // groups, -1)
    y = np.empty((g.n, out_channels, length), dtype=x.dtype)
    fused = groups == 1
    for images in _chunks(g, x.dtype.itemsize):
        count = images.stop - images.start
        gemm(w3, _columns(x, images, g, groups), y[images].reshape(count * groups, out_channels // groups, length),
             bias=bias if fused else None, relu_cap=relu_cap if fused else None)
    if not fused and bias is not None:
        y += bias.reshape(1, -1, 1)
    if not fused and relu_cap is not None:
        y = relu(y, relu_cap)
    return y.reshape(g.n, out_channels, g.oh, g.ow)


def conv2d_backward_input(gy, weight, g, groups):
    """The input gradient (N, C, H, W): dcols[i] = W[g]ᵀ @ dY[i], then col2im (a reshape for 1×1)."""
    length = g.oh * g.ow
    gy3 = np.ascontiguousarray(gy).reshape(g.n * groups, -1, length)
    w3 = weight.reshape(groups, weight.shape[0] // groups, -1)
    gx = np.empty(g.input_shape, dtype=gy.dtype)
    for images in _chunks(g, gy.dtype.itemsize):
        count = images.stop - images.start
        gcols = np.empty((count * groups, w3.shape[2], length), dtype=gy.dtype)
        gemm(w3.transpose(0, 2, 1), gy3[images.start * groups:images.stop * groups], gcols)
        gx[images] = gcols.reshape(gx[images].shape) if _pointwise(g) else \
            col2im(gcols.reshape(count, -1, length), replace(g, n=count))
    return gx


def conv2d_backward_weight(x, gy, g, groups):
    """The weight gradient (oC, C/G, kh, kw): dW[g] = Σₙ dY[i] @ cols[i]ᵀ, a chunk of images at a time."""
    x, out_channels = np.ascontiguousarray(x), gy.shape[1]
    gy3 = np.ascontiguousarray(gy).reshape(g.n * groups, -1, g.oh * g.ow)
    gw = np.zeros((groups, out_channels // groups, g.c // groups * g.kh * g.kw), dtype=gy.dtype)
    for number, images in enumerate(_chunks(g, gy.dtype.itemsize)):
        gemm(gy3[images.start * groups:images.stop * groups], _columns(x, images, g, groups).transpose(0, 2, 1),
             gw, accumulate=number > 0)
    return gw.reshape(out_channels, g.c // groups, g.kh, g.kw)
