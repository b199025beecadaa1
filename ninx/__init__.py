"""ninx: a deep-learning framework written from scratch — tensors, autograd, and its own Numba and CUDA
kernels — built to train Network-in-Network models and to show what each layer costs."""
import ninx_kernels  # noqa: F401  (fixes Numba's code generation before numba is imported)
import numpy as np

from . import models, nn, optim  # noqa: E402
from .autograd import is_grad_enabled, no_grad  # noqa: E402
from .random import manual_seed  # noqa: E402
from .tensor import Tensor, as_shape, tensor  # noqa: E402

float32 = "float32"
float64 = "float64"
int64 = "int64"

__version__ = "0.1.0"


def cat(tensors, dim=0):
    """Concatenate tensors along `dim` (Inception joins its branches along channels)."""
    from .ops.shape import Cat
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    first = tensors[0]
    dim = dim % max(first.ndim, 1)
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim or t.shape[:dim] + t.shape[dim + 1:] != first.shape[:dim] + first.shape[dim + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, which does not match {first.shape} "
                             f"outside dim {dim}")
        if t.dtype != first.dtype:
            raise TypeError(f"cat: tensor {i} is {t.dtype}, tensor 0 is {first.dtype}")
    return Cat.apply(*tensors, dim=dim)


def zeros(*shape, dtype="float32", requires_grad=False, device="cpu"):
    return tensor(np.zeros(as_shape(shape)), dtype=dtype, requires_grad=requires_grad, device=device)


def ones(*shape, dtype="float32", requires_grad=False, device="cpu"):
    return tensor(np.ones(as_shape(shape)), dtype=dtype, requires_grad=requires_grad, device=device)


def randn(*shape, dtype="float32", requires_grad=False, device="cpu"):
    """Standard normal samples from ninx's generator (see `manual_seed`)."""
    from .random import generator
    return tensor(generator().standard_normal(as_shape(shape)), dtype=dtype, requires_grad=requires_grad, device=device)
