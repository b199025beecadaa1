"""The direct convolution on the CPU: the implicit GEMM with a tile of outputs in registers and its window
operand broadcast where it lies in x.

The GEMM over gathered windows (`windows.py`) moves every window element once into a panel, and each moved
element then serves only oC multiply-adds (192 for the small NiN's 5×5 layer): a cycle an element, 15–25% of
that GEMM. Here nothing but the weights is moved. The forward is yᵀ (pixels × oC) = windows (pixels × taps)
@ Wᵀ: the micro-kernel (`gemm_ir.window_tile`) holds R rows × KW consecutive output pixels × NR vectors of
output channels in registers and, for each tap t = (c, i, j), broadcasts the R·KW input elements those
pixels read, at the tap's offset (`windows.tap_offsets`) from the tile's first pixel in the padded input,
against one row of packed weights W[o, t] (o across the vector lanes):

    y[n, o, oy0 + r, ox0 + q] = Σ_t x_padded[n·C·Hp·Wp + (oy0 + r)·sh·Wp + ox0 + q + tap_offset[t]] · W[o, t]

Consecutive pixels of an output row read consecutive inputs only with a unit column stride, so sw = 1.

The input gradient of a stride-1 convolution is the same sum: dx = conv(dy padded by dh(kh − 1) − ph and
dw(kw − 1) − pw, with W flipped in space and its two channel axes swapped), so it runs here too, and no
dcols or col2im exist on that path. The weight gradient turns the roles once more: dWᵀ (taps × oC) =
windowsᵀ (taps × pixels) @ dyᵀ, a tile of R input channels × the kw taps of one kernel row broadcast from x
at each pixel's offset, against a row of dyᵀ.

The small NiN's 5×5 layer (batch 128) on the 2-core Zen 5, AVX-512, against the GEMM over gathered windows:
forward 61–64 → 50–56 ms (a tile at 84% of the FMA peak with its data in L2), input gradient 65–70 → 57–59,
weight gradient 66–70 → 48–53; the training step 1.00 → 0.85–0.88 of its time.

A tile skips the kernel rows that read only the padding above or below the input for all its output rows,
as oneDNN does: at 13×13 with a 5×5 kernel and padding 2 that is 9% of the taps (its 3×3 @6², 2-row tiles,
skip none). The taps run in chunks of channels that stay in L1, each chunk's kernel rows a run
(`tap_order`), so a tile's taps are one run a chunk. The weight gradient's tile of a kernel row sums, image
by image, only the output rows whose input row lies in x. The 5×5 layer on the 2-core Zen 4, alternating
processes, medians: forward 102 → 94 ms, input gradient 107 → 96, weight gradient 118 → 111.

The forward's tiles store their sums, with the bias and the clamp applied in `window_tile`'s write-back,
pixel-major into a band of rows of tiles (`band_rows`); the band then goes into y's channel planes through
register transposes, each plane in runs of the band's rows. With a task a tile, each tile wrote 56 bytes
into each of 96 planes in turn, and the small NiN's first layer (25 taps, where writing y is most of the
work) took 18–22 ms on the 2-core Ice Lake-SP, 4 of them with y replaced by a scratch buffer.
"""
import functools

import numba
import numpy as np
from numba import njit, prange

from .gemm_ir import TARGET, VECTOR_BYTES, lanes, transpose_into, window_tile
from .memory import aligned_empty, aligned_like
from .windows import padded, tap_offsets

