"""The convolution's windows on the CPU: the GEMM core's B read straight from x (a `gemm.Gathered` operand),
and their gradients summed back into pixels (col2im).

For x (N, C, H, W) padded by (ph, pw) to (Hp, Wp), tap t = (c·kh + i)·kw + j of output pixel
p = (n·oh + oy)·ow + ox reads

    cols[t, p] = x_padded[n, c, oy·sh + i·dh, ox·sw + j·dw]

whose flat index is the sum of a tap's part and a pixel's part:

    tap_offset[t] = (c·Hp + i·dh)·Wp + j·dw,     pixel_offset[p] = (n·C·Hp + oy·sh)·Wp + ox·sw

so cols is an outer sum of two offset tables, which is all the core needs to gather each B block into its
worker's panel right before the micro-kernel reads it: no column matrix is built (207 MB for the small NiN's
5×5 layer at batch 128; it was built 8 MiB at a time and read back once more to be packed). The forward's
B is cols (taps deep, pixels wide); the weight gradient's is colsᵀ (pixels deep, taps wide). Padding x once
costs a copy of it (in parallel: 1.0–1.3 ms for the 5×5 layer's input, np.pad took 3.1) and saves an edge
test per element.
"""
import numpy as np
from numba import njit, prange

from .gemm import Gathered


def tap_offsets(c, kh, kw, dh, dw, hp, wp):
    """tap_offset of each tap (c, i, j), in the order of W's flattened (C, kh, kw), into planes hp × wp."""
    ci, i, j = np.unravel_index(np.arange(c * kh * kw), (c, kh, kw))
    return (ci * hp + i * dh) * wp + j * dw


def _tables(g):
    """(tap_offset over the C·kh·kw taps, pixel_offset over the N·oh·ow pixels) into x padded by (ph, pw)."""
    h, w = g.h + 2 * g.ph, g.w + 2 * g.pw
    n, oy, ox = np.unravel_index(np.arange(g.n * g.oh * g.ow), (g.n, g.oh, g.ow))
    return tap_offsets(g.c, g.kh, g.kw, g.dh, g.dw, h, w), (n * g.c * h + oy * g.sh) * w + ox * g.sw


def windows(x, g, groups, by_pixel=False):
    """x's windows (`g`: a Window2d of x's shape) as each group's B, a `Gathered` operand of the GEMM core:
    cols[g] (its taps deep, the pixels wide), or with by_pixel its transpose (pixels deep, taps wide). x is
    padded once, so that no window needs an edge test."""
    base = padded(x, g.ph, g.pw) if g.ph or g.pw else np.ascontiguousarray(x).reshape(-1)
    tap_offset, pixel_offset = _tables(g)
    taps = g.c // groups * g.kh * g.kw
    if by_pixel:  # rows: the pixels, moved to group g's channels; columns: a group's taps
        rows, cols = pixel_offset[None, :] + tap_offset[::taps, None], tap_offset[:taps]
    else:  # rows: group g's taps; columns: the pixels
        rows, cols = tap_offset.reshape(groups, taps), pixel_offset
    return Gathered(base, np.ascontiguousarray(rows), cols)


def padded(x, ph, pw, reads=0):
    """x (N, C, H, W) zero-padded by (ph, pw), flat, with zeros after it up to `reads` elements (the direct
    convolution's last tiles read past the last image)."""
    n, c, h, w = x.shape
    size = n * c * (h + 2 * ph) * (w + 2 * pw)
    flat = np.empty(max(size, reads), x.dtype)
    pad_into(np.ascontiguousarray(x), ph, pw, flat[:size].reshape(n, c, h + 2 * ph, w + 2 * pw))
    flat[size:] = 0
    return flat


@njit(parallel=True, cache=True)
def pad_into(x, ph, pw, out):
    # out (N, C, H + 2ph, W + 2pw): x inside a border of zeros, one (n, c) plane per parallel piece. Index
    # loops, not slices: a slice per 13-wide row cost 1.37 against 1.00 ms for the 5×5 layer's input
    n_images, channels, h, w = x.shape
    for plane in prange(n_images * channels):
        n, c = plane // channels, plane % channels
        for y in range(ph):
            for j in range(w + 2 * pw):
                out[n, c, y, j] = 0
                out[n, c, ph + h + y, j] = 0
        for y in range(h):
            for j in range(pw):
                out[n, c, ph + y, j] = 0
                out[n, c, ph + y, pw + w + j] = 0
            for j in range(w):
                out[n, c, ph + y, pw + j] = x[n, c, y, j]


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx):
    # each thread owns whole channels: it reads their rows of cols (C·kh·kw, N, L) in one stretch each and
    # adds into their planes, taps in ascending (i, j) order (the edge test per element beat an ox range
    # computed per tap: 14 against 29 ms for the small NiN's 5×5 layer on the 2-core Zen 5)
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


def col2im(cols, g):
    """The adjoint of the window gather: sums each entry of cols (C·kh·kw, N·L) into its source pixel,
    giving (N, C, H, W)."""
    gx = np.empty(g.input_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols).reshape(cols.shape[0], g.n, g.oh * g.ow),
            g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow, gx)
    return gx
