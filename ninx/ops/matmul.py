"""Matrix product on the GEMM core, with numpy's rules for 1-D operands and broadcast batch axes."""
import numpy as np

from ..autograd import Function
from .arithmetic import sum_to


def batched(backend, a, b):
    """a (…, M, K) @ b (…, K, N) on the GEMM core; broadcast batch axes are materialised only if needed."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    count = int(np.prod(batch, dtype=np.int64))
    out = backend.xp.empty(batch + (a.shape[-2], b.shape[-1]), dtype=a.dtype)
    operands = [x.reshape((int(np.prod(x.shape[:-2], dtype=np.int64)),) + x.shape[-2:]) if x.shape[:-2] in ((), batch)
                else backend.xp.broadcast_to(x, batch + x.shape[-2:]).reshape((count,) + x.shape[-2:]) for x in (a, b)]
    if out.size:
        backend.gemm(*operands, out.reshape((count,) + out.shape[-2:]))
    elif a.shape[-1] == 0 or out.size == 0:
        out[...] = 0  # an empty sum is zero (K = 0); an empty output has nothing to compute
    return out


class MatMul(Function):
    """y = a @ b for operands of rank ≥ 2; ga = gy @ bᵀ, gb = aᵀ @ gy, summed over broadcast axes."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return batched(self.backend, a, b)

    def backward(self, gy):
        ga = gb = None
        if self.needs_grad[0]:
            ga = sum_to(batched(self.backend, gy, self.b.swapaxes(-1, -2)), self.a.shape)
        if self.needs_grad[1]:
            gb = sum_to(batched(self.backend, self.a.swapaxes(-1, -2), gy), self.b.shape)
        return ga, gb


def matmul(a, b):
    """`a @ b` with numpy semantics: a 1-D operand is promoted to a matrix and the extra axis removed."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs operands of at least 1 dimension, got shapes {a.shape} and {b.shape}")
    a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: inner dimensions differ: a {a.shape} @ b {b.shape}")
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions do not broadcast: a {a.shape} @ b {b.shape}") from None
    y = MatMul.apply(a2, b2)
    if a.ndim == 1:
        y = y.reshape(y.shape[:-2] + y.shape[-1:])
    if b.ndim == 1:
        y = y.reshape(y.shape[:-1])
    return y
