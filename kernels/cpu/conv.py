"""The convolution on the CPU: each pass one GEMM on the core's register tiles, its windows read from x.

Two lowerings share the core. Where a tile fits (`direct.forward_tiles`, `input_gradient_tiles`,
`weight_gradient_fits`: one group, a unit column stride, enough output channels), the pass runs
`direct.py`: the implicit GEMM yᵀ (pixels × oC) = windows (pixels × taps) @ Wᵀ, whose micro-kernel
(`gemm_ir.window_tile`) broadcasts the window elements where they lie in x, so nothing is gathered or
packed but the weights. The stride-1 input gradient is that same forward on dy with the flipped weights.
A map no larger than its window (`toeplitz.py`) is a dense layer, one GEMM on its Toeplitz matrix.
Everything else (grouped and column-strided convolutions, and few output channels) lowers onto
the GEMM core over gathered windows, below.

For x (N, C, H, W), weight (oC, C/G, kh, kw) in G groups and output (N, oC, oh, ow), with L = oh·ow and
K = (C/G)·kh·kw, the images' columns lie side by side, image n's in columns n·L … n·L + L − 1:

    cols[(c·kh + i)·kw + j, n·L + oy·ow + ox] = x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]   (0 outside)

so that each pass is one GEMM per group g, rows g·K … g·K + K − 1 of cols:

    forward   Y[g]  = W[g] (oC/G × K) @ cols[g] (K × N·L)         then each image's columns into y[n]
    input     dcols[g] = W[g]ᵀ @ dY[g]                           then col2im, a chunk of images at a time
    weight    dW[g] = dY[g] @ cols[g]ᵀ

with dY[g] the output gradient laid out the same way (oC/G × N·L). One wide GEMM rather than one per image:
the small NiN's 13×13 layers would otherwise run GEMMs 169 wide (or 169 deep).

cols is never built: the core gathers it block by block from x (`windows.py`, a `gemm.Gathered` operand).
Only the input gradient's dcols exist, a chunk of images at a time (at most COLUMN_BYTES), each summed into
dx by col2im, which owns whole channels per thread: its sums run in a fixed order, deterministic, no atomics.
A whole batch's columns would be K/C times the input (25× for a 5×5 kernel: 207 MB for the small NiN's
second block at batch 128).

A 1×1 kernel with stride 1 and no padding needs no gather: cols of image n *is* x[n] viewed as (C/G, H·W),
each pixel's channel vector multiplied by the same matrix — a fully-connected layer applied at every pixel —
so that path runs a GEMM per image straight on x, dY and the outputs.
"""
from dataclasses import replace

import numpy as np
from numba import njit, prange

from . import direct, toeplitz
from .activation import relu
from .gemm import gemm, pack
from .windows import col2im, windows

COLUMN_BYTES = 8 << 20  # the most of dcols built at once: a memory bound (speed was the same at 8 MiB, 32 MiB
# and a whole batch on the 2-core Zen 5), not a cache size, so it does not follow the CPU target


