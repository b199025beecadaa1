"""Depthwise convolution (groups = input channels), forward and both gradients, computed directly.

x (N, C, H, W), weight (C·M, 1, kh, kw) for a channel multiplier M, y (N, C·M, oh, ow): output channel
o = c·M + m sees input channel c only,

    y[n, o, oy, ox] = Σ_{i, j} w[o, i, j] · x[n, o // M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]

(taps outside the input read zero). As a GEMM each group would be an (M × kh·kw) @ (kh·kw × oh·ow) product of
a handful of rows, so this kernel slides each tap along whole rows instead. At stride 1 a plane is copied
into a zero-padded frame, flat, and each tap is one loop over all the output rows at once (`_frame_taps`);
at other strides each tap runs along each output row, over the range of ox whose tap lands inside the
input (`_row_taps`). Both are innermost loops that LLVM vectorises. One thread owns an output plane
(forward), an input plane (input gradient: the scatter of every tap into the plane it owns, no races) or an
output channel's filter (weight gradient).
"""
import numpy as np
from numba import njit, prange


@njit(inline="always")
def _inside(offset, stride, size, out):
    """[lo, hi): the o < out with 0 ≤ o·stride + offset < size."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = 0 if size - offset <= 0 else min(out, (size - offset + stride - 1) // stride)
    return lo, max(lo, hi)


@njit(inline="always")
def _tap_ranges(sw, pw, dw, wd, ow, kw):
    """(lo, hi): for each tap column j, the ox in [lo[j], hi[j]) whose tap lands inside the input row."""
    lo, hi = np.empty(kw, np.int64), np.empty(kw, np.int64)
    for j in range(kw):
        lo[j], hi[j] = _inside(j * dw - pw, sw, wd, ow)
    return lo, hi


@njit(inline="always")
def _row_taps(y_row, x_row, taps, lo, hi, sw, dw, pw, adjoint):
    """One row of taps between an output row and the input row it reads:
    y_row[ox] += taps[j] · x_row[ox·sw − pw + j·dw] for each j and ox in [lo[j], hi[j]); with `adjoint`, the
    transpose, x_row[ox·sw − pw + j·dw] += taps[j] · y_row[ox] (the input gradient)."""
    for j in range(taps.size):
        tap, shift = taps[j], j * dw - pw
        if sw == 1:  # contiguous slices of both rows: a loop LLVM vectorises
            ys, xs = y_row[lo[j]:hi[j]], x_row[lo[j] + shift:hi[j] + shift]
            if adjoint:
                for q in range(ys.size):
                    xs[q] += tap * ys[q]
            else:
                for q in range(ys.size):
                    ys[q] += tap * xs[q]
        elif adjoint:
            for ox in range(lo[j], hi[j]):
                x_row[ox * sw + shift] += tap * y_row[ox]
        else:
            for ox in range(lo[j], hi[j]):
                y_row[ox] += tap * x_row[ox * sw + shift]


@njit(inline="always")
def _into_frame(plane, frame, wp, top, left):
    """Rows of plane (H × W) into the flat frame, rows wp apart, from row `top` and column `left` (element by
    element: slice copies of 7-wide rows cost 1.5× more in the 960@7² forward)."""
    for iy in range(plane.shape[0]):
        start = (iy + top) * wp + left
        for ix in range(plane.shape[1]):
            frame[start + ix] = plane[iy, ix]


@njit(inline="always")
def _from_frame(frame, wp, top, left, plane):
    """plane (H × W) read back from the frame's rows (`_into_frame`'s inverse)."""
    for iy in range(plane.shape[0]):
        start = (iy + top) * wp + left
        for ix in range(plane.shape[1]):
            plane[iy, ix] = frame[start + ix]


@njit(inline="always")
def _frame_taps(out, src, taps, wp, dh, dw, adjoint):
    """Stride 1 on planes laid out flat with rows wp apart: out[p] += taps[i, j] · src[p + i·dh·wp + j·dw] over
    the len(out) positions p (the padded input's frame holds every tap's reach); with `adjoint`, the transpose,
    src[p + shift] += taps[i, j] · out[p]. One loop of whole rows a tap: long enough to vectorise even where
    a row is 7 wide (960@7², N=8, rows one at a time / flat: 1.31 / 0.47 ms; 144@56² 3.71 / 2.08)."""
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


@njit(parallel=True, cache=True)
def _forward(x, w, sh, sw, ph, pw, dh, dw, y):
    # stride 1 in frames; other strides row by row, every tap of a row before the next, so that the output
    # row stays in L1 (whole planes tap by tap, the loops before, were 1.5–4.9× slower at MobileNet's shapes)
    n_images, channels, h, wd = x.shape
    out_channels, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    multiplier = out_channels // channels
    wp = wd + 2 * pw  # stride 1: the padded plane and the outputs flat, in rows of wp (`_frame_taps`)
    for plane in prange(n_images * out_channels):
        n, o = plane // out_channels, plane % out_channels
        c = o // multiplier
        if sh == 1 and sw == 1:
            padded = np.zeros((h + 2 * ph) * wp + (kw - 1) * dw, x.dtype)  # + the last row's reach past its end
            _into_frame(x[n, c], padded, wp, ph, pw)
            frame = np.zeros(oh * wp, y.dtype)  # columns ow … wp − 1 of each row are computed and dropped
            _frame_taps(frame, padded, w[o, 0], wp, dh, dw, False)
            _from_frame(frame, wp, 0, 0, y[n, o])
            continue
        lo, hi = _tap_ranges(sw, pw, dw, wd, ow, kw)
        y[n, o] = 0
        for oy in range(oh):
            for i in range(kh):
                iy = oy * sh - ph + i * dh
                if 0 <= iy < h:
                    _row_taps(y[n, o, oy], x[n, c, iy], w[o, 0, i], lo, hi, sw, dw, pw, False)


@njit(parallel=True, cache=True)
def _backward_input(gy, w, sh, sw, ph, pw, dh, dw, gx):
    # gx[n, c, iy, ix] = Σ_{m, i, j} w[c·M + m, i, j] · gy[n, c·M + m, oy, ox] over the (oy, ox) whose tap
    # (i, j) lands on (iy, ix): the adjoint of the forward, same loops, with the roles of x and y swapped
    n_images, channels, h, wd = gx.shape
    out_channels, _, kh, kw = w.shape
    oh, ow = gy.shape[2], gy.shape[3]
    multiplier = out_channels // channels
    wp = wd + 2 * pw
    for plane in prange(n_images * channels):
        n, c = plane // channels, plane % channels
        if sh == 1 and sw == 1:  # the forward's frames, the taps' adjoint, the padding cropped off
            padded = np.zeros((h + 2 * ph) * wp + (kw - 1) * dw, gx.dtype)
            frame = np.zeros(oh * wp, gy.dtype)  # the dropped columns stay zero: they reach real pixels
            for o in range(c * multiplier, (c + 1) * multiplier):
                _into_frame(gy[n, o], frame, wp, 0, 0)
                _frame_taps(frame, padded, w[o, 0], wp, dh, dw, True)
            _from_frame(padded, wp, ph, pw, gx[n, c])
            continue
        lo, hi = _tap_ranges(sw, pw, dw, wd, ow, kw)
        gx[n, c] = 0
        for o in range(c * multiplier, (c + 1) * multiplier):
            for oy in range(oh):
                for i in range(kh):
                    iy = oy * sh - ph + i * dh
                    if 0 <= iy < h:
                        _row_taps(gy[n, o, oy], gx[n, c, iy], w[o, 0, i], lo, hi, sw, dw, pw, True)


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _backward_weight(x, gy, sh, sw, ph, pw, dh, dw, gw):
    # gw[o, i, j] = Σ_{n, oy, ox} gy[n, o, oy, ox] · x[n, o // M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]: at
    # stride 1 one dot product per image and tap over the forward's frames (dy's dropped columns zero), at
    # other strides a running total per tap along the rows. The sums may be reassociated, so that LLVM keeps
    # a vector of partial sums instead of one chain of dependent adds (2-core Zen 5, N=8, ms, per-ox sums
    # along rows then frames: 144@56² 3.2 → 2.7, 192@28² 1.8 → 0.7, 960@7² 1.1 → 0.5)
    n_images, channels, h, wd = x.shape
    out_channels, _, kh, kw = gw.shape
    oh, ow = gy.shape[2], gy.shape[3]
    multiplier = out_channels // channels
    wp = wd + 2 * pw
    for o in prange(out_channels):
        c = o // multiplier
        if sh == 1 and sw == 1:
            padded = np.zeros((h + 2 * ph) * wp + (kw - 1) * dw, x.dtype)
            frame = np.zeros(oh * wp, gy.dtype)
            totals = np.zeros((kh, kw), gw.dtype)
            for n in range(n_images):
                _into_frame(x[n, c], padded, wp, ph, pw)
                _into_frame(gy[n, o], frame, wp, 0, 0)
                for i in range(kh):
                    for j in range(kw):
                        window = padded[i * dh * wp + j * dw:]
                        total = gw.dtype.type(0)
                        for p in range(frame.size):
                            total += frame[p] * window[p]
                        totals[i, j] += total
            gw[o, 0] = totals
            continue
        lo, hi = _tap_ranges(sw, pw, dw, wd, ow, kw)
        for i in range(kh):
            oy0, oy1 = _inside(i * dh - ph, sh, h, oh)
            for j in range(kw):
                total = gw.dtype.type(0)
                for n in range(n_images):
                    for oy in range(oy0, oy1):
                        iy = oy * sh - ph + i * dh
                        for ox in range(lo[j], hi[j]):
                            total += gy[n, o, oy, ox] * x[n, c, iy, ox * sw - pw + j * dw]
                gw[o, 0, i, j] = total


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
