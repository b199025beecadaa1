"""Batch normalisation as one Function over the backend's batch-norm kernels.

Training normalises with the batch's own statistics and moves the running ones towards them:
    running_mean ← (1 − momentum)·running_mean + momentum·mean
    running_var  ← (1 − momentum)·running_var  + momentum·var·M/(M − 1)      (M = N·H·W: unbiased, as PyTorch)
Evaluation normalises with the running statistics, which are then constants of the op.
"""
from ..autograd import Function


class BatchNorm(Function):
    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, weight=None, bias=None):
        backend, xp = self.backend, self.backend.xp
        channels = x.shape[1]
        weight = xp.ones(channels, dtype=x.dtype) if weight is None else weight
        bias = xp.zeros(channels, dtype=x.dtype) if bias is None else bias
        if self.training:
            mean, var = backend.batch_norm_stats(x)
            if self.running_mean is not None:
                count = x.size // channels
                m = self.momentum
                self.running_mean[...] = (1 - m) * self.running_mean + m * mean
                self.running_var[...] = (1 - m) * self.running_var + m * var * (count / (count - 1))
        else:
            mean, var = self.running_mean.copy(), self.running_var  # copied: a later training step moves it
        inv_std = 1 / xp.sqrt(var + x.dtype.type(self.eps))
        self.x, self.mean, self.inv_std, self.weight = x, mean, inv_std, weight
        if x.size == 0:  # an empty batch (evaluation only: training needs values to take statistics of)
            return x.copy()
        return backend.batch_norm_forward(x, mean, inv_std, weight, bias)

    def backward(self, gy):
        if self.x.size == 0:
            zeros = self.backend.xp.zeros(self.weight.shape, dtype=gy.dtype)
            return gy.copy(), zeros, zeros.copy()
        return self.backend.batch_norm_backward(self.x, gy, self.mean, self.inv_std, self.weight, self.training)
