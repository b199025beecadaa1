"""Softmax, log-softmax and cross-entropy, computed with the log-sum-exp shift so no exp overflows.

    log_softmax(x)_i = x_i − m − log Σ_j exp(x_j − m),   m = max_j x_j
"""
from ..autograd import Function


def _log_softmax(xp, x, dim):
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
    """−log softmax(logits)[label], averaged ('mean'), summed ('sum') or per sample ('none')."""

    def __init__(self, labels, reduction):
        self.labels, self.reduction = labels, reduction

    def forward(self, logits):
        xp = self.backend.xp
        self.logp = _log_softmax(xp, logits, 1)
        rows = xp.arange(logits.shape[0])
        losses = -self.logp[rows, self.labels]
        if self.reduction == "none":
            return losses
        total = losses.sum()
        return total / logits.dtype.type(logits.shape[0]) if self.reduction == "mean" else total

    def backward(self, gy):
        # d loss_n / d logits_n = softmax(logits_n) − onehot(label_n)
        xp = self.backend.xp
        g = xp.exp(self.logp)
        g[xp.arange(g.shape[0]), self.labels] -= 1
        if self.reduction == "none":
            return g * gy.reshape(-1, 1)
        scale = gy / g.dtype.type(g.shape[0]) if self.reduction == "mean" else gy
        return g * scale
