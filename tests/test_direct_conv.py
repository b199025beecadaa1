"""The CPU's direct convolution (`ninx_kernels.cpu.direct`) against the definitions: the forward, the input
gradient as a convolution of dy with the flipped weights, and the weight gradient, over every tile shape of
the target in use, partial tiles of pixels, channels and taps, strides, padding and dilation — and through
conv2d, where the layer is large enough to be routed here."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
import references as ref
from ninx.geometry import window2d
from ninx.nn import functional as F
from ninx_kernels.cpu import conv, direct
from strategies import seeds, values

DTYPES = [np.float32, np.float64]


@settings(deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 5), oc=st.integers(1, 40), oh=st.integers(1, 16),
       ow=st.integers(1, 30), k=st.sampled_from([(1, 1), (3, 3), (5, 3), (2, 5)]), sh=st.integers(1, 2),
       pad=st.tuples(st.integers(0, 2), st.integers(0, 2)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       shape=st.sampled_from(direct.SHAPES), band=st.sampled_from([None, 1, 2, 3]), relu=st.booleans(),
       dtype=st.sampled_from(DTYPES), seed=seeds)
def test_forward_is_the_definition(n, c, oc, oh, ow, k, sh, pad, dilation, shape, band, relu, dtype, seed):
    """Every tile shape on any output size, in bands of any rows of tiles (a last band shorter): spare pixels
    and channels of the last tiles are never stored."""
    (kh, kw), (ph, pw), (dh, dw) = k, pad, dilation
    h, w = (oh - 1) * sh + dh * (kh - 1) + 1 - 2 * ph, ow + dw * (kw - 1) - 2 * pw
    if h < 1 or w < 1:
        return
    x, weight, bias = values((n, c, h, w), seed), values((oc, c, kh, kw), seed + 1), values((oc,), seed + 2)
    y = direct.conv_direct(x.astype(dtype), weight.astype(dtype), pad, dilation, sh, (oh, ow), shape,
                           bias.astype(dtype), np.inf if relu else None, band)
    expected = ref.conv2d(x, weight, bias, (sh, 1), pad, dilation)
    magnitude = ref.conv2d(abs(x), abs(weight), abs(bias), (sh, 1), pad, dilation)
    ref.assert_close(y, np.maximum(expected, 0) if relu else expected, dtype, terms=c * kh * kw + 1,
                     magnitude=magnitude)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", direct.SHAPES)
@pytest.mark.parametrize("chunk", [None, 2], ids=["one chunk", "chunks of 2 channels"])
@pytest.mark.parametrize("band", [1, 2])
def test_kernel_rows_reading_only_padding_are_skipped_exactly(monkeypatch, dtype, shape, chunk, band):
    """A tile skips the kernel rows that read only padding for all its output rows, a run of taps in each
    chunk of channels (`tap_order`): padding wider than the kernel leaves whole tiles with no tap to run
    (their outputs are the bias, clamped), row stride and dilation move which rows are skipped."""
    if chunk:
        monkeypatch.setattr(direct, "_chunk", lambda *args: chunk)
    for (kh, sh, dh, ph) in [(3, 1, 1, 4), (3, 2, 2, 3), (5, 1, 1, 2), (2, 1, 3, 5)]:
        h, w, kw = 3, 9, 3
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        x, weight, bias = values((2, 3, h, w), 1), values((5, 3, kh, kw), 2), values((5,), 3)
        y = direct.conv_direct(x.astype(dtype), weight.astype(dtype), (ph, 1), (dh, 1), sh, (oh, w), shape,
                               bias.astype(dtype), np.inf, band)
        expected = np.maximum(ref.conv2d(x, weight, bias, (sh, 1), (ph, 1), (dh, 1)), 0)
        magnitude = ref.conv2d(abs(x), abs(weight), abs(bias), (sh, 1), (ph, 1), (dh, 1))
        ref.assert_close(y, expected, dtype, terms=3 * kh * kw + 1, magnitude=magnitude)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk", [1, 1 << 30], ids=["a chunk an image", "one chunk"])
def test_weight_gradient_skips_the_rows_of_pixels_a_kernel_row_reads_only_padding_at(dtype, chunk):
    """A kernel row's tile sums only the output rows whose input row lies in x, image by image; padding
    wider than the kernel leaves kernel rows with no pixel at all (a sum of nothing, zero)."""
    for (kh, sh, dh, ph) in [(3, 1, 1, 4), (3, 2, 2, 3), (5, 1, 1, 2), (2, 1, 3, 5)]:
        x = values((3, 4, 3, 6), 1)
        g = window2d("conv2d", x.shape, (kh, 3), (sh, 1), (ph, 1), (dh, 1))
        gy = values((3, 7, g.oh, g.ow), 2)
        gw = direct.weight_gradient_direct(x.astype(dtype), gy.astype(dtype), g,
                                           chunk * g.oh * g.ow * 64 * np.dtype(dtype).itemsize)
        _, expected = ref.conv2d_gradients(x, values((7, 4, kh, 3), 0), gy, (sh, 1), (ph, 1), (dh, 1))
        _, magnitude = ref.conv2d_gradients(abs(x), values((7, 4, kh, 3), 0), abs(gy), (sh, 1), (ph, 1), (dh, 1))
        ref.assert_close(gw, expected, dtype, terms=3 * g.oh * g.ow, magnitude=magnitude)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tile", range(len(direct.GRADIENT_TILES)), ids=lambda i: "R%d kw%d V%d" %
                         direct.GRADIENT_TILES[i])
def test_every_weight_gradient_tile_is_the_definition(tile, dtype):
    """Each tile the target has, on a padded, strided layer with a last, partial group of input channels and
    a partial block of output channels, in chunks of two images."""
    kw = direct.GRADIENT_TILES[tile][1]
    x = values((3, 5, 9, 10), 7)
    g = window2d("conv2d", x.shape, (kw - 1, kw), (2, 1), 1)
    gy = values((3, 37, g.oh, g.ow), 8)
    gw = direct.weight_gradient_direct(x.astype(dtype), gy.astype(dtype), g,
                                       2 * g.oh * g.ow * 64 * np.dtype(dtype).itemsize, tile)
    w0 = values((37, 5, kw - 1, kw), 0)
    _, expected = ref.conv2d_gradients(x, w0, gy, (2, 1), 1, 1)
    _, magnitude = ref.conv2d_gradients(abs(x), w0, abs(gy), (2, 1), 1, 1)
    ref.assert_close(gw, expected, dtype, terms=3 * g.oh * g.ow, magnitude=magnitude)


@settings(deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 12), oc=st.integers(1, 40), h=st.integers(1, 9), w=st.integers(1, 9),
       kh=st.integers(1, 4), tile=st.sampled_from(range(len(direct.GRADIENT_TILES))), stride=st.integers(1, 2),
       pad=st.integers(0, 2), dh=st.integers(1, 2), chunk=st.sampled_from([1, 2, 1 << 30]),
       dtype=st.sampled_from(DTYPES), seed=seeds)
def test_weight_gradient_is_the_definition(n, c, oc, h, w, kh, tile, stride, pad, dh, chunk, dtype, seed):
    """Every tile, with partial groups of input channels, partial blocks of output channels, and chunks of one
    image, two, or the whole batch (the sums over chunks accumulate)."""
    kw = direct.GRADIENT_TILES[tile][1]
    if dh * (kh - 1) + 1 > h + 2 * pad or kw > w + 2 * pad:
        return
    x = values((n, c, h, w), seed)
    g = window2d("conv2d", x.shape, (kh, kw), stride, pad, (dh, 1))
    gy = values((n, oc, g.oh, g.ow), seed + 1)
    chunk_bytes = chunk * g.oh * g.ow * 64 * np.dtype(dtype).itemsize  # gyᵀ has at most 64 padded channels
    gw = direct.weight_gradient_direct(x.astype(dtype), gy.astype(dtype), g, chunk_bytes, tile)
    _, expected = ref.conv2d_gradients(x, values((oc, c, kh, kw), 0), gy, stride, pad, (dh, 1))
    _, magnitude = ref.conv2d_gradients(abs(x), values((oc, c, kh, kw), 0), abs(gy), stride, pad, (dh, 1))
    ref.assert_close(gw, expected, dtype, terms=n * g.oh * g.ow, magnitude=magnitude)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c, oc, side, k, padding, dilation", [
    (32, 24, 13, 5, 2, 1),  # the small NiN's second block, narrowed: one row a tile
    (32, 56, 6, 3, 1, 1),  # its third: 6-wide rows, a partial block of output channels
    (32, 24, 12, 5, 3, (2, 1)),  # dilated rows (the weight gradient's taps need unit column dilation)
])
def test_conv2d_routed_here_matches_the_definition(c, oc, side, k, padding, dilation, dtype):
    """conv2d's three passes of a layer with enough taps run the direct kernels, and agree with the
    definitions."""
    g = window2d("conv2d", (2, c, side, side), k, 1, padding, dilation)
    size = np.dtype(dtype).itemsize
    assert direct.forward_tiles(g, 1, oc, size) and direct.input_gradient_tiles(g, 1, oc, size)
    assert direct.weight_gradient_fits(g, 1)
    x0, w0, b0 = values((2, c, side, side), 3), values((oc, c, k, k), 4), values((oc,), 5)
    x = ninx.tensor(x0, dtype=dtype, requires_grad=True)
    w = ninx.tensor(w0, dtype=dtype, requires_grad=True)
    y = F.conv2d(x, w, ninx.tensor(b0, dtype=dtype), padding=padding, dilation=dilation)
    gy = values(y.shape, 6)
    (y * ninx.tensor(gy, dtype=dtype)).sum().backward()
    taps = c * k * k
    ref.assert_close(y.numpy(), ref.conv2d(x0, w0, b0, 1, padding, dilation), dtype, terms=taps + 1,
                     magnitude=ref.conv2d(abs(x0), abs(w0), abs(b0), 1, padding, dilation))
    dx, dw = ref.conv2d_gradients(x0, w0, gy, 1, padding, dilation)
    mx, mw = ref.conv2d_gradients(abs(x0), abs(w0), abs(gy), 1, padding, dilation)
    ref.assert_close(x.grad.numpy(), dx, dtype, terms=oc * k * k, magnitude=mx)
    ref.assert_close(w.grad.numpy(), dw, dtype, terms=2 * y.shape[2] * y.shape[3], magnitude=mw)


def test_the_routing_rules():
    """Grouped, pointwise and column-strided layers, and too narrow outputs, stay on the GEMM's path; a layer
    of few taps does not, on any target (its tiles write y in bands)."""
    big = window2d("conv2d", (2, 96, 13, 13), 5, 1, 2)
    assert direct.forward_tiles(big, 1, 192, 4)
    assert direct.forward_tiles(window2d("conv2d", (2, 1, 28, 28), 5, 1, 2), 1, 96, 4)  # 25 taps
    assert direct.forward_tiles(window2d("conv2d", (2, 1, 28, 28), 1, 1, 1), 1, 96, 4)  # a padded 1×1: 1 tap
    assert direct.forward_tiles(big, 2, 192, 4) is None
    assert direct.forward_tiles(window2d("conv2d", (2, 96, 13, 13), 5, (1, 2), 2), 1, 192, 4) is None
    assert direct.forward_tiles(window2d("conv2d", (2, 96, 13, 13), 1, 1, 0), 1, 192, 4) is None
    assert direct.forward_tiles(big, 1, 3, 4) is None  # 3 output channels of a block's 8 or more
    assert direct.input_gradient_tiles(window2d("conv2d", (2, 96, 13, 13), 5, 2, 2), 1, 192, 4) is None
    assert direct.input_gradient_tiles(window2d("conv2d", (2, 1, 28, 28), 5, 1, 2), 1, 96, 4) is None  # dx: 1
    assert not direct.weight_gradient_fits(window2d("conv2d", (2, 96, 13, 13), 4, 1, 2), 1)
    assert not direct.weight_gradient_fits(window2d("conv2d", (2, 96, 13, 13), 5, 1, 2, (1, 2)), 1)
    assert direct.tile_shape(1, 1) is None  # a 1×1 output uses 1 of a tile's 4 or more pixels
    for kw in (3, 5):  # the weight gradient's tile is one of the layer's kernel width
        assert direct.GRADIENT_TILES[direct.gradient_tile(kw, 96, 192, 4)][1] == kw
    assert direct.GRADIENT_TILES[direct.gradient_tile(5, 1, 96, 4)][0] == 1  # one channel: no empty channel rows
    expected = {32: {13: (1, 13), 6: (2, 6)}, 16: {13: (1, 5), 6: (1, 6)}}  # the small NiN's: 13 of 15 pixels
    for side in (13, 6):  # on 16 registers, else the layers fill their tiles
        assert direct.tile_shape(side, side) == expected[direct.TARGET.vector_registers][side]


def test_the_gemm_path_agrees_on_the_small_nins_layer():
    """One float32 batch of the small NiN's 5×5 layer, narrowed to 4 images: the direct kernels and the GEMM
    over gathered windows, which share no code but the padding, agree."""
    g = window2d("conv2d", (4, 96, 13, 13), 5, 1, 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(g.input_shape, dtype=np.float32)
    w = rng.standard_normal((192, 48, 5, 5), dtype=np.float32)
    gy = rng.standard_normal((4, 192, 13, 13), dtype=np.float32)
    gemm_y = conv.conv2d(x, w, g, 2).reshape(4, 2, 96, 13, 13)  # two groups: the GEMM path
    halves = [direct.conv_direct(x[:, 48 * i:48 * i + 48], w[96 * i:96 * i + 96], (2, 2), (1, 1), 1, (13, 13),
                                 direct.tile_shape(13, 13)) for i in range(2)]
    np.testing.assert_allclose(gemm_y, np.stack(halves, 1), rtol=1e-4, atol=1e-3)
    windows_gw = conv.conv2d_backward_weight(x, gy, g, 2).reshape(2, 96, 48, 5, 5)
    direct_gw = [direct.weight_gradient_direct(x[:, 48 * i:48 * i + 48], gy[:, 96 * i:96 * i + 96],
                                               window2d("conv2d", (4, 48, 13, 13), 5, 1, 2)) for i in range(2)]
    np.testing.assert_allclose(windows_gw, np.stack(direct_gw), rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_gradient_of_an_empty_batch_is_zero(dtype):
    """No image, no sum: zeros, not whatever the buffer held."""
    np.full(1 << 16, 7.0, dtype)  # leave non-zero memory for the allocator to hand out again
    g = window2d("conv2d", (0, 4, 7, 7), 3, 1, 1)
    gw = direct.weight_gradient_direct(np.zeros((0, 4, 7, 7), dtype), np.zeros((0, 40, 7, 7), dtype), g)
    assert gw.shape == (40, 4, 3, 3) and gw.dtype == dtype and not gw.any()
