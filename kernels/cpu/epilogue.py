"""The GEMM core's epilogue on the CPU: out = clamp(Σ + bias[m], 0, cap), the fused bias and ReLU/ReLU6 of a
convolution, in one parallel pass over the output rows while they are still warm from the core's write-back
(the CUDA core does it inside its write-back)."""
import numpy as np
from numba import njit, prange

from .gemm import gemm as gemm_core


@njit(parallel=True, cache=True)
def _bias_clamp(out, bias, has_bias, low, cap):
    # out (B, M, N): v ← v + bias[m] (when given), then v ≤ low → low, v > cap → cap; NaN passes
    batches, rows, columns = out.shape
    for row in prange(batches * rows):
        o, m = row // rows, row % rows
        shift = bias[m] if has_bias else 0
        for j in range(columns):
            v = out[o, m, j] + shift
            out[o, m, j] = low if v <= low else (cap if v > cap else v)


def gemm(a, b, out, accumulate=False, bias=None, relu_cap=None):
    """out[i % Bo] (+)= Σ a[i % Ba] @ b[i % Bb], then + bias[m] and clamped to [0, relu_cap] when given."""
    gemm_core(a, b, out, accumulate)
    if (bias is not None or relu_cap is not None) and out.size:
        t = out.dtype.type
        shift = np.zeros(1, out.dtype) if bias is None else np.ascontiguousarray(bias, dtype=out.dtype)
        low, cap = (t(0), t(relu_cap)) if relu_cap is not None else (t(-np.inf), t(np.inf))
        _bias_clamp(out, shift, bias is not None, low, cap)
    return out
