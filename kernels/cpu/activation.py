"""ReLU and ReLU6 as one clamp: y = min(max(x, 0), cap), with cap = inf for ReLU and 6 for ReLU6."""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _clamp(x, cap, y):
    for i in prange(x.size):
        v = x[i]
        y[i] = 0 if v <= 0 else (cap if v > cap else v)


@njit(parallel=True, cache=True)
def _clamp_backward(x, gy, cap, gx):
    # PyTorch's rule: the gradient stops where x <= 0 and, for a finite cap (ReLU6), where x >= cap; it passes
    # everywhere else, NaN included, and +inf for ReLU (cap = inf). None passes at the kinks themselves.
    capped = np.isfinite(cap)
    for i in prange(x.size):
        v = x[i]
        gx[i] = 0 if v <= 0 or (capped and v >= cap) else gy[i]


def relu(x, cap=np.inf):
    shape = x.shape  # ascontiguousarray turns a 0-d array into a 1-d one
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _clamp(x.reshape(-1), x.dtype.type(cap), y.reshape(-1))
    return y.reshape(shape)


def relu_backward(x, gy, cap=np.inf):
    shape = gy.shape
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    gx = np.empty_like(gy)
    _clamp_backward(x.reshape(-1), gy.reshape(-1), x.dtype.type(cap), gx.reshape(-1))
    return gx.reshape(shape)
