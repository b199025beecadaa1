"""Max and average pooling Functions over the backend's pooling kernels."""
from ..autograd import Function


class MaxPool2d(Function):
    """Window maxima; the gradient goes to the first maximum of each window (kept as an index)."""

    def __init__(self, geometry):
        self.geometry = geometry

    def forward(self, x):
        y, self.argmax = self.backend.max_pool2d(x, self.geometry)
        return y

    def backward(self, gy):
        return self.backend.max_pool2d_backward(gy, self.argmax, self.geometry)


class AvgPool2d(Function):
    """Window means with PyTorch's divisor rules (count_include_pad, divisor_override)."""

    def __init__(self, geometry, count_include_pad, divisor_override):
        self.geometry = geometry
        self.options = (count_include_pad, divisor_override or 0)

    def forward(self, x):
        return self.backend.avg_pool2d(x, self.geometry, *self.options)

    def backward(self, gy):
        return self.backend.avg_pool2d_backward(gy, self.geometry, *self.options)
