"""Max and average pooling over NCHW planes, forward and backward; one thread owns each (n, c) plane.

Window (oy, ox) covers rows oy·sh − ph + i·dh (i < kh) and the matching columns; positions in the padding
are skipped by max pooling and counted (or not, `count_include_pad`) by average pooling, as PyTorch does.
The max-pool forward runs a vector of neighbouring outputs in four planes at once over all their taps, in
registers (`pool_ir.window_maxima`): 24 → 3.6 ms for the small NiN's first pool on the 2-core Zen 5.
"""
import numpy as np
from numba import njit, prange

from .gemm_ir import lanes
from .pool_ir import window_maxima


PLANES = 4  # planes pooled at once: independent chains of selects (`window_maxima`)


@njit(parallel=True, cache=True)
def _max_pool(x, kh, kw, sh, sw, ph, pw, dh, dw, y, argmax):
    # a target vector of neighbouring outputs of one row over all their taps at a time (`window_maxima`);
    # the taps of output row oy are its window rows inside the input, the same for every plane
    n_images, channels, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    width = lanes(x)
    flat_x, flat_y, flat_argmax = x.reshape(-1), y.reshape(-1), argmax.reshape(-1)
    tap_row, tap_shift = np.empty(oh * kh * kw, np.int64), np.empty(oh * kh * kw, np.int64)
    taps = np.zeros(oh, np.int64)
    for oy in range(oh):  # output row oy's taps: t = oy·kh·kw … oy·kh·kw + taps[oy] − 1
        for i in range(kh):
            iy = oy * sh - ph + i * dh
            if 0 <= iy < h:
                for j in range(kw):
                    t = oy * kh * kw + taps[oy]
                    tap_row[t], tap_shift[t] = iy * w, j * dw - pw
                    taps[oy] += 1
    planes = n_images * channels
    reach = 2 * width * sw  # elements a tap's loads may span past its first column
    for group in prange((planes + PLANES - 1) // PLANES):
        for oy in range(oh):
            first_tap, last_tap = oy * kh * kw, oy * kh * kw + taps[oy] - 1
            for ox in range(0, ow, width):
                start, count = oy * ow + ox, min(width, ow - ox)
                if (group + 1) * PLANES <= planes:
                    plane = group * PLANES * h * w
                    # plain loads where every tap's span lies inside x (all but the very first and last rows)
                    unmasked = (taps[oy] > 0 and plane + tap_row[first_tap] + ox * sw - pw >= 0 and
                                plane + (PLANES - 1) * h * w + tap_row[last_tap] + ox * sw + (kw - 1) * dw - pw +
                                reach <= flat_x.size)
                    window_maxima(flat_x, plane, tap_row, tap_shift, first_tap, taps[oy], ox * sw, sw, w, flat_y,
                                  flat_argmax, group * PLANES * oh * ow + start, count, h * w, oh * ow, unmasked,
                                  PLANES)
                else:  # the last planes, one at a time
                    for plane in range(group * PLANES, planes):
                        window_maxima(flat_x, plane * h * w, tap_row, tap_shift, first_tap, taps[oy], ox * sw, sw, w,
                                      flat_y, flat_argmax, plane * oh * ow + start, count, h * w, oh * ow, False, 1)


@njit(parallel=True, cache=True)
def _max_pool_backward(gy, argmax, gx):
    """gx[plane][argmax[plane][o]] += gy[plane][o] on flat (planes, pixels) views: the stored index is the flat
    one, so no division into (row, column) is needed; zeroing and the scatter stay in one plane's cache.
    On the 2-core Zen 5 that took 128×96×28×28 from 2.6 to 1.4 ms, 128×192×13×13 from 1.0 to 0.35 ms."""
    for plane in prange(gx.shape[0]):
        target = gx[plane]
        target[:] = 0
        for o in range(gy.shape[1]):
            target[argmax[plane, o]] += gy[plane, o]


@njit(inline="always")
def _avg_window(oy, ox, kh, kw, sh, sw, ph, pw, h, w, count_include_pad, divisor_override):
    """Clipped window bounds [y0, y1) × [x0, x1) and the divisor PyTorch uses for it."""
    y0, x0 = oy * sh - ph, ox * sw - pw
    y1, x1 = min(y0 + kh, h + ph), min(x0 + kw, w + pw)
    padded_size = (y1 - y0) * (x1 - x0)
    y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
    if divisor_override > 0:
        divisor = divisor_override
    elif count_include_pad:
        divisor = padded_size
    else:
        divisor = (y1 - y0) * (x1 - x0)
    return y0, x0, y1, x1, divisor


@njit(parallel=True, cache=True)
def _avg_pool(x, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override, y):
    n_images, channels, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for plane in prange(n_images * channels):
        n, c = plane // channels, plane % channels
        for oy in range(oh):
            for ox in range(ow):
                y0, x0, y1, x1, divisor = _avg_window(oy, ox, kh, kw, sh, sw, ph, pw, h, w,
                                                      count_include_pad, divisor_override)
                total = x.dtype.type(0)
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        total += x[n, c, iy, ix]
                y[n, c, oy, ox] = total / divisor if y1 > y0 and x1 > x0 else 0


@njit(parallel=True, cache=True)
def _avg_pool_backward(gy, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override, gx):
    n_images, channels, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    for plane in prange(n_images * channels):
        n, c = plane // channels, plane % channels
        gx[n, c] = 0
        for oy in range(oh):
            for ox in range(ow):
                y0, x0, y1, x1, divisor = _avg_window(oy, ox, kh, kw, sh, sw, ph, pw, h, w,
                                                      count_include_pad, divisor_override)
                share = gy[n, c, oy, ox] / divisor
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        gx[n, c, iy, ix] += share


def max_pool2d(x, g):
    """(y, argmax): the window maxima and, for each, its flat index iy·W + ix in the input plane."""
    y = np.empty(g.output_shape, dtype=x.dtype)
    argmax = np.empty(g.output_shape, dtype=np.int64)
    _max_pool(np.ascontiguousarray(x), g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, y, argmax)
    return y, argmax


def max_pool2d_backward(gy, argmax, g):
    """Each output gradient goes to the input position its window took the maximum from."""
    n, c, h, w = g.input_shape
    gx = np.empty(g.input_shape, dtype=gy.dtype)  # returned itself, not a view: a leaf may keep it as its grad
    pooled = g.oh * g.ow  # explicit, not -1: an empty batch has no size to infer
    _max_pool_backward(np.ascontiguousarray(gy).reshape(n * c, pooled),
                       np.ascontiguousarray(argmax).reshape(n * c, pooled), gx.reshape(n * c, h * w))
    return gx


def avg_pool2d(x, g, count_include_pad=True, divisor_override=0):
    y = np.empty(g.output_shape, dtype=x.dtype)
    _avg_pool(np.ascontiguousarray(x), g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, count_include_pad,
              divisor_override, y)
    return y


def avg_pool2d_backward(gy, g, count_include_pad=True, divisor_override=0):
    gx = np.empty(g.input_shape, dtype=gy.dtype)
    _avg_pool_backward(np.ascontiguousarray(gy), g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, count_include_pad,
                       divisor_override, gx)
    return gx
