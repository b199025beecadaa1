"""Batch normalisation on the cuda device: batchnorm.cu. The statistics and the backward pass reduce over
each channel in two stages, a grid of (channel, slice) blocks and then one thread per channel merging its
slices in order; the forward pass and the input gradient are one thread per element."""
import numpy as np

from .launch import BLOCKS_PER_MULTIPROCESSOR, Source, index_type

SOURCE = Source("batchnorm", kernels=("batch_norm_stats_merge", "batch_norm_backward_merge"),
                indexed=("batch_norm_stats_partials", "batch_norm_forward", "batch_norm_backward_partials",
                         "batch_norm_backward_input"))

REDUCTION_THREADS = 128  # per (channel, slice) block; a multiple of the warp size
MIN_SLICE = 4096  # a slice's fewest values, 32 per thread: a block's fixed costs stay small beside its reads


def _planes(device, x):
    """x (N, C, …) contiguous, its C, the index type that fits it, and its plane size S and M = N·S in that type."""
    x = device.xp.ascontiguousarray(x)
    n, c = x.shape[:2]
    plane = x.size // (n * c) if n * c else 0
    index = index_type(x.size)
    return x, np.int32(c), index, index(plane), index(n * plane)


def _slicing(device, channels, values):
    """(slices, length): each channel's `values` cut into `slices` slices of `length` (the last may be shorter),
    as many as give every multiprocessor BLOCKS_PER_MULTIPROCESSOR blocks, none shorter than MIN_SLICE."""
    wanted = -(-BLOCKS_PER_MULTIPROCESSOR * device.multiprocessors // channels)
    length = max(1, -(-values // max(1, min(wanted, values // MIN_SLICE))))
    return max(1, -(-values // length)), length


def _partials(device, name, channels, values, index, args):
    """Stage 1: `name` on the (channel, slice) grid, into partial (2, C, slices) in float64; with `slices`."""
    slices, length = _slicing(device, int(channels), int(values))
    partial = device.xp.empty((2, int(channels), slices), dtype=np.float64)
    SOURCE.kernel(device, name, args[0].dtype, index)((int(channels), slices), (REDUCTION_THREADS,),
                                                      (*args, values, index(length), partial))
    return partial, slices, length


def _per_channel(device, dtype, *vectors):
    """Per-channel vectors (mean, inv_std, weight, …) contiguous, in the data's dtype, as the kernels read them."""
    return tuple(device.xp.ascontiguousarray(v, dtype=dtype) for v in vectors)


def batch_norm_stats(device, x):
    """(mean, var): per-channel mean and biased variance of x (N, C, H, W) over N, H, W; shape (C,) each."""
    x, c, index, plane, values = _planes(device, x)
    mean, var = device.xp.empty(int(c), dtype=x.dtype), device.xp.empty(int(c), dtype=x.dtype)
    if c > 0:
        partial, slices, length = _partials(device, "batch_norm_stats_partials", c, values, index, (x, c, plane))
        SOURCE.each_element(device, "batch_norm_stats_merge", x.dtype, int(c),
                            (partial, c, np.int32(slices), np.int64(length), np.int64(values), mean, var))
    return mean, var


def batch_norm_forward(device, x, mean, inv_std, weight, bias):
    """y = (x − mean[c])·inv_std[c]·weight[c] + bias[c]."""
    x, c, index, plane, _ = _planes(device, x)
    y = device.xp.empty_like(x)
    SOURCE.each_element(device, "batch_norm_forward", x.dtype, x.size,
                        (x, *_per_channel(device, x.dtype, mean, inv_std, weight, bias), c, plane, index(x.size), y),
                        index)
    return y


def batch_norm_backward(device, x, gy, mean, inv_std, weight, training):
    """(gx, gweight, gbias); `training` says whether mean and inv_std were the batch's own statistics."""
    xp = device.xp
    x, c, index, plane, values = _planes(device, x)
    gy = xp.ascontiguousarray(gy)
    mean, inv_std, weight = _per_channel(device, x.dtype, mean, inv_std, weight)
    gx, sums = xp.empty_like(gy), xp.empty((2, int(c)), dtype=gy.dtype)  # sums: gbias, gweight
    if c > 0:
        partial, slices, _ = _partials(device, "batch_norm_backward_partials", c, values, index,
                                       (x, gy, mean, inv_std, c, plane))
        means = xp.empty((2, int(c)), dtype=np.float64)
        SOURCE.each_element(device, "batch_norm_backward_merge", x.dtype, 2 * int(c),
                            (partial, np.int32(2 * c), np.int32(slices), np.int64(values), means, sums))
        SOURCE.each_element(device, "batch_norm_backward_input", x.dtype, x.size,
                            (x, gy, mean, inv_std, weight, means, np.int32(bool(training)), c, plane,
                             index(x.size), gx), index)
    return gx, sums[1], sums[0]
