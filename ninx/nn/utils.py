"""Gradient clipping, as `torch.nn.utils`: applied to the `.grad` of parameters after backward."""
import math

from ..tensor import Tensor, tensor


def _with_grads(parameters):
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so their joint norm is at most max_norm; returns the norm before clipping.

    norm = (Σ_p ‖g_p‖ᵖ)^(1/p) over every parameter's gradient (the largest |g| for norm_type=inf); each g is
    multiplied by min(1, max_norm / (norm + 1e-6))."""
    norm_type = float(norm_type)
    if not math.isfinite(float(max_norm)) or max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be a finite non-negative number, got {max_norm}")
    if norm_type <= 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be positive, got {norm_type}")
    grads = [p.grad for p in _with_grads(parameters)]
    if not grads:
        return tensor(0.0)
    xp = grads[0].backend.xp
    if math.isinf(norm_type):
        total = max(float(xp.abs(g.data).max()) if g.numel() else 0.0 for g in grads)
    else:
        total = sum(float((xp.abs(g.data.astype("float64")) ** norm_type).sum()) for g in grads) ** (1 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}; "
                           f"set error_if_nonfinite=False to clip anyway")
    scale = min(1.0, float(max_norm) / (total + 1e-6))
    if scale < 1:
        for g in grads:
            g.data *= g.dtype.type(scale)
    return Tensor(xp.asarray(total, dtype=grads[0].dtype), grads[0].backend)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to [−clip_value, clip_value], in place."""
    if not math.isfinite(float(clip_value)) or clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be a finite non-negative number, got {clip_value}")
    for p in _with_grads(parameters):
        xp = p.grad.backend.xp
        xp.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)