def _chunks(g, itemsize):
    """Slices of the batch whose dcols hold at most COLUMN_BYTES (one image at least)."""
    per_image = g.c * g.kh * g.kw * g.oh * g.ow * itemsize
    step = max(1, COLUMN_BYTES // max(per_image, 1))
    return [(slice(start, min(start + step, g.n)), replace(g, n=min(step, g.n - start)))
            for start in range(0, g.n, step)]


def _side_by_side(gy, groups):
    """dY (N, oC, L) as (G, oC/G, N·L), its images side by side like the columns': one copy, the A of the
    weight gradient and (a chunk at a time) the B of the input gradient."""
    n, out_channels, length = gy.shape
    return np.ascontiguousarray(gy.transpose(1, 0, 2)).reshape(groups, out_channels // groups, n * length)


def conv2d(x, weight, g, groups, bias=None, relu_cap=None):
    """y (N, oC, oh, ow) = conv(x, weight) (+ bias[o]), then ReLU (relu_cap=inf) or ReLU6 (6) when given —
    fused into the GEMM's write-back for one group, whose rows of W span every output channel."""
    x, out_channels, length = np.ascontiguousarray(x), weight.shape[0], g.oh * g.ow
    if toeplitz.fits(g, groups):
        return toeplitz.conv2d(x, weight, g, bias, relu_cap)
    w3 = weight.reshape(groups, out_channels // groups, -1)
    fused = groups == 1
    epilogue = {"bias": bias if fused else None, "relu_cap": relu_cap if fused else None}
    shape = direct.forward_tiles(g, groups, out_channels, x.itemsize)
    if shape:
        return direct.conv_direct(x, weight, (g.ph, g.pw), (g.dh, g.dw), g.sh, (g.oh, g.ow), shape, **epilogue)
    y = np.empty((g.n, out_channels, length), dtype=x.dtype)
    if g.pointwise:  # Y[n·G + g] = W[g] @ x[n] viewed as (C/G, H·W): straight into y
        gemm(w3, x.reshape(g.n * groups, g.c // groups, length), y.reshape(g.n * groups, -1, length), **epilogue)
    else:  # Y[g] = W[g] @ cols[g], the images side by side and cols gathered from x, then each image's rows
        out = np.empty((groups, out_channels // groups, g.n * length), dtype=x.dtype)
        gemm(pack(w3, "a"), windows(x, g, groups), out, **epilogue)
        y[:] = out.reshape(out_channels, g.n, length).transpose(1, 0, 2)
    if not fused and bias is not None:
        y += bias.reshape(1, -1, 1)
    if not fused and relu_cap is not None:
        y = relu(y, relu_cap)
    return y.reshape(g.n, out_channels, g.oh, g.ow)


def conv2d_backward_input(gy, weight, g, groups):
    """The input gradient (N, C, H, W): dcols[g] = W[g]ᵀ @ dY[g] (images side by side), then col2im — for 1×1
    a GEMM per image straight into dx."""
    length, gy = g.oh * g.ow, np.ascontiguousarray(gy).reshape(g.n, -1, g.oh * g.ow)
    if toeplitz.fits(g, groups):
        return toeplitz.conv2d_backward_input(gy, weight, g)
    w3 = weight.reshape(groups, weight.shape[0] // groups, -1)
    shape = direct.input_gradient_tiles(g, groups, weight.shape[0], gy.itemsize)
    if shape:  # dx = dy padded by d(k − 1) − p, convolved with W flipped and its channel axes swapped
        flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        return direct.conv_direct(gy.reshape(g.n, -1, g.oh, g.ow), flipped,
                                  (g.dh * (g.kh - 1) - g.ph, g.dw * (g.kw - 1) - g.pw), (g.dh, g.dw), 1, (g.h, g.w),
                                  shape)
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
    """The weight gradient (oC, C/G, kh, kw): dW[g] = dY[g] @ cols[g]ᵀ, the images side by side along the
    GEMM's K and colsᵀ gathered from x — for 1×1 the core's batch-reduce over images of x viewed in place."""
    x, out_channels, length = np.ascontiguousarray(x), gy.shape[1], g.oh * g.ow
    gy = np.ascontiguousarray(gy).reshape(g.n, out_channels, length)
    if toeplitz.fits(g, groups):
        return toeplitz.conv2d_backward_weight(x, gy, g)
    if direct.weight_gradient_fits(g, groups):
        return direct.weight_gradient_direct(x, gy, g)
    gw = np.empty((groups, out_channels // groups, g.c // groups * g.kh * g.kw), dtype=gy.dtype)
    if g.pointwise:
        gemm(gy.reshape(g.n * groups, -1, length), x.reshape(g.n * groups, -1, length).transpose(0, 2, 1), gw)
        return gw.reshape(out_channels, g.c // groups, 1, 1)
    gemm(_side_by_side(gy, groups), windows(x, g, groups, by_pixel=True), gw)
    return gw.reshape(out_channels, g.c // groups, g.kh, g.kw)


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _plane_sums(gy, sums):
    # sums[n, c] = Σ_l gy[n, c, l] in float64 (reassociated, so that LLVM keeps a vector of partial sums)
    n_images, channels, length = gy.shape
    for plane in prange(n_images * channels):
        n, c = plane // channels, plane % channels
        total = 0.0
        for i in range(length):
            total += gy[n, c, i]
        sums[n, c] = total


def conv2d_backward_bias(gy):
    """The bias gradient (oC,): Σ gy over N, oh, ow, a plane a thread at a time and in float64 (numpy's
    gy.sum(axis=(0, 2, 3)) took 0.7 ms at 128×192×6×6 on the Ice Lake host, this 0.18)."""
    n, c, oh, ow = gy.shape
    sums = np.empty((n, c))
    _plane_sums(np.ascontiguousarray(gy).reshape(n, c, oh * ow), sums)
    return sums.sum(axis=0).astype(gy.dtype)
