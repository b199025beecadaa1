"""Depthwise convolution (groups = input channels), forward and both gradients, computed directly.

x (N, C, H, W), weight (C·M, 1, kh, kw) for a channel multiplier M, y (N, C·M, oh, ow): output channel
o = c·M + m sees input channel c only,

    y[n, o, oy, ox] = Σ_{i, j} w[o, i, j] · x[n, o // M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]

(taps outside the input read zero). As a GEMM each group would be an (M × kh·kw) @ (kh·kw × oh·ow) product of
a handful of rows, so this kernel slides each tap over whole planes instead. A channel's planes of several
images are stacked, flat, in one zero-padded frame (`Stack`), split into a frame for each phase of the rows'
stride so that only the output rows kept are computed; along a row the outputs lie on the stride-1 grid (a
stride of 2 computes 2× the outputs it keeps, and still ran 1.5× faster than strided reads did). Up to
three taps of a kernel row are one loop over the whole stack (`_frame_taps`), which LLVM vectorises: long
enough where a plane is 7×7 (a plane a frame spent most of its time in the loops' scalar remainders and in
allocating frames). Each
thread owns a share of the channels and allocates its frames once: output channels (forward, weight gradient)
or input channels (input gradient: the scatter of every tap into the planes it owns, no races).

MobileNetV2's layers at N=8, 2-core Zen 5, ms forward / input gradient / weight gradient, a frame a plane
copied element by element → stacks in L1 copied by vector moves (PyTorch's forward):
  144@56²  2.0–2.2 / 2.0–2.2 / 2.4 → 1.2–1.3 / 1.4 / 1.2–1.4 (2.3)
  192@28²  0.73–0.90 / 0.80–0.87 / 0.66–1.0 → 0.26–0.27 / 0.31–0.34 / 0.28
  576@14², stride 2  0.71–0.80 / 0.70 / 0.47–0.51 → 0.43–0.46 / 0.33–0.35 / 0.34–0.37 (0.27)
  960@7²   0.52–0.55 / 0.55 / 0.42–0.43 → 0.27 / 0.27 / 0.28–0.29 (0.28)
Frames once a thread instead of once a channel: 960@7² forward 0.27–0.29 → 0.21–0.24, 576@14²/2 0.39–0.44
→ 0.38 (malloc and free were 16% of 960@7²'s time). A stride-2 forward's outputs leave the stride-1 grid by
two loads and a shuffle a vector, not a gather (`gather_padded`): 576@14²/2 on the 2-core Zen 4 took
1.24–1.87× the time of the same layer at stride 1, and now 0.81–0.94× (alternating processes, 3 rounds).
The forward's taps three a loop, so that the frame is loaded and stored once for three FMAs, and its bias
in the frame before them, not in a pass over y (2-core Ice Lake-SP, the op with its bias, ms, alternating
processes, 3 rounds): 144@56² 4.2–5.5 → 2.7–3.3, 192@28² 1.14–1.42 → 0.61–0.75, 576@14²/2 0.79–1.05 →
0.59–0.69, 960@7² 0.68–0.72 → 0.43–0.48 (PyTorch 4.0, 1.25, 0.56, 0.57 in the suite's run). The gradients
likewise, the input's as sums gathered into the padded frame: input gradient 3.1–3.4 → 2.2–2.6, 0.90–1.03
→ 0.68–0.75, 0.81–1.05 → 0.79–0.84, 0.51–0.54 → 0.47–0.50; weight gradient 2.2–2.3 → 1.9–2.3, 0.61–0.78 →
0.56–0.67, 0.58–0.70 → 0.55–0.61, 0.45–0.60 → 0.42–0.57 (kernels alone, 4 rounds, min of 60 calls).
Row phases, where each plane row goes taken once a geometry (`plane_runs`: a row's place had cost a
division in every copy), and `gather_padded` moving only the vectors that store something (same host, one
process alternating, time new/old): 576@14²/2 forward 0.89–0.93, input gradient 0.86–0.97, weight gradient
0.96–1.00; 960@7² forward 0.84–0.89, weight gradient 0.83–0.88; the others 0.95–1.06. On the haswell target
(no mask registers): 576@14²/2 forward 0.63–0.69, 960@7² 0.65–0.67 / 0.73 / 0.75–0.81. Splitting the columns
into phases as well (a quarter of the positions at stride 2) ran 1.2–2.0× slower: each row became sw runs of
strided moves, and the copies then cost more than the taps saved.
On the 2-core Zen 3 (AVX2), the copies were 65–80% of the forward's time (a build without them: 0.20–0.37×).
A plane row now goes in and out as one run of plain vector moves (`copy_run`), not runs of one register
tile's width moved by masked ones (vmaskmov); rows on a strided grid still go by those. One process
alternating, time new/old, float32 forward, input gradient, weight gradient: 960@7² 0.61, 0.64, 0.61;
576@14²/2 0.77, 0.84, 0.67; 192@28² 0.70, 0.86, 0.70; 144@56² 0.98–1.01; float64 forward 0.87–0.94. Not
yet measured on AVX-512, where the masked moves were cheap.
"""
import functools
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from .gemm_ir import NR_VECTORS, TARGET, VECTOR_BYTES, copy_run, gather_padded

