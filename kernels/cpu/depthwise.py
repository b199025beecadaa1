"""Depthwise convolution (groups = input channels), forward and both gradients, computed directly.

x (N, C, H, W), weight (C·M, 1, kh, kw) for a channel multiplier M, y (N, C·M, oh, ow): output channel
o = c·M + m sees input channel c only,

    y[n, o, oy, ox] = Σ_{i, j} w[o, i, j] · x[n, o // M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]

(taps outside the input read zero). As a GEMM each group would be an (M × kh·kw) @ (kh·kw × oh·ow) product of
a handful of rows, so this kernel slides each tap over whole planes instead: a plane is copied into a
zero-padded frame, flat, its outputs are computed on the stride-1 grid (a stride of 2 computes 4× the
outputs it keeps, and still ran 1.5× faster than strided reads did), and each tap is one loop over all the
rows at once (`_frame_taps`), which LLVM vectorises. One thread owns an output plane (forward), an input
plane (input gradient: the scatter of every tap into the plane it owns, no races) or an output channel's
filter (weight gradient).
"""
import numpy as np
from numba import njit, prange


@njit(inline="always")
def _frame_copy(plane, frame, wp, top, left, step_y, step_x, into):
    """plane (H × W) into the flat frame whose rows are wp apart (`into`), or back out of it: element
    (iy, ix) at row iy·step_y + top, column ix·step_x + left (element by element: slice copies of 7-wide
    rows cost 1.5× more)."""
    for iy in range(plane.shape[0]):
        start = (iy * step_y + top) * wp + left
        for ix in range(plane.shape[1]):
            if into:
                frame[start + ix * step_x] = plane[iy, ix]
            else:
                plane[iy, ix] = frame[start + ix * step_x]


@njit(inline="always")
def _frame_taps(out, src, taps, wp, dh, dw, adjoint):
    """out[p] += taps[i, j] · src[p + i·dh·wp + j·dw] over the len(out) positions p of frames whose rows are wp
    apart (src: the padded input's, which holds every tap's reach); with `adjoint`, the transpose,
    src[p + shift] += taps[i, j] · out[p]. One loop over whole frames a tap: long enough to vectorise even
    where a row is 7 wide (960@7², N=8, the forward rows one at a time / frames: 1.31 / 0.47 ms)."""
    kh, kw = taps.shape
    for i in range(kh):
        for j in range(kw):
            tap, shift = taps[i, j], i * dh * wp + j * dw
            window = src[shift:shift + out.size]
            if adjoint:
                for p in range(out.size):
                    window[p] += tap * out[p]
            else:
                for p in range(out.size):
                    out[p] += tap * window[p]


@njit(inline="always")
def _frames(x, oh, sh, ph, pw, dh, kw, dw):
    """Zeroed frames for one plane: the padded input's ((H + 2ph) rows of wp = W + 2pw, plus the last row's
    reach past its end) and the outputs' on the stride-1 grid ((oh − 1)·sh + 1 rows of wp; output (oy, ox)
    at row oy·sh, column ox·sw, the other positions computed and dropped, or zero for a gradient), and wp."""
    h, wd = x.shape[2], x.shape[3]
    wp = wd + 2 * pw
    return (np.zeros((h + 2 * ph) * wp + (kw - 1) * dw, x.dtype), np.zeros(((oh - 1) * sh + 1) * wp, x.dtype),
            wp)


