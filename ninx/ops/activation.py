"""ReLU and ReLU6 (one clamp kernel with a cap), the logistic sigmoid and SiLU, the hard (piecewise-linear)
activations, and dropout. The elementwise ones past the clamp are a few array-module (`xp`) expressions, one
code path for numpy and cupy."""
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


def logistic(xp, x):
    """σ(x) = 1 / (1 + e^(−x)), computed from e^(−|x|) ≤ 1 so nothing overflows: σ(±100) is 1 and 0."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    """σ(x); dσ/dx = σ(1 − σ)."""

    def forward(self, x):
        self.y = logistic(self.backend.xp, x)
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class SiLU(Function):
    """SiLU (swish), y = x·σ(x) (Ramachandran et al. 2017; EfficientNet's activation).

    dy/dx = σ + x·σ(1 − σ) = σ·(1 + x·(1 − σ)); with the stable σ, finite at any x (the gradient is 0 at −∞
    and 1 at +∞)."""

    def forward(self, x):
        self.x, self.s = x, logistic(self.backend.xp, x)
        return x * self.s

    def backward(self, gy):
        return gy * self.s * (1 + self.x * (1 - self.s))


class Hardtanh(Function):
    """y = min(max(x, low), high); the gradient passes where low < x < high (none at the kinks, as PyTorch)."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        self.x = x
        return self.backend.xp.clip(x, self.low, self.high).astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * ((self.x > self.low) & (self.x < self.high))


class Hardsigmoid(Function):
    """The piecewise-linear sigmoid, y = relu6(x + 3) / 6: 0 below −3, 1 above 3, x/6 + 1/2 between (MobileNetV3).

    dy/dx = 1/6 on the open interval (−3, 3), 0 elsewhere (PyTorch's rule at ±3)."""

    def forward(self, x):
        self.x = x
        return (self.backend.xp.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * ((self.x > -3) & (self.x < 3)) / 6


class Hardswish(Function):
    """y = x·relu6(x + 3) / 6: 0 below −3, x above 3, x·(x + 3)/6 between (MobileNetV3's swish).

    dy/dx = 0 for x ≤ −3, (2x + 3)/6 = x/3 + 1/2 for −3 < x < 3, 1 for x ≥ 3 (PyTorch 2's rule at ±3)."""

    def forward(self, x):
        self.x = x
        return (x * self.backend.xp.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)

    def backward(self, gy):
        xp, x = self.backend.xp, self.x
        slope = xp.where(x <= -3, 0, xp.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype, copy=False)
        return gy * slope