# NR vectors of output channels and R × KW pixels: the accumulators take all registers but the NR weight
# vectors and two (a broadcast, a spare): 32 registers give 14 pixels × 2 vectors, 16 give 6 × 2. One
# output row of PIXELS or PIXELS − 1, or two rows of half as many for narrow outputs: 13-wide rows (the
# small NiN's 13×13) and 6-wide ones (its 6×6) fill their tiles on 32 registers; on 16, 13-wide rows take
# tiles of 5 (87% of their pixels used), which beat 13 × 1 vector, whose 13 broadcasts and one weight load
# for 13 FMAs make it load-bound (a 2-core Zen 3, alternating processes: input gradients of the 3×3 layer
# 37–50 → 27–29 ms, of the 5×5 230–234 → 219–225)
VECTORS = 2
PIXELS = (TARGET.vector_registers - VECTORS - 2) // VECTORS
SHAPES = ((1, PIXELS), (1, PIXELS - 1), (2, PIXELS // 2), (2, PIXELS // 2 - 1))
_S0, _S1, _S2, _S3 = SHAPES  # as globals of their own, whose items Numba reads as literals
TASKS_PER_THREAD = 4  # tasks of the forward a thread gets at least, where the images allow (`band_rows`)
LEAST_USE = 0.75  # of the tile's pixels a layer must use for this path to beat the GEMM's
# No layer has too few taps for this path since its tiles write y in bands (`band_rows`): the GEMM's path
# had won below 9 taps with mask registers and below 256 without (AVX2's masked stores were most of a tile's
# write-back), but on the 2-core Ice Lake-SP, host and haswell targets, min of 40 calls, direct against GEMM:
# the first layer 5×5 1→96 @28² 5 / 10 against 13 / 19 ms, 3×3 1→32 @28² 1.4 / 1.1 against 6.3 / 5.6,
# a padded 1×1 of one channel (1 tap, 8 images) 0.27 / 0.30 against 0.70 / 0.67


def _use(shape, oh, ow):
    """The fraction of a tile's pixels that land on outputs of an oh × ow image."""
    r, kw = shape
    return oh * ow / (-(-oh // r) * r * -(-ow // kw) * kw)


def tile_shape(oh, ow):
    """The (R, KW) of SHAPES that wastes fewest pixels on an oh × ow output, or None if even it wastes more
    than 1 − LEAST_USE of them."""
    best = max(SHAPES, key=lambda shape: _use(shape, oh, ow))
    return best if _use(best, oh, ow) >= LEAST_USE else None


def _fills(channels, itemsize):
    """Whether `channels` outputs use at least LEAST_USE of the lanes of their tiles' blocks of channels."""
    nrc = channel_block(itemsize)
    return channels >= LEAST_USE * -(-channels // nrc) * nrc


def forward_tiles(g, groups, out_channels, itemsize):
    """The tile shape of the forward of Window2d `g` on this path, or None where the GEMM's path serves it:
    grouped or pointwise (1×1, stride 1, unpadded) convolutions, a column stride, too few output channels to
    fill a block of them."""
    if groups != 1 or g.pointwise or g.sw != 1 or not _fills(out_channels, itemsize):
        return None
    return tile_shape(g.oh, g.ow)


def input_gradient_tiles(g, groups, out_channels, itemsize):
    """The tile shape of the input gradient as a forward convolution of dy (stride 1 only), or None."""
    if (groups != 1 or g.pointwise or (g.sh, g.sw) != (1, 1) or g.ph > g.dh * (g.kh - 1)
            or g.pw > g.dw * (g.kw - 1) or not _fills(g.c, itemsize)):
        return None
    return tile_shape(g.h, g.w)


def weight_gradient_fits(g, groups):
    """Whether the weight gradient of Window2d `g` runs here: one group, a kernel width with a tile, no
    column dilation. It beats the GEMM even with a tile's channel rows half empty (2-core Zen 5: 5×5 1→96
    @28², 7.3 against 11.3 ms; 3×3 192→10 @2², 0.54 against 1.1)."""
    return groups == 1 and not g.pointwise and g.kw in GRADIENT_WIDTHS and g.dw == 1


def channel_block(itemsize):
    """Output channels per tile: NR vectors of the target."""
    return VECTORS * VECTOR_BYTES // itemsize


@njit(inline="always")
def _tile(shape, x, start, taps, row_stride, panels, panel_start, nrc, depth, sums, sums_start, ldr, accumulate,
          finish, shift, shift_start, low, cap):
    """sums (pixel-major: pixel (r, i) of the tile at sums_start + r·ldr + i·nrc, nrc channels) (+)= one tile
    of SHAPES[shape], + shift and clamped to [low, cap] where `finish`: window_tile wants the shape as
    literals, so each shape has its call."""
    rows, cols = SHAPES[shape]
    if shape == 0:
        window_tile(x, start, taps, row_stride, panels, panel_start, nrc, depth, sums, sums_start, ldr, nrc, rows,
                    cols, accumulate, finish, shift, shift_start, low, cap, _S0[0], _S0[1], VECTORS)
    elif shape == 1:
        window_tile(x, start, taps, row_stride, panels, panel_start, nrc, depth, sums, sums_start, ldr, nrc, rows,
                    cols, accumulate, finish, shift, shift_start, low, cap, _S1[0], _S1[1], VECTORS)
    elif shape == 2:
        window_tile(x, start, taps, row_stride, panels, panel_start, nrc, depth, sums, sums_start, ldr, nrc, rows,
                    cols, accumulate, finish, shift, shift_start, low, cap, _S2[0], _S2[1], VECTORS)
    else:
        window_tile(x, start, taps, row_stride, panels, panel_start, nrc, depth, sums, sums_start, ldr, nrc, rows,
                    cols, accumulate, finish, shift, shift_start, low, cap, _S3[0], _S3[1], VECTORS)


@njit(inline="always")
def _reading(highest, lowest, step, count, top, bottom):
    """(lo, hi): the k < count that read some of x's rows [top, bottom), where the padded rows read at k run
    from lowest + k·step to highest + k·step (k a tile's kernel row, or a kernel row's output row); every k
    outside lo … hi − 1 reads only padding: all its rows lie above top or from bottom on."""
    lo, hi = 0, count
    while lo < count and highest + lo * step < top:
        lo += 1
    while hi > lo and lowest + (hi - 1) * step >= bottom:
        hi -= 1
    return lo, hi


@njit(parallel=True, cache=True)
def _forward(x, taps, panels, y, bias, low, cap, image_stride, row_stride, shape, kernel_rows, band):
    # y (N, oC, oh, ow) from x (flat, padded, with a tail for the last tiles' spare pixels) and panels
    # (blocks, K, nrc): panels[b, t, j] = W[b·nrc + j, t], the taps t in `tap_order`. A task is a band of
    # `band` rows of tiles across the image, for every block of output channels in turn, so that its window
    # rows are read from L1 by every block (5×5 layer: 55 → 50 ms against blocks outermost, which kept a
    # thread's weight panels in L2 but read x from L3 a block at a time)
    n_images, out_channels, oh, ow = y.shape
    blocks, depth, nrc = panels.shape
    rows, cols = SHAPES[shape]
    kh, dh, sh, top, bottom, chunk = kernel_rows
    width = lanes(y)
    row_groups, col_tiles = (oh + rows - 1) // rows, (ow + cols - 1) // cols
    bands, line = (row_groups + band - 1) // band, col_tiles * cols  # line: pixels a row of the band's sums
    flat, out = panels.reshape(-1), y.reshape(-1)
    for task in prange(n_images * bands):
        n, first = task // bands, task % bands * band
        in_band = min(band, row_groups - first)  # rows of tiles in this band
        oy_first = first * rows
        out_rows = min(in_band * rows, oh - oy_first)
        sums = aligned_like(y, in_band * rows * line * nrc)
        for b in range(blocks):
            for group in range(in_band):
                oy0 = oy_first + group * rows
                # kernel row i of output row oy reads padded row oy·sh + i·dh: the tile skips the kernel rows
                # that read only the zeros above row `top` or from row `bottom` for all its output rows
                i_lo, i_hi = _reading((oy0 + min(rows, oh - oy0) - 1) * sh, oy0 * sh, dh, kh, top, bottom)
                for t in range(col_tiles):
                    start, at = n * image_stride + oy0 * row_stride + t * cols, (group * rows * line + t * cols) * nrc
                    if i_hi - i_lo == kh:  # every tap, in one run
                        _tile(shape, x, start, taps, row_stride, flat, b * depth * nrc, nrc, depth, sums, at,
                              line * nrc, False, True, bias, b * nrc, low, cap)
                        continue
                    per_row = depth // kh  # taps of one kernel row: C·kw
                    for c0 in range(0, per_row, chunk):  # kernel rows i_lo … i_hi − 1 of a chunk: one run
                        span = min(chunk, per_row - c0)  # the chunk's taps of one kernel row
                        tap = c0 * kh + i_lo * span
                        _tile(shape, x, start, taps[tap:], row_stride, flat, (b * depth + tap) * nrc, nrc,
                              (i_hi - i_lo) * span, sums, at, line * nrc, c0 > 0, c0 + chunk >= per_row, bias,
                              b * nrc, low, cap)
            # the band, biased and clamped, into y's planes: width channels at a time through a register
            # transpose, single elements for a last, partial block
            channels = min(nrc, out_channels - b * nrc)
            corner = ((n * out_channels + b * nrc) * oh + oy_first) * ow
            for k in range(0, channels - width + 1, width):
                for r in range(out_rows):
                    for q in range(0, ow, width):
                        transpose_into(sums, (r * line + q) * nrc + k, nrc, min(width, ow - q), out,
                                       corner + k * oh * ow + r * ow + q, oh * ow, min(width, ow - q))
            for k in range(channels - channels % width, channels):
                for r in range(out_rows):
                    for q in range(ow):
                        out[corner + k * oh * ow + r * ow + q] = sums[(r * line + q) * nrc + k]


def band_rows(shape, out_size, n_images, itemsize):
    """Rows of tiles a task of the forward computes before writing them back: as many as keep the band's sums
    in a quarter of L2, and leave every thread TASKS_PER_THREAD tasks where the images allow. Longer bands
    write each plane of y in longer runs: the small NiN's first layer (5×5 1→96 @28², 25 taps, where the
    write-back is most of the work, tiles of 1 × 14 pixels) on the 2-core Ice Lake-SP: 11–18 ms with bands of
    one row, 5.0–5.8 of four, 4.6–5.1 of the whole image, against 18–22 with a task a tile."""
    (rows, cols), (oh, ow) = shape, out_size
    row_groups, line = -(-oh // rows), -(-ow // cols) * cols
    fit = TARGET.l2 // 4 // (rows * line * channel_block(itemsize) * itemsize)
    spread = n_images * row_groups // (TASKS_PER_THREAD * numba.get_num_threads())
    return max(1, min(row_groups, fit, spread))


def tap_order(c, kh, kw, chunk):
    """The taps (c, i, j) of W's flattened (C, kh, kw) in the forward's order: chunks of `chunk` channels,
    each kernel row of a chunk a run (i outermost within the chunk), so that a tile skips the kernel rows
    it reads only padding with (`_forward`) a run a chunk, and its window rows of a chunk stay in L1."""
    taps = np.arange(c * kh * kw).reshape(c, kh, kw)
    return np.concatenate([taps[c0:c0 + chunk].transpose(1, 0, 2).ravel() for c0 in range(0, c, chunk)])


def _chunk(rows, sh, kh, dh, wp, itemsize):
    """Channels a chunk of `tap_order`: those whose window rows for a tile of `rows` output rows fill a
    quarter of L1d."""
    return max(1, TARGET.l1d // 4 // (((rows - 1) * sh + dh * (kh - 1) + 1) * wp * itemsize))


def _panels(weight, nrc, order):
    """W (oC, C, kh, kw) as (blocks, K, nrc), the taps in `order`: block b holds output channels
    b·nrc … b·nrc + nrc − 1 across each tap's row, zero past oC."""
    out_channels = weight.shape[0]
    blocks = -(-out_channels // nrc)
    rows = np.zeros((blocks * nrc, weight[0].size), weight.dtype)
    rows[:out_channels] = weight.reshape(out_channels, -1)[:, order]
    panels = aligned_empty((blocks, weight[0].size, nrc), weight.dtype)
    panels[...] = rows.reshape(blocks, nrc, -1).transpose(0, 2, 1)
    return panels


def conv_direct(x, weight, pad, dilation, sh, out_size, shape, bias=None, relu_cap=None, band=None):
    """y (N, oC, oh, ow) = conv(x, weight) with column stride 1, row stride sh, padding pad = (ph, pw) and
    dilation (dh, dw), tiles of `shape` (from tile_shape); + bias[o], clamped to [0, relu_cap] when given.
    A task computes `band` rows of tiles (by default `band_rows`)."""
    (n, c, h, w), (out_channels, _, kh, kw), (ph, pw), (dh, dw), (oh, ow) = x.shape, weight.shape, pad, dilation, \
        out_size
    hp, wp = h + 2 * ph, w + 2 * pw
    rows, cols = shape
    # tiles skip kernel rows only if the first or the last row of tiles has some that read only padding;
    # where none does, chunks of one channel keep the (c, i, j) order these kernels were measured with
    skips = (min(rows, oh) - 1) * sh < ph or (oh - 1) // rows * rows * sh + (kh - 1) * dh >= ph + h
    chunk = _chunk(rows, sh, kh, dh, wp, x.itemsize) if skips else 1
    order = tap_order(c, kh, kw, chunk)
    taps = tap_offsets(c, kh, kw, dh, dw, hp, wp)[order]
    last = (n - 1) * c * hp * wp + (-(-oh // rows) * rows - 1) * sh * wp + -(-ow // cols) * cols + taps.max()
    y = np.empty((n, out_channels, oh, ow), x.dtype)
    t, nrc = x.dtype.type, channel_block(x.itemsize)
    low, cap = (t(0), t(relu_cap)) if relu_cap is not None else (t(-np.inf), t(np.inf))
    shift = np.zeros(-(-out_channels // nrc) * nrc, x.dtype)  # per block of channels, zero past oC
    if bias is not None:
        shift[:out_channels] = bias
    _forward(padded(x, ph, pw, last), taps, _panels(weight, nrc, order), y, shift, low, cap, c * hp * wp,
             sh * wp, SHAPES.index(shape), (kh, dh, sh, ph, ph + h, chunk * kw),
             band or band_rows(shape, out_size, n, x.itemsize))
    return y


# the weight gradient's tiles: R input channels × the kw taps of one kernel row × V vectors of output
# channels; the accumulators take all registers but the V vectors of dyᵀ and two (a broadcast, a spare)
GRADIENT_VECTORS = (2, 3, 4)
GRADIENT_TILES = tuple((rows, kw, v) for kw in (3, 5, 7) for v in GRADIENT_VECTORS
                       if (rows := (TARGET.vector_registers - v - 2) // (kw * v)))
GRADIENT_WIDTHS = frozenset(kw for _, kw, _ in GRADIENT_TILES)  # the kernel widths this path serves
CHUNK_BYTES = TARGET.l2 // 2  # dyᵀ of a chunk of images stays in half of L2 while every tap's tile reads it


def gradient_block(tile, itemsize):
    """Output channels a weight-gradient tile GRADIENT_TILES[tile] covers: its V vectors."""
    return GRADIENT_TILES[tile][2] * VECTOR_BYTES // itemsize


def gradient_tile(kw, channels, out_channels, itemsize):
    """The index in GRADIENT_TILES of the tile for kernel width kw that takes fewest cycles per useful FMA:
    a step of a tile (R, kw, V) issues R·kw·V FMAs and V + R·kw + 1 loads (dyᵀ's vectors, the broadcasts, the
    step's offset), two of each a cycle; the useful FMAs are those on channels < C and output channels < oC.
    Ties go to fewer loads per FMA. Against V = 2 for every layer, on the 2-core Ice Lake-SP, one process
    alternating, medians of the ratios: the small NiN's 5×5 96→192 0.91 (1, 5, 4), its 3×3 192→192 @6² 0.87
    (2, 3, 4), its first 5×5 1→96 @28² 0.74 (1, 5, 3: two channel rows would leave one empty); float64
    0.92 and 0.86. On 16 registers only V = 2 has tiles of 5 taps or more."""
    def cost(index):
        rows, _, vectors = GRADIENT_TILES[index]
        nrc = gradient_block(index, itemsize)
        fmas, loads = rows * kw * vectors, vectors + rows * kw + 1
        useful = fmas * channels / (-(-channels // rows) * rows) * out_channels / (-(-out_channels // nrc) * nrc)
        return max(fmas, loads) / useful, loads / fmas
    return min((i for i, tile in enumerate(GRADIENT_TILES) if tile[1] == kw), key=cost)


@functools.cache
def _weight_gradient(tile):
    """The weight gradient's kernel with tile GRADIENT_TILES[tile]: window_tile wants the tile's shape as
    literals, so each tile has a kernel of its own, compiled when a layer first takes it."""
    rows, kw, vectors = GRADIENT_TILES[tile]

    @njit(parallel=True, cache=True)
    def weight_gradient(x, pixels, gy, chunk, gwt, kh, channel_stride, row_stride, image_stride, kernel_rows):
        # gwt (C·kh·kw, oC_pad): gwt[t, o] = Σ_{n, p} gy[n, o, p] · x[n·image_stride + pixels[p] + tap t's
        # offset], chunk (chunk images · L, oC_pad) holding gyᵀ of one chunk of images at a time
        n_images, out_channels, length = gy.shape
        taps, padded_out = gwt.shape
        channels = taps // (kh * kw)
        nrc = vectors * lanes(gwt)
        blocks, groups = padded_out // nrc, (channels + rows - 1) // rows
        per_chunk = chunk.shape[0] // length
        oh, ow, sh, dh, top, bottom = kernel_rows
        table = np.empty(chunk.shape[0], np.int64)
        width = lanes(gwt)
        flat_gy, flat_chunk, flat_gwt = gy.reshape(-1), chunk.reshape(-1), gwt.reshape(-1)
        for n0 in range(0, n_images, per_chunk):
            images = min(per_chunk, n_images - n0)
            for p in range(images * length):
                table[p] = (p // length) * image_stride + pixels[p % length]
            for q in prange(images * padded_out // width):  # gyᵀ of the chunk, width × width blocks transposed
                n, o = q // (padded_out // width), q % (padded_out // width) * width
                count = min(width, out_channels - o)
                for p in range(0, length - width + 1, width):
                    transpose_into(flat_gy, ((n0 + n) * out_channels + o) * length + p, length, count, flat_chunk,
                                   (n * length + p) * padded_out + o, padded_out, width)
                for p in range(length - length % width, length):
                    for j in range(width):
                        chunk[n * length + p, o + j] = gy[n0 + n, o + j, p] if j < count else 0
            base = n0 * image_stride
            for task in prange(blocks * groups * kh):  # block-major: a thread's next tile reads the same gyᵀ columns
                b, rest = task // (groups * kh), task % (groups * kh)
                c0, i = rest // kh * rows, rest % kh
                start = base + c0 * channel_stride + i * row_stride
                c_start = ((c0 * kh + i) * kw) * padded_out + b * nrc
                used = min(rows, channels - c0)
                # kernel row i reads padded row oy·sh + i·dh for output row oy: the rows oy_lo … oy_hi − 1 read
                # the input, the others only padding, whose products are zero and are skipped
                oy_lo, oy_hi = _reading(i * dh, i * dh, sh, oh, top, bottom)
                # no epilogue: finish is False, so the shift, low and cap passed (gwt's own) are never read
                if oy_hi - oy_lo == oh:  # every pixel of the chunk, in one run
                    window_tile(x, start, table, channel_stride, flat_chunk, b * nrc, padded_out, images * length,
                                flat_gwt, c_start, kh * kw * padded_out, padded_out, used, kw, n0 > 0, False,
                                flat_gwt, 0, flat_gwt[0], flat_gwt[0], rows, kw, vectors)
                else:  # each image's run of rows that read the input
                    for n in range(images):
                        first = n * length + oy_lo * ow
                        window_tile(x, start, table[first:], channel_stride, flat_chunk,
                                    first * padded_out + b * nrc, padded_out, (oy_hi - oy_lo) * ow, flat_gwt,
                                    c_start, kh * kw * padded_out, padded_out, used, kw, n0 > 0 or n > 0, False,
                                    flat_gwt, 0, flat_gwt[0], flat_gwt[0], rows, kw, vectors)
    return weight_gradient


def weight_gradient_direct(x, gy, g, chunk_bytes=CHUNK_BYTES, tile=None):
    """dW (oC, C, kh, kw) = Σ over images and pixels of gy[n, o, p] times the window element each tap reads,
    for a kernel width in GRADIENT_WIDTHS and unit column dilation; any stride, padding and row dilation. The
    images go a chunk of gyᵀ (at most chunk_bytes, one image at least) at a time, in tiles GRADIENT_TILES[tile]
    (by default `gradient_tile`'s)."""
    n, c, h, w = x.shape
    out_channels = gy.shape[1]
    if n == 0:  # no image: a sum of nothing (the kernel would leave gwt unwritten)
        return np.zeros((out_channels, c, g.kh, g.kw), x.dtype)
    hp, wp = h + 2 * g.ph, w + 2 * g.pw
    tile = gradient_tile(g.kw, c, out_channels, x.itemsize) if tile is None else tile
    rows, nrc = GRADIENT_TILES[tile][0], gradient_block(tile, x.itemsize)
    padded_out = -(-out_channels // nrc) * nrc
    oy, ox = np.unravel_index(np.arange(g.oh * g.ow), (g.oh, g.ow))
    pixels = oy * g.sh * wp + ox * g.sw
    # a last group of channels past C reads up to rows − 1 channel planes past the last image
    reads = n * c * hp * wp + rows * hp * wp
    per_chunk = max(1, chunk_bytes // (g.oh * g.ow * padded_out * x.itemsize))
    chunk = aligned_empty((min(per_chunk, n) * g.oh * g.ow, padded_out), x.dtype)
    gwt = aligned_empty((c * g.kh * g.kw, padded_out), x.dtype)
    gy = np.ascontiguousarray(gy).reshape(n, out_channels, g.oh * g.ow)
    _weight_gradient(tile)(padded(x, g.ph, g.pw, reads), pixels, gy, chunk, gwt, g.kh, hp * wp, g.dh * wp,
                     c * hp * wp, (g.oh, g.ow, g.sh, g.dh, g.ph, g.ph + h))
    return np.ascontiguousarray(gwt[:, :out_channels].T).reshape(out_channels, c, g.kh, g.kw)
