"""ReLU and ReLU6 as one clamp: y = min(max(x, 0), cap), with cap = inf for ReLU and 6 for ReLU6.

Both loops are one select per element, with no branch, which LLVM vectorises to the target's full vector
width (`ninx_kernels.target`): on the 2-core Zen 5 the backward of 9.6 M float32 runs at 51 GB/s, near the
copy bandwidth (60 GB/s). Cutting it into per-thread chunks with an inner loop made it 4× slower.

The backward follows PyTorch exactly, NaN and infinities included: ReLU's gradient is its threshold_backward,
gx = 0 where x ≤ 0, else gy (so +inf and NaN pass it on); ReLU6's is hardtanh_backward on [0, 6],
gx = 0 where x ≤ 0 or x ≥ 6, else gy (NaN passes here too). None passes at the kinks themselves.
"""
import numpy as np
from numba import njit, prange


SERIAL_ELEMENTS = 1 << 15  # fewer than this run on the calling thread: waking the others costs more (a
# parallel launch alone is 1.1 µs; ReLU of 5120 float32, the small NiN's last, 1.8 → 0.7 µs on the Zen 5)


@njit(inline="always")
def _clamped(v, cap):
    return 0 if v <= 0 else (cap if v > cap else v)  # NaN stays NaN


@njit(parallel=True, cache=True)
def _clamp(x, cap, y):
    if x.size < SERIAL_ELEMENTS:
        for i in range(x.size):
            y[i] = _clamped(x[i], cap)
    else:
        for i in prange(x.size):
            y[i] = _clamped(x[i], cap)


@njit(inline="always")
def _passed(v, g, upper):
    """g where the clamp at v passes a gradient, else 0; upper is the top kink, NaN where there is none (then
    v >= upper is always false)."""
    return 0 if (v <= 0) | (v >= upper) else g


@njit(parallel=True, cache=True)
def _clamp_backward(x, gy, upper, gx):
    if x.size < SERIAL_ELEMENTS:
        for i in range(x.size):
            gx[i] = _passed(x[i], gy[i], upper)
    else:
        for i in prange(x.size):
            gx[i] = _passed(x[i], gy[i], upper)


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _clamp_backward_sums(x, gy, upper, gx, sums):
    # _clamp_backward on (N, C, L) views, and sums[n, c] = Σ_l gx[n, c, l] in float64 (reassociated, so that
    # LLVM keeps a vector of partial sums): one pass over dY where a separate sum read gx again
    n_images, channels, length = x.shape
    for plane in prange(n_images * channels):
        n, c = plane // channels, plane % channels
        total = 0.0
        for i in range(length):
            g = _passed(x[n, c, i], gy[n, c, i], upper)
            gx[n, c, i] = g
            total += g
        sums[n, c] = total


def _upper(cap, dtype):
    """The clamp's top kink as the kernels take it: NaN for ReLU, which has none (+inf passes the gradient)."""
    return dtype.type(cap if np.isfinite(cap) else np.nan)


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
    _clamp_backward(x.reshape(-1), gy.reshape(-1), _upper(cap, x.dtype), gx.reshape(-1))
    return gx if gx.shape == shape else gx.reshape(shape)  # itself where it can: a leaf may keep it as its grad


def relu_backward_bias(x, gy, cap=np.inf):
    """relu_backward of x, gy (N, C, H, W) and the per-channel sums of its result, in one pass."""
    n, c = gy.shape[:2]
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    gx, sums = np.empty_like(gy), np.empty((n, c))
    _clamp_backward_sums(x.reshape(n, c, -1), gy.reshape(n, c, -1), _upper(cap, x.dtype), gx.reshape(n, c, -1), sums)
    return gx, sums.sum(axis=0).astype(gy.dtype)
