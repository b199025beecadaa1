"""im2col and its adjoint col2im: how every convolution but the 1×1 one reaches the GEMM core.

We lower with an explicit im2col rather than an implicit GEMM because the column matrix is then an ordinary
3-D operand of the one batched GEMM core (forward, input gradient and weight gradient all reuse it), and a
reader can print it. For input x (N, C, H, W) and a kernel kh×kw:

    cols[n, (c·kh + i)·kw + j, oy·ow + ox] = x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]   (0 outside)

so that conv(x)[n] = W (oC, C·kh·kw) @ cols[n]. col2im adds each column entry back to the pixel it came
from. Each (n, c) plane is owned by one thread, so the sums are deterministic and need no atomics.
"""
import numpy as np
from numba import njit, prange


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
