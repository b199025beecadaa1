"""Local response normalisation across channels (Krizhevsky et al. 2012; GoogLeNet v1), PyTorch's definition.

For x (N, C, …) and a window of n channels, channel c is divided by a power of its neighbours' energy:

    S_c = Σ_{c' ∈ W(c)} x_{c'}²,   W(c) = [c − ⌊n/2⌋, c + ⌊(n − 1)/2⌋] (channels outside [0, C) read zero)
    d_c = k + (α/n)·S_c,           y_c = x_c · d_c^(−β)

Its gradient, since S_c depends on x_j for every c whose window holds j, i.e. c ∈ [j − ⌊(n − 1)/2⌋, j + ⌊n/2⌋]:

    gx_j = gy_j · d_j^(−β) − (2αβ/n) · x_j · Σ_{c : j ∈ W(c)} gy_c · x_c · d_c^(−β−1)
"""
from ..autograd import Function


def window_sum(xp, a, before, after):
    """out[:, c] = Σ a[:, c'] over c − before ≤ c' ≤ c + after, zero outside the channels (axis 1)."""
    channels = a.shape[1]
    padded = xp.zeros((a.shape[0], channels + before + after) + a.shape[2:], dtype=a.dtype)
    padded[:, before:before + channels] = a
    out = xp.zeros_like(a)
    for t in range(before + after + 1):
        out += padded[:, t:t + channels]
    return out


class LocalResponseNorm(Function):
    def __init__(self, size, alpha, beta, k):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        xp, n = self.backend.xp, self.size
        self.x = x
        self.d = self.k + self.alpha / n * window_sum(xp, x * x, n // 2, (n - 1) // 2)
        self.scale = self.d ** -self.beta
        return x * self.scale

    def backward(self, gy):
        xp, n, x = self.backend.xp, self.size, self.x
        neighbours = window_sum(xp, gy * x * self.scale / self.d, (n - 1) // 2, n // 2)
        return gy * self.scale - (2 * self.alpha * self.beta / n) * x * neighbours
