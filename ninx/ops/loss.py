"""Softmax, log-softmax and cross-entropy, computed with the log-sum-exp shift so no exp overflows.

    log_softmax(x)_i = x_i − m − log Σ_j exp(x_j − m),   m = max_j x_j
"""
import numpy as np

from ..autograd import Function


def _log_softmax(xp, x, dim):
    if x.shape[dim] == 0:
        return x.copy()  # an empty axis: nothing to normalise
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))


class LogSoftmax(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        self.y = _log_softmax(self.backend.xp, x, self.dim)
        return self.y

    def backward(self, gy):
        # d/dx of log_softmax: gy − softmax · Σ gy
        return gy - self.backend.xp.exp(self.y) * gy.sum(axis=self.dim, keepdims=True)


class Softmax(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        self.y = self.backend.xp.exp(_log_softmax(self.backend.xp, x, self.dim))
        return self.y

    def backward(self, gy):
        # d/dx of softmax: y · (gy − Σ y·gy)
        return self.y * (gy - (gy * self.y).sum(axis=self.dim, keepdims=True))


class CrossEntropy(Function):
    """Cross-entropy against a target distribution Q (N, classes) that already holds the class weights, label
    smoothing and ignored rows: loss_n = −Σ_c Q_nc · log softmax(logits_n)_c, then 'mean' (divided by
    `denominator`), 'sum' or 'none'. Hard labels y with weights w and smoothing ε give
    Q_nc = (1 − ε)·w_y·[c = y] + ε·w_c/C (PyTorch's definition); `denominator` is then Σ_n w_yn over the rows
    not ignored."""

    def __init__(self, target, denominator, reduction):
        self.target, self.denominator, self.reduction = target, denominator, reduction

    def forward(self, logits):
        xp = self.backend.xp
        self.logp = _log_softmax(xp, logits, 1)
        losses = -(self.target * self.logp).sum(axis=1)
        if self.reduction == "none":
            return losses
        total = losses.sum()
        if self.reduction == "sum":
            return total
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 = NaN when every row is ignored or the batch is empty, as in PyTorch
            return total / logits.dtype.type(self.denominator)

    def backward(self, gy):
        # d loss_n / d logits_n = (Σ_c Q_nc)·softmax(logits_n) − Q_n
        xp = self.backend.xp
        g = xp.exp(self.logp) * self.target.sum(axis=1, keepdims=True) - self.target
        if self.reduction == "none":
            return g * gy.reshape(-1, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = gy / g.dtype.type(self.denominator) if self.reduction == "mean" else gy
        return g * scale
