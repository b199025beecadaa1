"""Elementwise arithmetic with numpy broadcasting; gradients are summed back to each input's shape."""
from ..autograd import Function


def sum_to(g, shape):
    """Reduce gradient `g` to `shape` by summing over the axes that broadcasting expanded."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        ga = sum_to(gy * self.b, self.a.shape) if self.needs_grad[0] else None
        gb = sum_to(gy * self.a, self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = sum_to(gy / self.b, self.a.shape) if self.needs_grad[0] else None
        gb = sum_to(-gy * self.a / (self.b * self.b), self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """x ** p for a python-number exponent p; d/dx = p·x^(p-1)."""

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        self.x = x
        return x ** x.dtype.type(self.exponent)

    def backward(self, gy):
        p = self.x.dtype.type(self.exponent)
        return gy * p * self.x ** (p - 1)


class Exp(Function):
    def forward(self, x):
        self.y = self.backend.xp.exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return self.backend.xp.log(x)

    def backward(self, gy):
        return gy / self.x


class Cast(Function):
    """Change of dtype; the gradient is cast back."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.source = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.source)


class Abs(Function):
    """|x|; the gradient is sign(x), 0 at 0 (as PyTorch)."""

    def forward(self, x):
        self.x = x
        return self.backend.xp.abs(x)

    def backward(self, gy):
        return gy * self.backend.xp.sign(self.x)


class Sqrt(Function):
    def forward(self, x):
        self.y = self.backend.xp.sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Clip(Function):
    """clamp(x, min, max) for python-number bounds (either may be None); the gradient passes where
    min ≤ x ≤ max, bounds included (PyTorch's rule)."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        self.x, t = x, x.dtype.type
        y = x
        if self.low is not None:
            y = self.backend.xp.maximum(y, t(self.low))
        if self.high is not None:
            y = self.backend.xp.minimum(y, t(self.high))
        return y if y is not x else x.copy()

    def backward(self, gy):
        inside = self.backend.xp.ones(self.x.shape, dtype=bool)
        if self.low is not None:
            inside &= self.x >= self.low
        if self.high is not None:
            inside &= self.x <= self.high
        return gy * inside


class Clone(Function):
    """A copy that stays in the graph: the gradient passes unchanged."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy
