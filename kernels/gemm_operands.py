"""The GEMM core's contract, checked the same way on every backend before a kernel runs."""
import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_gemm_operands(array_type, a, b, out, bias=None):
    """Raise TypeError/ValueError unless a (Ba,M,K), b (Bb,K,N), out (Bo,M,N) form a valid batched GEMM.

    Valid means: arrays of `array_type`, float32 or float64 alike, inner shapes agreeing, each batch size
    dividing the largest (out[i % Bo] (+)= Σ a[i % Ba] @ b[i % Bb]), out writeable and C-contiguous, and a
    bias, when given, of shape (M,) (a shorter one would have the write-back read past its end).
    """
    # the common case in one test (a tiny product's whole call takes a few µs), the messages below it
    if not (isinstance(a, array_type) and isinstance(b, array_type) and isinstance(out, array_type)
            and a.ndim == b.ndim == out.ndim == 3):
        for name, x in (("a", a), ("b", b), ("out", out)):
            if not isinstance(x, array_type):
                library = array_type.__module__.split(".")[0]  # "numpy" or "cupy"
                raise TypeError(f"gemm: {name} must be a {library} array, got {type(x).__name__}")
            if x.ndim != 3:
                raise ValueError(f"gemm: {name} must be 3-D (batch, rows, cols), got shape {x.shape}")
    if a.dtype not in _FLOATS:
        raise TypeError(f"gemm: a has dtype {a.dtype}; float32 or float64 needed")
    if b.dtype != a.dtype or out.dtype != a.dtype:
        raise TypeError(f"gemm: dtypes differ: a {a.dtype}, b {b.dtype}, out {out.dtype}")
    (ba, m, k), (bb, k_b, n), (bo, m_o, n_o) = a.shape, b.shape, out.shape
    if k_b != k or m_o != m or n_o != n:
        raise ValueError(f"gemm: shapes do not agree: a {a.shape} @ b {b.shape} -> out {out.shape}")
    batch = max(ba, bb, bo)
    if not (ba and bb and bo) or batch % ba or batch % bb or batch % bo:
        raise ValueError(f"gemm: batch sizes a {ba}, b {bb}, out {bo} must each divide their maximum {batch}")
    if not out.flags.c_contiguous or not getattr(out.flags, "writeable", True):
        raise ValueError(f"gemm: out {out.shape} with strides {out.strides} must be writeable and C-contiguous")
    if bias is not None and np.shape(bias) != (m,):
        raise ValueError(f"gemm: bias must have shape ({m},), one value per row of out {out.shape}; got "
                         f"{np.shape(bias)}")