STACK_BYTES = TARGET.l1d // 4  # a stack of planes: it and its outputs stay in L1 through the taps


class Stack(NamedTuple):
    """Where planes lie in a stack's flat frames, rows pitch = W + 2pw apart. The padded input, images stacked
    period·sh rows apart, is split into sh phase frames of phase_size elements, one after another: phase a
    holds its rows ≡ a (mod sh), padded row r at phase row r // sh. So image t's input row iy lies at phase
    row t·period + (ph + iy) // sh, column pw + ix, zeros around it, and tap (i, j) of output (oy, ox) reads
    phase (i·dh) % sh at row t·period + oy + (i·dh) // sh, column ox·sw + j·dw: every tap a shift over its
    phase's whole frame, and only the output rows kept are computed (at stride 1, one phase: the padded
    frame). Output (oy, ox) lies at row t·period + oy, column ox·sw of the output frame (the stride-1 grid
    along a row: the columns between are computed and dropped, or zero for a gradient). period·sh ≥ H + ph
    keeps each image's taps off the next image's rows (they reach its zero top padding at most); period ≥ oh
    keeps its outputs off them."""
    period: int
    pitch: int
    images: int  # images a stack holds
    phase_size: int
    padded_size: int  # sh·phase_size
    out_size: int


def stack_for(g, n_images, itemsize, room):
    """The Stack of as many of n_images planes of geometry g as `room` bytes hold, one at least."""
    period, pitch = max(-(-(g.h + g.ph) // g.sh), g.oh), g.w + 2 * g.pw
    images = max(1, min(n_images, room // (g.sh * period * pitch * itemsize)))
    # the last output position's taps reach (kh − 1)·dh // sh phase rows and (kw − 1)·dw columns past it
    reach = (g.kh - 1) * g.dh // g.sh * pitch + (g.kw - 1) * g.dw
    phase_size = images * period * pitch + reach
    return Stack(period, pitch, images, phase_size, g.sh * phase_size, images * period * pitch)


def tap_rows(g, stack):
    """(kh,) int64: where kernel row i's first tap starts reading the phase frames (its phase, then its row)."""
    return np.array([i * g.dh % g.sh * stack.phase_size + i * g.dh // g.sh * stack.pitch for i in range(g.kh)],
                    dtype=np.int64)


def plane_runs(g, stack, itemsize):
    """(the input's runs, the output's runs): where a plane's rows go in the frames of `stack`, as (iy, ix, at,
    count) rows: `count` elements of plane row iy from column ix on, to flat position at of the frames on
    (every sw-th for the output's), the image's offset t·period·pitch aside. Taken once a geometry, so that
    a plane's copy does no division (a row's phase and place in a plane's loop took 5× the copy's time)."""
    # a plane row is one run, except on a strided grid: there a run is at most what one gather_padded moves
    chunk = g.ow if g.sw == 1 else NR_VECTORS * VECTOR_BYTES // itemsize
    x_runs = [(iy, 0, (g.ph + iy) % g.sh * stack.phase_size + (g.ph + iy) // g.sh * stack.pitch + g.pw, g.w)
              for iy in range(g.h)]
    y_runs = [(oy, ox, oy * stack.pitch + ox * g.sw, min(chunk, g.ow - ox)) for oy in range(g.oh)
              for ox in range(0, g.ow, chunk)]
    return np.array(x_runs, dtype=np.int64), np.array(y_runs, dtype=np.int64)


@njit(inline="always")
def _plane_copy(plane, frame, runs, top, step, into):
    """plane (H × W) into frames by its `plane_runs` (`into`), or back out of them, top elements on, every
    step-th element of the frames: a row at a time by plain vector moves (`copy_run`: 7×7 planes, element by
    element, took most of a stack's time, and masked moves did on the Zen 3), out of a strided grid by masked
    ones (`gather_padded`: a step of 2 read by two loads and a shuffle), onto one element by element."""
    w = plane.shape[1]
    for run in range(runs.shape[0]):
        iy, ix, at, count = runs[run, 0], runs[run, 1], top + runs[run, 2], runs[run, 3]
        if step == 1 and into:
            copy_run(plane, iy * w + ix, count, frame, at)
        elif step == 1:
            copy_run(frame, at, count, plane, iy * w + ix)
        elif into:
            for q in range(count):
                frame[at + q * step] = plane[iy, ix + q]
        else:
            gather_padded(frame, at, step, count, plane, iy * w + ix, count)


@njit(inline="always")
def _frame_taps(out, src, taps, rows, dw, bias):
    """out[p] = bias + Σ_{i, j} taps[i, j] · src[p + rows[i] + j·dw] over the len(out) positions p of the output
    frame (src: the phase frames, which hold every tap's reach; rows: `tap_rows`). A kernel row's taps go
    up to three a loop over the whole stack (`_row_taps`), so that out is loaded and stored once for three
    FMAs a vector, not for each."""
    kh, kw = taps.shape
    out[:] = bias
    for i in range(kh):
        for j in range(0, kw, 3):
            _row_taps(out, src, taps[i], j, min(3, kw - j), rows[i], dw)


@njit(inline="always")
def _row_taps(out, src, row, j, count, at, dw):
    """out[p] += Σ_{q < count} row[j + q] · src[at + (j + q)·dw + p], for count = 1, 2 or 3 taps of one kernel
    row: each tap reads src through a slice of its own, which LLVM vectorises (src[p + shift] did not)."""
    n, start = out.size, at + j * dw
    t0, s0 = row[j], src[start:start + n]
    if count == 1:
        for p in range(n):
            out[p] += t0 * s0[p]
        return
    t1, s1 = row[j + 1], src[start + dw:start + dw + n]
    if count == 2:
        for p in range(n):
            out[p] += t0 * s0[p] + t1 * s1[p]
        return
    t2, s2 = row[j + 2], src[start + 2 * dw:start + 2 * dw + n]
    for p in range(n):
        out[p] += t0 * s0[p] + t1 * s1[p] + t2 * s2[p]


@njit(inline="always")
def _scattered_taps(out, dst, taps, rows, dw):
    """The adjoint of `_frame_taps` without its bias: dst[p + rows[i] + j·dw] += taps[i, j] · out[p], a kernel
    row's taps up to three a loop (`_row_taps_adjoint`)."""
    kh, kw = taps.shape
    for i in range(kh):
        for j in range(0, kw, 3):
            _row_taps_adjoint(out, dst, taps[i], j, min(3, kw - j), rows[i], dw)


@njit(inline="always")
def _row_taps_adjoint(out, dst, row, j, count, at, dw):
    """dst[at + (j + q)·dw + p] += row[j + q] · out[p] for q < count ≤ 3, p < len(out): `_row_taps`' adjoint,
    gathered, dst[at + j·dw + r] += Σ_q row[j + q] · out[r − q·dw]. One loop takes the r that every tap
    reaches (reach ≤ r < n, reach = (count − 1)·dw), a tap at a time the reach at either end."""
    n, reach, base = out.size, (count - 1) * dw, at + j * dw
    middle = max(0, n - reach)
    d = dst[base + reach:base + reach + middle]
    t0, o0 = row[j], out[reach:reach + middle]  # tap q reads out[reach − q·dw + m] for r = reach + m
    if count == 1:
        for m in range(middle):
            d[m] += t0 * o0[m]
    elif count == 2:
        t1, o1 = row[j + 1], out[reach - dw:reach - dw + middle]
        for m in range(middle):
            d[m] += t0 * o0[m] + t1 * o1[m]
    else:
        t1, o1 = row[j + 1], out[reach - dw:reach - dw + middle]
        t2, o2 = row[j + 2], out[0:middle]
        for m in range(middle):
            d[m] += t0 * o0[m] + t1 * o1[m] + t2 * o2[m]
    for q in range(count):  # tap q's r outside the middle: p < reach − q·dw, and p ≥ n − q·dw
        tap, shift = row[j + q], base + q * dw
        for p in range(min(n, reach - q * dw)):
            dst[shift + p] += tap * out[p]
        for p in range(max(min(n, reach - q * dw), n - q * dw), n):
            dst[shift + p] += tap * out[p]


@njit(inline="always")
def _row_dots(used, src, at, j, count, dw):
    """(Σ_p used[p] · src[at + (j + q)·dw + p] for q < count ≤ 3, zeros for the rest): a kernel row's taps of
    the weight gradient up to three a loop, each sum a vector of partial sums (the caller reassociates)."""
    n, start = used.size, at + j * dw
    s0, a0, a1, a2 = src[start:start + n], used.dtype.type(0), used.dtype.type(0), used.dtype.type(0)
    if count == 1:
        for p in range(n):
            a0 += used[p] * s0[p]
    elif count == 2:
        s1 = src[start + dw:start + dw + n]
        for p in range(n):
            a0 += used[p] * s0[p]
            a1 += used[p] * s1[p]
    else:
        s1, s2 = src[start + dw:start + dw + n], src[start + 2 * dw:start + 2 * dw + n]
        for p in range(n):
            a0 += used[p] * s0[p]
            a1 += used[p] * s1[p]
            a2 += used[p] * s2[p]
    return a0, a1, a2


@njit(inline="always")
def _share(part, workers, count):
    """The range of `count` channels that worker `part` of `workers` owns."""
    return range(count * part // workers, count * (part + 1) // workers)


@njit(parallel=True, cache=True)
def _forward(x, w, bias, sw, dw, stack, rows, runs, workers, y):
    n_images, channels = x.shape[:2]
    out_channels = w.shape[0]
    multiplier = out_channels // channels
    period, pitch, per_stack, _, padded_size, out_size = stack
    x_runs, y_runs = runs
    for part in prange(workers):  # a worker's frames serve all its channels: their padding stays zero
        padded, frame = np.zeros(padded_size, x.dtype), np.empty(out_size, x.dtype)
        for o in _share(part, workers, out_channels):
            for n0 in range(0, n_images, per_stack):
                images = min(per_stack, n_images - n0)  # a last, shorter stack leaves older planes past it
                for t in range(images):
                    _plane_copy(x[n0 + t, o // multiplier], padded, x_runs, t * period * pitch, 1, True)
                _frame_taps(frame[:images * period * pitch], padded, w[o, 0], rows, dw, bias[o])
                for t in range(images):
                    _plane_copy(y[n0 + t, o], frame, y_runs, t * period * pitch, sw, False)


@njit(parallel=True, cache=True)
def _backward_input(gy, w, sw, dw, stack, rows, runs, workers, gx):
    # gx[n, c, iy, ix] = Σ_{m, i, j} w[c·M + m, i, j] · gy[n, c·M + m, oy, ox] over the (oy, ox) whose tap
    # (i, j) lands on (iy, ix): the forward's frames, dy placed in the output frame (zero between and past
    # its outputs), the taps' adjoint into the phase frames, the padding cropped off
    n_images, channels = gx.shape[:2]
    out_channels = w.shape[0]
    multiplier = out_channels // channels
    period, pitch, per_stack, _, padded_size, out_size = stack
    x_runs, y_runs = runs
    for part in prange(workers):  # the output frame's positions off the outputs stay zero
        padded, frame = np.empty(padded_size, gx.dtype), np.zeros(out_size, gx.dtype)
        for c in _share(part, workers, channels):
            for n0 in range(0, n_images, per_stack):
                images = min(per_stack, n_images - n0)
                padded[:] = 0
                for o in range(c * multiplier, (c + 1) * multiplier):
                    for t in range(images):
                        _plane_copy(gy[n0 + t, o], frame, y_runs, t * period * pitch, sw, True)
                    _scattered_taps(frame[:images * period * pitch], padded, w[o, 0], rows, dw)
                for t in range(images):
                    _plane_copy(gx[n0 + t, c], padded, x_runs, t * period * pitch, 1, False)


@njit(inline="always")
def _frame_sum(used):
    """Σ_p used[p]: the bias gradient's share of a stack, from the frame the taps just read (a vector of
    partial sums, as `_row_dots`)."""
    total = used.dtype.type(0)
    for p in range(used.size):
        total += used[p]
    return total


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _backward_weight(x, gy, sw, dw, stack, rows, runs, workers, gw, gb):
    # gw[o, i, j] = Σ_{n, oy, ox} gy[n, o, oy, ox] · x[n, o // M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]: one
    # dot product per stack and tap over the forward's frames (dy in the output frame, zero off its outputs).
    # With a bias (gb of oC elements, not 0), gb[o] = Σ_{n, oy, ox} gy[n, o, oy, ox] from the same frames.
    # The sums may be reassociated, so that LLVM keeps a vector of partial sums instead of one chain of
    # dependent adds (2-core Zen 5, N=8, ms, per-column sums along rows then frames: 144@56² 3.2 → 2.7,
    # 192@28² 1.8 → 0.7, 960@7² 1.1 → 0.5)
    n_images, channels = x.shape[:2]
    out_channels, _, kh, kw = gw.shape
    multiplier = out_channels // channels
    period, pitch, per_stack, _, padded_size, out_size = stack
    x_runs, y_runs = runs
    for part in prange(workers):  # the output frame's positions off the outputs stay zero
        padded, frame = np.zeros(padded_size, x.dtype), np.zeros(out_size, x.dtype)
        for o in _share(part, workers, out_channels):
            totals, bias_total = np.zeros((kh, kw), gw.dtype), 0.0
            for n0 in range(0, n_images, per_stack):
                images = min(per_stack, n_images - n0)
                for t in range(images):
                    _plane_copy(x[n0 + t, o // multiplier], padded, x_runs, t * period * pitch, 1, True)
                    _plane_copy(gy[n0 + t, o], frame, y_runs, t * period * pitch, sw, True)
                used = frame[:images * period * pitch]
                for i in range(kh):
                    for j in range(0, kw, 3):
                        sums = _row_dots(used, padded, rows[i], j, min(3, kw - j), dw)
                        for q in range(min(3, kw - j)):
                            totals[i, j + q] += sums[q]
                if gb.size:
                    bias_total += _frame_sum(used)
            gw[o, 0] = totals
            if gb.size:
                gb[o] = bias_total


def _workers(channels):
    """Workers for `channels` channels: one a thread, each with its frames (not allocated a channel: 16% of
    960@7²'s time went to malloc and free)."""
    return max(1, min(numba.get_num_threads(), channels))


@functools.lru_cache(maxsize=256)
def _frames(g, itemsize, room):
    """(the Stack, its `tap_rows`, its `plane_runs`) of geometry g's planes of `itemsize`-byte elements in
    stacks of `room` bytes (STACK_BYTES, read by the caller), as the kernels take them: once a geometry."""
    stack = stack_for(g, g.n, itemsize, room)
    rows, runs = tap_rows(g, stack), plane_runs(g, stack, itemsize)
    for table in (rows, *runs):
        table.flags.writeable = False  # shared by every call of this geometry
    return tuple(stack), rows, runs


def _output(g, out_channels, dtype):
    return np.empty((g.n, out_channels, g.oh, g.ow), dtype=dtype)


def depthwise_conv2d(x, weight, g, bias=None):
    """y (N, C·M, oh, ow) of x (N, C, H, W) and weight (C·M, 1, kh, kw), + bias[o] when given."""
    y = _output(g, weight.shape[0], x.dtype)
    bias = np.zeros(weight.shape[0], x.dtype) if bias is None else np.ascontiguousarray(bias, x.dtype)
    _forward(np.ascontiguousarray(x), np.ascontiguousarray(weight), bias, g.sw, g.dw,
             *_frames(g, x.itemsize, STACK_BYTES), _workers(weight.shape[0]), y)
    return y


def depthwise_conv2d_backward_input(gy, weight, g):
    """gx (N, C, H, W): each input pixel sums weight · gy over the taps that read it."""
    gx = np.empty(g.input_shape, dtype=gy.dtype)
    _backward_input(np.ascontiguousarray(gy), np.ascontiguousarray(weight), g.sw, g.dw,
                    *_frames(g, gy.itemsize, STACK_BYTES), _workers(g.c), gx)
    return gx


def _parameter_gradients(x, gy, g, bias):
    """(gw, gb) from one `_backward_weight`: gb of C·M elements when `bias`, else empty and left out."""
    gw = np.empty((gy.shape[1], 1, g.kh, g.kw), dtype=gy.dtype)
    gb = np.empty(gy.shape[1] if bias else 0, dtype=gy.dtype)
    _backward_weight(np.ascontiguousarray(x), np.ascontiguousarray(gy), g.sw, g.dw,
                     *_frames(g, x.itemsize, STACK_BYTES), _workers(gy.shape[1]), gw, gb)
    return gw, gb


def depthwise_conv2d_backward_weight(x, gy, g):
    """gw (C·M, 1, kh, kw): each tap sums gy · the input it read, over images and output positions."""
    return _parameter_gradients(x, gy, g, False)[0]


def depthwise_conv2d_backward_weight_bias(x, gy, g):
    """(gw, gb): the weight gradient and the bias gradient (C·M,) = Σ gy over images and output positions, the
    second summed from the frames the first reads, not in a pass of its own over gy (Ice Lake-SP, N=8, the
    two gradients' time fused/separate, one process alternating, 3 runs: 144@56² 0.86–0.90, 192@28² 0.87–0.96,
    576@14²/2 0.91–0.94, 960@7² 0.82–0.89)."""
    return _parameter_gradients(x, gy, g, True)
