"""A convolution of a map no larger than its window, as the dense layer it is: one GEMM on its Toeplitz matrix.

When the whole input plane fits in one window (H·W ≤ kh·kw: the last block of a small NiN, a 3×3 conv at
2×2 or 1×1), every output pixel sees most of the plane, and the convolution is a fully-connected layer from
the C·H·W inputs to the oC·oh·ow outputs whose matrix repeats W's taps:

    T[(c, iy, ix), (o, oy, ox)] = w[o, c, i, j]  where iy = oy·sh − ph + i·dh, ix = ox·sw − pw + j·dw,
                                                  and 0 elsewhere (no tap of that output reads that input)

    forward   y  (N × oC·L)     = x (N × C·H·W) @ T
    input     dx (N × C·H·W)    = dy @ Tᵀ
    weight    dT (C·H·W × oC·L) = xᵀ @ dy,   then dw[o, c, i, j] = Σ over (oy, ox) of dT at the tap's place

The windows' GEMM would gather 2-element runs of x for each of the C·kh·kw taps and multiply the padding's
zeros (at 3×3 on 2×2, five of the nine taps of every pixel); T holds only the taps that land, and each GEMM
is one wide product over the images. 3×3 192→10 at 2×2, N = 128, float32, on the 2-core Zen 5, through
the windows / here: forward 0.78 / 0.081 ms, input gradient 0.68 / 0.080, weight gradient 0.44 / 0.074
(at 1×1: 0.43 / 0.018, 0.33 / 0.020, 0.18 / 0.023). One group only.
"""
import numpy as np
from numba import njit

from .activation import relu
from .gemm import gemm


def fits(g, groups):
    """Whether Window2d `g` runs here: one group and an input plane no larger than the window."""
    return groups == 1 and not g.pointwise and g.h * g.w <= g.kh * g.kw


@njit(cache=True)
def _taps(g_shape, t, w, adjoint):
    """T (C, H, W, oC, oh, ow) from w (oC, C, kh, kw), or with `adjoint` the fold back: w[o, c, i, j] = Σ of T
    over the output pixels (oy, ox) at each tap's place. T's other elements are zero and left alone."""
    h, wd, sh, sw, ph, pw, dh, dw = g_shape
    out_channels, channels, kh, kw = w.shape
    oh, ow = t.shape[4], t.shape[5]
    if adjoint:
        w[:] = 0
    for oy in range(oh):
        for ox in range(ow):
            for i in range(kh):
                iy = oy * sh - ph + i * dh
                if iy < 0 or iy >= h:
                    continue
                for j in range(kw):
                    ix = ox * sw - pw + j * dw
                    if ix < 0 or ix >= wd:
                        continue
                    for c in range(channels):
                        for o in range(out_channels):
                            if adjoint:
                                w[o, c, i, j] += t[c, iy, ix, o, oy, ox]
                            else:
                                t[c, iy, ix, o, oy, ox] = w[o, c, i, j]


def _geometry(g):
    return (g.h, g.w, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw)


def _matrix(weight, g):
    """T as a (C·H·W, oC·oh·ow) matrix."""
    t = np.zeros((g.c, g.h, g.w, weight.shape[0], g.oh, g.ow), weight.dtype)
    _taps(_geometry(g), t, np.ascontiguousarray(weight), False)
    return t.reshape(g.c * g.h * g.w, -1)


def conv2d(x, weight, g, bias=None, relu_cap=None):
    """y (N, oC, oh, ow) = x @ T, + bias and clamped when given (after the GEMM: its bias runs along rows,
    and the rows here are images)."""
    out_channels = weight.shape[0]
    y = np.empty((g.n, out_channels, g.oh, g.ow), x.dtype)
    gemm(np.ascontiguousarray(x).reshape(1, g.n, -1), _matrix(weight, g)[None], y.reshape(1, g.n, -1))
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return relu(y, relu_cap) if relu_cap is not None else y


def conv2d_backward_input(gy, weight, g):
    """dx (N, C, H, W) = dy @ Tᵀ."""
    gx = np.empty(g.input_shape, gy.dtype)
    gemm(np.ascontiguousarray(gy).reshape(1, g.n, -1), _matrix(weight, g).T[None], gx.reshape(1, g.n, -1))
    return gx


def conv2d_backward_weight(x, gy, g):
    """dw (oC, C, kh, kw): dT = xᵀ @ dy, folded back onto the taps."""
    out_channels = gy.shape[1]
    dt = np.empty((g.c, g.h, g.w, out_channels, g.oh, g.ow), gy.dtype)
    gemm(np.ascontiguousarray(x).reshape(1, g.n, -1).transpose(0, 2, 1), np.ascontiguousarray(gy).reshape(1, g.n, -1),
         dt.reshape(1, g.c * g.h * g.w, -1))
    gw = np.empty((out_channels, g.c, g.kh, g.kw), gy.dtype)
    _taps(_geometry(g), dt, gw, True)
    return gw
