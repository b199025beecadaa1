"""ninx: a deep-learning framework written from scratch — tensors, autograd, and its own Numba and CUDA
kernels — built to train Network-in-Network models and to show what each layer costs."""
import ninx_kernels  # noqa: F401  (fixes Numba's code generation before numba is imported)
from .distributed import set_threads_per_rank  # noqa: E402

set_threads_per_rank()  # before numba is imported: each rank mpiexec started gets its share of the cores
import numpy as np  # noqa: E402

from . import methods  # noqa: E402,F401  (installs the Tensor's operators and methods)
from . import backends, data, models, nn, optim  # noqa: E402
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: E402
from .ops.shape import Cat  # noqa: E402
from .random import generator, manual_seed  # noqa: E402
from .serialization import load, save  # noqa: E402
from .tensor import (Tensor, as_shape, from_dlpack, from_numpy, get_default_dtype, set_default_dtype,  # noqa: E402
                     tensor)

float32 = "float32"
float64 = "float64"
int64 = "int64"
long = int64

__version__ = "0.1.0"


def cat(tensors, dim=0):
    """Concatenate tensors along `dim` (Inception joins its branches along channels)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("cat: 0-d tensors cannot be concatenated; unsqueeze them first")
    dim = methods.check_dim("cat", dim, first.ndim)
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim or t.shape[:dim] + t.shape[dim + 1:] != first.shape[:dim] + first.shape[dim + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, which does not match {first.shape} "
                             f"outside dim {dim}")
        if t.dtype != first.dtype:
            raise TypeError(f"cat: tensor {i} is {t.dtype}, tensor 0 is {first.dtype}")
    return Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new axis `dim`."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    axis = methods.check_dim("stack", dim, tensors[0].ndim + 1)
    return cat([t.unsqueeze(axis) for t in tensors], axis)


def _filled(values, dtype, requires_grad, device):
    return tensor(values, dtype=dtype or get_default_dtype(), requires_grad=requires_grad, device=device)


def zeros(*shape, dtype=None, requires_grad=False, device="cpu"):
    return _filled(np.zeros(as_shape(shape)), dtype, requires_grad, device)


def ones(*shape, dtype=None, requires_grad=False, device="cpu"):
    return _filled(np.ones(as_shape(shape)), dtype, requires_grad, device)


def randn(*shape, dtype=None, requires_grad=False, device="cpu"):
    """Standard normal samples from ninx's generator (see `manual_seed`)."""
    return _filled(generator().standard_normal(as_shape(shape)), dtype, requires_grad, device)
