"""ReLU and ReLU6 (one clamp kernel with a cap), the logistic sigmoid, and dropout."""
from ..autograd import Function


class Clamp(Function):
    """y = min(max(x, 0), cap); the gradient passes where 0 < x < cap."""

    def __init__(self, cap):
        self.cap = cap

    def forward(self, x):
        self.x = x
        return self.backend.relu(x, self.cap)

    def backward(self, gy):
        return self.backend.relu_backward(self.x, gy, self.cap)


class Dropout(Function):
    """Multiply by a kept-mask scaled by 1/(1 − p), so the expected activation is unchanged."""

    def __init__(self, mask):
        self.mask = mask

    def forward(self, x):
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


class Sigmoid(Function):
    """σ(x) = 1 / (1 + e^(−x)), computed from e^(−|x|) ≤ 1 so nothing overflows: σ(±100) is 1 and 0.

    dσ/dx = σ(1 − σ)."""

    def forward(self, x):
        xp = self.backend.xp
        e = xp.exp(-xp.abs(x))
        self.y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)
