"""Batch normalisation on the cuda device: batchnorm.cu. The statistics and the backward pass reduce over
each channel with one block per channel; the forward pass is one thread per element."""
import numpy as np

from .launch import Source

SOURCE = Source("batchnorm", ("batch_norm_stats", "batch_norm_forward", "batch_norm_backward"))

REDUCTION_THREADS = 128  # per channel's block; a multiple of the warp size


def _planes(device, x):
    """x (N, C, …) contiguous, with N, C and the plane size S as the kernels take them."""
    x = device.xp.ascontiguousarray(x)
    n, c = x.shape[:2]
    return x, np.int32(n), np.int32(c), np.int64(x.size // (n * c) if n * c else 0)


def _per_channel(device, dtype, *vectors):
    """Per-channel vectors (mean, inv_std, weight, …) contiguous, in the data's dtype, as the kernels read them."""
    return tuple(device.xp.ascontiguousarray(v, dtype=dtype) for v in vectors)


def batch_norm_stats(device, x):
    """(mean, var): per-channel mean and biased variance of x (N, C, H, W) over N, H, W; shape (C,) each."""
    x, n, c, plane = _planes(device, x)
    mean, var = device.xp.empty(int(c), dtype=x.dtype), device.xp.empty(int(c), dtype=x.dtype)
    if c > 0:
        stats = SOURCE.kernel(device, "batch_norm_stats", x.dtype)
        stats((int(c),), (REDUCTION_THREADS,), (x, n, c, plane, mean, var))
    return mean, var


def batch_norm_forward(device, x, mean, inv_std, weight, bias):
    """y = (x − mean[c])·inv_std[c]·weight[c] + bias[c]."""
    x, _, c, plane = _planes(device, x)
    y = device.xp.empty_like(x)
    SOURCE.each_element(device, "batch_norm_forward", x.dtype, x.size,
                        (x, *_per_channel(device, x.dtype, mean, inv_std, weight, bias), c, plane,
                         np.int64(x.size), y))
    return y


def batch_norm_backward(device, x, gy, mean, inv_std, weight, training):
    """(gx, gweight, gbias); `training` says whether mean and inv_std were the batch's own statistics."""
    x, n, c, plane = _planes(device, x)
    gy = device.xp.ascontiguousarray(gy)
    gx = device.xp.empty_like(gy)
    gweight, gbias = device.xp.empty(int(c), dtype=gy.dtype), device.xp.empty(int(c), dtype=gy.dtype)
    if c > 0:
        SOURCE.kernel(device, "batch_norm_backward", x.dtype)(
            (int(c),), (REDUCTION_THREADS,),
            (x, gy, *_per_channel(device, x.dtype, mean, inv_std, weight), np.int32(bool(training)), n, c, plane,
             gx, gweight, gbias))
    return gx, gweight, gbias
