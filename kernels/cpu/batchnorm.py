"""Batch normalisation over NCHW inputs, forward and backward; one thread owns each channel.

Per channel c, over the M = N·H·W values of x[:, c]:
    mean = Σ x / M,   var = Σ (x − mean)² / M  (biased),   x̂ = (x − mean)·inv_std
    y    = x̂·weight + bias
    gbias = Σ gy,   gweight = Σ gy·x̂
    gx   = weight·inv_std/M · (M·gy − gbias − x̂·gweight)   with batch statistics (training), since mean
           and var depend on x;   gx = gy·weight·inv_std   with running statistics (eval), which are constants.
Sums accumulate in float64 whatever the data type, so float32 statistics do not drift with M.
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _stats(x, mean, var):
    n_images, channels, size = x.shape
    count = n_images * size
    for c in prange(channels):
        total = 0.0
        for n in range(n_images):
            for i in range(size):
                total += x[n, c, i]
        mu = total / count
        squares = 0.0  # two passes: Σ(x − mean)² does not cancel as Σx² − M·mean² can
        for n in range(n_images):
            for i in range(size):
                d = x[n, c, i] - mu
                squares += d * d
        mean[c] = mu
        var[c] = squares / count


@njit(parallel=True, cache=True)
def _forward(x, mean, inv_std, weight, bias, y):
    n_images, channels, size = x.shape
    for c in prange(channels):
        mu, scale, shift = mean[c], inv_std[c] * weight[c], bias[c]
        for n in range(n_images):
            for i in range(size):
                y[n, c, i] = (x[n, c, i] - mu) * scale + shift


@njit(parallel=True, cache=True)
def _backward(x, gy, mean, inv_std, weight, training, gx, gweight, gbias):
    n_images, channels, size = x.shape
    count = n_images * size
    for c in prange(channels):
        mu, istd = mean[c], inv_std[c]
        sum_gy, sum_gy_xhat = 0.0, 0.0
        for n in range(n_images):
            for i in range(size):
                g = gy[n, c, i]
                sum_gy += g
                sum_gy_xhat += g * ((x[n, c, i] - mu) * istd)
        gbias[c], gweight[c] = sum_gy, sum_gy_xhat
        scale = weight[c] * istd
        if training:
            # weight·inv_std/M · (M·gy − Σgy − x̂·Σgy·x̂), as gy − mean(gy) − x̂·mean(gy·x̂)
            mean_gy, mean_gy_xhat = sum_gy / count, sum_gy_xhat / count
            for n in range(n_images):
                for i in range(size):
                    xhat = (x[n, c, i] - mu) * istd
                    gx[n, c, i] = scale * (gy[n, c, i] - mean_gy - xhat * mean_gy_xhat)
        else:
            for n in range(n_images):
                for i in range(size):
                    gx[n, c, i] = scale * gy[n, c, i]


def _planes(x):
    """x (N, C, H, W) as a contiguous (N, C, H·W) array."""
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def batch_norm_stats(x):
    """(mean, var): per-channel mean and biased variance of x (N, C, H, W) over N, H, W; shape (C,) each."""
    mean = np.empty(x.shape[1], dtype=x.dtype)
    var = np.empty(x.shape[1], dtype=x.dtype)
    _stats(_planes(x), mean, var)
    return mean, var


def batch_norm_forward(x, mean, inv_std, weight, bias):
    """y = (x − mean[c])·inv_std[c]·weight[c] + bias[c]."""
    y = np.empty(x.shape, dtype=x.dtype)
    _forward(_planes(x), mean, inv_std, weight, bias, y.reshape(x.shape[0], x.shape[1], -1))
    return y


def batch_norm_backward(x, gy, mean, inv_std, weight, training):
    """(gx, gweight, gbias); `training` says whether mean and inv_std were the batch's own statistics."""
    gx = np.empty(x.shape, dtype=gy.dtype)
    gweight = np.empty(x.shape[1], dtype=gy.dtype)
    gbias = np.empty(x.shape[1], dtype=gy.dtype)
    _backward(_planes(x), _planes(gy), mean, inv_std, weight, bool(training),
              gx.reshape(x.shape[0], x.shape[1], -1), gweight, gbias)
    return gx, gweight, gbias