@njit(parallel=True, cache=True)
def _forward(x, w, sh, sw, ph, pw, dh, dw, y):
    n_images, channels = x.shape[:2]
    out_channels, kw = w.shape[0], w.shape[3]
    multiplier = out_channels // channels
    for plane in prange(n_images * out_channels):
        n, o = plane // out_channels, plane % out_channels
        padded, frame, wp = _frames(x, y.shape[2], sh, ph, pw, dh, kw, dw)
        _frame_copy(x[n, o // multiplier], padded, wp, ph, pw, 1, 1, True)
        _frame_taps(frame, padded, w[o, 0], wp, dh, dw, False)
        _frame_copy(y[n, o], frame, wp, 0, 0, sh, sw, False)


@njit(parallel=True, cache=True)
def _backward_input(gy, w, sh, sw, ph, pw, dh, dw, gx):
    # gx[n, c, iy, ix] = Σ_{m, i, j} w[c·M + m, i, j] · gy[n, c·M + m, oy, ox] over the (oy, ox) whose tap
    # (i, j) lands on (iy, ix): the forward's frames, dy placed on the stride-1 grid (zero between), the taps'
    # adjoint, the padding cropped off
    n_images, channels = gx.shape[:2]
    out_channels, kw = w.shape[0], w.shape[3]
    multiplier = out_channels // channels
    for plane in prange(n_images * channels):
        n, c = plane // channels, plane % channels
        padded, frame, wp = _frames(gx, gy.shape[2], sh, ph, pw, dh, kw, dw)
        for o in range(c * multiplier, (c + 1) * multiplier):
            _frame_copy(gy[n, o], frame, wp, 0, 0, sh, sw, True)
            _frame_taps(frame, padded, w[o, 0], wp, dh, dw, True)
        _frame_copy(gx[n, c], padded, wp, ph, pw, 1, 1, False)


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _backward_weight(x, gy, sh, sw, ph, pw, dh, dw, gw):
    # gw[o, i, j] = Σ_{n, oy, ox} gy[n, o, oy, ox] · x[n, o // M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]: one
    # dot product per image and tap over the forward's frames (dy on the stride-1 grid, zero between). The
    # sums may be reassociated, so that LLVM keeps a vector of partial sums instead of one chain of dependent
    # adds (2-core Zen 5, N=8, ms, per-column sums along rows then frames: 144@56² 3.2 → 2.7, 192@28²
    # 1.8 → 0.7, 960@7² 1.1 → 0.5)
    n_images, channels = x.shape[:2]
    out_channels, _, kh, kw = gw.shape
    multiplier = out_channels // channels
    for o in prange(out_channels):
        padded, frame, wp = _frames(x, gy.shape[2], sh, ph, pw, dh, kw, dw)
        totals = np.zeros((kh, kw), gw.dtype)
        for n in range(n_images):
            _frame_copy(x[n, o // multiplier], padded, wp, ph, pw, 1, 1, True)
            _frame_copy(gy[n, o], frame, wp, 0, 0, sh, sw, True)
            for i in range(kh):
                for j in range(kw):
                    window = padded[i * dh * wp + j * dw:]
                    total = gw.dtype.type(0)
                    for p in range(frame.size):
                        total += frame[p] * window[p]
                    totals[i, j] += total
        gw[o, 0] = totals


def _output(g, out_channels, dtype):
    return np.empty((g.n, out_channels, g.oh, g.ow), dtype=dtype)


def depthwise_conv2d(x, weight, g):
    """y (N, C·M, oh, ow) of x (N, C, H, W) and weight (C·M, 1, kh, kw)."""
    y = _output(g, weight.shape[0], x.dtype)
    _forward(np.ascontiguousarray(x), np.ascontiguousarray(weight), g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, y)
    return y


def depthwise_conv2d_backward_input(gy, weight, g):
    """gx (N, C, H, W): each input pixel sums weight · gy over the taps that read it."""
    gx = np.empty(g.input_shape, dtype=gy.dtype)
    _backward_input(np.ascontiguousarray(gy), np.ascontiguousarray(weight), g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, gx)
    return gx


def depthwise_conv2d_backward_weight(x, gy, g):
    """gw (C·M, 1, kh, kw): each tap sums gy · the input it read, over images and output positions."""
    gw = np.empty((gy.shape[1], 1, g.kh, g.kw), dtype=gy.dtype)
    _backward_weight(np.ascontiguousarray(x), np.ascontiguousarray(gy), g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, gw)
    return gw
