"""The GEMM core on the cuda device: gemm.cu's tiled kernel, with its epilogue (accumulate, bias, ReLU).

A long batch-reduce onto few output tiles — the weight gradient, dW = Σ over N images — would keep only a few
multiprocessors busy, each running through every image. Then the products are split into S slices that run
side by side as S·Bo partial outputs (out'[o'] sums the products i ≡ o' mod S·Bo, so out[o] is the sum of
out'[o + s·Bo] over s), and `sum_slices` adds them up in a fixed order: deterministic, no atomics.
"""
import numpy as np

import ninx.backends

from ..gemm_operands import check_gemm_operands
from . import tiling
from .launch import NULL, Source

SOURCE = Source("gemm", ("sum_slices",), tiled=("gemm", "gemm_tf32"), float_only=("gemm_tf32",))

BLOCKS_PER_MULTIPROCESSOR = 2  # fewer blocks than this many per multiprocessor: split the batch-reduce


def _layout(x):
    """(batch, row, column) strides of a 3-D view, in elements, as np.int64."""
    return tuple(np.int64(s // x.itemsize) for s in x.strides)


def slices_for(device, blocks, products_per_output):
    """Into how many slices to split each output's reduction so the GPU has enough blocks (1: no split)."""
    wanted = BLOCKS_PER_MULTIPROCESSOR * device.multiprocessors
    return 1 if blocks >= wanted else int(min(products_per_output, -(-wanted // blocks)))


def epilogue_args(dtype, c, bias, relu_cap):
    """(c, bias, low, high) as the kernels take them: NULL for no c or bias, the clamp as [low, high]."""
    t = np.dtype(dtype).type
    low, high = (t(0), t(relu_cap)) if relu_cap is not None else (t(-np.inf), t(np.inf))
    return (NULL if c is None else c), (NULL if bias is None else bias), low, high


def sum_slices(device, partial, slices, out, c=None, bias=None, relu_cap=None):
    """out = epilogue(Σ_s partial[s]) with partial (slices·Bo, m, n) and out (Bo, m, n), in slice order."""
    m, n = out.shape[-2:]
    SOURCE.each_element(device, "sum_slices", out.dtype, out.size,
                        (partial, np.int32(slices), np.int64(out.size), np.int32(m), np.int32(n),
                         *epilogue_args(out.dtype, c, bias, relu_cap), out))


def gemm(device, a, b, out, accumulate=False, bias=None, relu_cap=None):
    """out[i % Bo] (+)= a[i % Ba] @ b[i % Bb] for i < max(Ba, Bb, Bo), summed over i; returns out.

    a (Ba, M, K) and b (Bb, K, N) may be any strided views; out (Bo, M, N) is C-contiguous and must not
    overlap them. accumulate=True adds the sum to out. The epilogue can also add bias[m] (an (M,) array) to
    row m and apply a ReLU (relu_cap=inf) or ReLU6 (relu_cap=6), fused into the same kernel. float32 runs on
    the tensor cores in TF32 when ninx.backends.cuda.allow_tf32 is set."""
    xp = device.xp
    check_gemm_operands(xp.ndarray, a, b, out, bias)
    (ba, m, k), (bb, _, n), bo = a.shape, b.shape, out.shape[0]
    if m == 0 or n == 0:
        return out
    batch = max(ba, bb, bo)
    c = out if accumulate else None
    bias = None if bias is None else xp.ascontiguousarray(bias, dtype=a.dtype)
    tile = tiling.choose(device, m, n, bo)
    slices = slices_for(device, tile.blocks(m, n) * bo, batch // bo)
    partial = out if slices == 1 else xp.empty((slices * bo, m, n), dtype=a.dtype)
    epilogue = epilogue_args(a.dtype, c, bias, relu_cap) if slices == 1 else epilogue_args(a.dtype, None, None, None)
    grid = tile.grid(m, n, min(partial.shape[0], tiling.MAX_GRID_YZ), "gemm", k)
    tf32 = ninx.backends.cuda.allow_tf32 and a.dtype == np.float32
    SOURCE.kernel(device, "gemm_tf32" if tf32 else "gemm", a.dtype, tile)(grid, (tile.threads,), (
        a, *_layout(a), np.int32(ba), b, *_layout(b), np.int32(bb), *epilogue, np.int32(m), np.int32(n),
        np.int32(k), np.int32(batch), np.int32(partial.shape[0]), partial))
    if slices > 1:
        sum_slices(device, partial, slices, out, c, bias, relu_cap)
    return out
