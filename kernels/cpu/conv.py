"""The convolution on the CPU: lowered onto the GEMM core through im2col, a chunk of images at a time.

For x (N, C, H, W), weight (oC, C/G, kh, kw) in G groups and output (N, oC, oh, ow), with L = oh·ow and
K = (C/G)·kh·kw, the columns of a chunk's images lie side by side, image n's in columns n·L … n·L + L − 1:

    cols[(c·kh + i)·kw + j, n·L + oy·ow + ox] = x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]   (0 outside)

so that each chunk is one GEMM per group g, rows g·K … g·K + K − 1 of cols:

    forward   Y[g]  = W[g] (oC/G × K) @ cols[g] (K × count·L)     then each image's columns into y[n]
    input     dcols[g] = W[g]ᵀ @ dY[g]                           then col2im
    weight    dW[g] (+)= dY[g] @ cols[g]ᵀ                         (summed over the chunks)

with dY[g] the chunk's output gradient laid out the same way (oC/G × count·L). One wide GEMM rather than one
per image: the small NiN's 13×13 layers would otherwise run GEMMs 169 wide (or 169 deep), which the core
packs and writes back once per image; side by side, its 5×5 layer's GEMMs took 25% less time on the 2-core
Zen 5 (the copies into and out of this layout take back half of that).

A 1×1 kernel with stride 1 and no padding needs no columns: cols of image n *is* x[n] viewed as (C/G, H·W),
each pixel's channel vector multiplied by the same matrix — a fully-connected layer applied at every pixel —
so that path runs a GEMM per image straight on x, dY and the outputs.

Every other convolution builds its columns a chunk of images at a time (at most COLUMN_BYTES of them) and
keeps none: the backward builds each chunk again from x. A whole batch's columns would be K/C times the
input (25× for a 5×5 kernel: 207 MB for the small NiN's second block at batch 128). We lower with an
explicit im2col rather than an implicit GEMM (the CUDA backend's way) because the column chunk is then an
ordinary operand of the one packed GEMM core, and a reader can print it. im2col fills whole rows per
thread and col2im owns whole channels per thread, so both write one stretch of memory each and col2im's
sums run in a fixed order: deterministic, no atomics.
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
    # cols (C·kh·kw, N, L): each thread fills whole rows, one contiguous stretch of memory
    n_images, channels, h, w = x.shape
    for row in prange(channels * kh * kw):
        c, i, j = row // (kh * kw), row // kw % kh, row % kw
        for n in range(n_images):
            for oy in range(oh):
                iy = oy * sh - ph + i * dh
                for ox in range(ow):
                    ix = ox * sw - pw + j * dw
                    inside = 0 <= iy < h and 0 <= ix < w
                    cols[row, n, oy * ow + ox] = x[n, c, iy, ix] if inside else 0


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx):
    # each thread owns whole channels: it reads their rows of cols (C·kh·kw, N, L) in one stretch each and
    # adds into their planes, taps in ascending (i, j) order
    n_images, channels, h, w = gx.shape
    for c in prange(channels):
        gx[:, c] = 0
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for n in range(n_images):
                    for oy in range(oh):
                        iy = oy * sh - ph + i * dh
                        if 0 <= iy < h:
                            for ox in range(ow):
                                ix = ox * sw - pw + j * dw
                                if 0 <= ix < w:
                                    gx[n, c, iy, ix] += cols[row, n, oy * ow + ox]


def _args(g):
    return g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow


def im2col(x, g):
    """The column matrix (C·kh·kw, N·L) of the NCHW input `x`, its images side by side: column n·L + l holds
    the window of output pixel l of image n."""
    cols = np.empty((g.c * g.kh * g.kw, g.n, g.oh * g.ow), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), *_args(g), cols)
    return cols.reshape(cols.shape[0], -1)


def col2im(cols, g):
    """The adjoint of `im2col`: sums each column entry into its source pixel, giving (N, C, H, W)."""
    gx = np.empty(g.input_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols).reshape(cols.shape[0], g.n, g.oh * g.ow), *_args(g), gx)
    return gx


def _chunks(g, itemsize):
    """Slices of the batch whose column matrices hold at most COLUMN_BYTES (one image at least)."""
    per_image = g.c * g.kh * g.kw * g.oh * g.ow * itemsize
    step = max(1, COLUMN_BYTES // max(per_image, 1))
    return [(slice(start, min(start + step, g.n)), replace(g, n=min(step, g.n - start)))
            for start in range(0, g.n, step)]


def _side_by_side(gy, groups):
    """dY (N, oC, L) as (G, oC/G, N·L), its images side by side like the columns': one copy, the A of the
    weight gradient and the B of the input gradient."""
    n, out_channels, length = gy.shape
    return np.ascontiguousarray(gy.transpose(1, 0, 2)).reshape(groups, out_channels // groups, n * length)


def conv2d(x, weight, g, groups, bias=None, relu_cap=None):
    """y (N, oC, oh, ow) = conv(x, weight) (+ bias[o]), then ReLU (relu_cap=inf) or ReLU6 (6) when given —
    fused into the GEMM's write-back for one group, whose rows of W span every output channel."""
    x, out_channels, length = np.ascontiguousarray(x), weight.shape[0], g.oh * g.ow
    w3 = weight.reshape(groups, out_channels // groups, -1)
    fused = groups == 1
    epilogue = {"bias": bias if fused else None, "relu_cap": relu_cap if fused else None}
    y = np.empty((g.n, out_channels, length), dtype=x.dtype)
    if g.pointwise:  # Y[n·G + g] = W[g] @ x[n] viewed as (C/G, H·W): straight into y
        gemm(w3, x.reshape(g.n * groups, g.c // groups, length), y.reshape(g.n * groups, -1, length), **epilogue)
    else:  # Y[g] = W[g] @ cols[g] for a chunk's images side by side, then each image's rows into place
        for images, chunk in _chunks(g, x.dtype.itemsize):
            cols = im2col(x[images], chunk).reshape(groups, -1, chunk.n * length)
            out = np.empty((groups, out_channels // groups, chunk.n * length), dtype=x.dtype)
            gemm(w3, cols, out, **epilogue)
            y[images] = out.reshape(out_channels, chunk.n, length).transpose(1, 0, 2)
    if not fused and bias is not None:
        y += bias.reshape(1, -1, 1)
    if not fused and relu_cap is not None:
        y = relu(y, relu_cap)
    return y.reshape(g.n, out_channels, g.oh, g.ow)


def conv2d_backward_input(gy, weight, g, groups):
    """The input gradient (N, C, H, W): dcols[g] = W[g]ᵀ @ dY[g] (images side by side), then col2im — for 1×1
    a GEMM per image straight into dx."""
    length, gy = g.oh * g.ow, np.ascontiguousarray(gy).reshape(g.n, -1, g.oh * g.ow)
    w3 = weight.reshape(groups, weight.shape[0] // groups, -1)
    gx = np.empty(g.input_shape, dtype=gy.dtype)
    if g.pointwise:
        gemm(w3.transpose(0, 2, 1), gy.reshape(g.n * groups, -1, length), gx.reshape(g.n * groups, -1, length))
        return gx
    for images, chunk in _chunks(g, gy.dtype.itemsize):
        gcols = np.empty((groups, w3.shape[2], chunk.n * length), dtype=gy.dtype)
        gemm(w3.transpose(0, 2, 1), _side_by_side(gy[images], groups), gcols)
        gx[images] = col2im(gcols.reshape(-1, chunk.n * length), chunk)
    return gx


def conv2d_backward_weight(x, gy, g, groups):
    """The weight gradient (oC, C/G, kh, kw): dW[g] = Σ over chunks of dY[g] @ cols[g]ᵀ, the images of a
    chunk side by side along the GEMM's K — for 1×1 the core's batch-reduce over images of x viewed in place."""
    x, out_channels, length = np.ascontiguousarray(x), gy.shape[1], g.oh * g.ow
    gy = np.ascontiguousarray(gy).reshape(g.n, out_channels, length)
    gw = np.zeros((groups, out_channels // groups, g.c // groups * g.kh * g.kw), dtype=gy.dtype)
    if g.pointwise:
        gemm(gy.reshape(g.n * groups, -1, length), x.reshape(g.n * groups, -1, length).transpose(0, 2, 1), gw)
        return gw.reshape(out_channels, g.c // groups, 1, 1)
    for number, (images, chunk) in enumerate(_chunks(g, gy.dtype.itemsize)):
        cols = im2col(x[images], chunk).reshape(groups, -1, chunk.n * length)
        gemm(_side_by_side(gy[images], groups), cols.transpose(0, 2, 1), gw, accumulate=number > 0)
    return gw.reshape(out_channels, g.c // groups, g.kh, g.kw)
