"""The cuda device's kernel table: the functions of activation.py, batchnorm.py, conv.py, gemm.py and pool.py
with their first argument, the device (a GPU, or the emulator), bound."""
import functools
from types import SimpleNamespace

from . import activation, batchnorm, conv, gemm, pool

FUNCTIONS = (activation.relu, activation.relu_backward, batchnorm.batch_norm_stats, batchnorm.batch_norm_forward,
             batchnorm.batch_norm_backward, conv.im2col, conv.col2im, gemm.gemm, pool.max_pool2d,
             pool.max_pool2d_backward, pool.avg_pool2d, pool.avg_pool2d_backward)


def kernel_table(device):
    return SimpleNamespace(**{f.__name__: functools.partial(f, device) for f in FUNCTIONS})
