"""2-D convolution, forward and backward in one Function, on the backend's conv2d kernels.

Shapes: x (N, C, H, W), weight (oC, C/G, kh, kw) for G groups, output (N, oC, oh, ow). Each backend lowers
it onto its GEMM core — both as implicit GEMMs that gather the windows from x block by block (the CPU's in
kernels/cpu/conv.py and windows.py, CUDA's in kernels/cuda/conv.py and conv.cu) — and runs a 1×1 stride-1
unpadded convolution as the GEMM itself: each pixel's channel vector times the same matrix, a
fully-connected layer applied at every pixel. Gradients, as GEMMs:

    input     dx = col2im(Wᵀ @ dY)          weight    dW = Σₙ dY[n] @ cols[n]ᵀ          bias   db = Σ_{n,y,x} dY
"""
from ..autograd import Function


class Conv2d(Function):
    """The convolution, optionally fused with the ReLU (cap = inf) or ReLU6 (cap = 6) that follows it: the
    GEMM's write-back adds the bias and clamps, and the backward masks dY by the output's sign, which is all
    the activation's backward needs — one pass over the output instead of three — and sums the masked dY
    per channel for the bias in that same pass (`relu_backward_bias`: the small NiN's step 1.8% faster)."""

    def __init__(self, geometry, groups, cap=None):
        self.geometry, self.groups, self.cap = geometry, groups, cap

    def forward(self, x, weight, bias=None):
        g, xp = self.geometry, self.backend.xp
        self.empty = g.n == 0  # an empty batch: an empty output, and zero gradients for the weights
        if self.empty:
            return xp.zeros((0, weight.shape[0], g.oh, g.ow), dtype=x.dtype)
        self.x, self.weight = xp.ascontiguousarray(x), weight
        y = self.backend.conv2d(self.x, weight, g, self.groups, bias=bias, relu_cap=self.cap)
        self.y = y if self.cap is not None else None
        return y

    def backward(self, gy):
        g, xp = self.geometry, self.backend.xp
        if self.empty:
            return tuple(xp.zeros(x.shape, dtype=gy.dtype) if wanted else None
                         for x, wanted in zip(self.inputs, self.needs_grad))
        wants_bias = len(self.needs_grad) > 2 and self.needs_grad[2]
        gb = None
        if self.cap is not None and wants_bias:  # the activation's mask (PyTorch's rule) and db in one pass
            gy, gb = self.backend.relu_backward_bias(self.y, gy, self.cap)
        elif self.cap is not None:
            gy = self.backend.relu_backward(self.y, gy, self.cap)
        elif wants_bias:
            gb = self.backend.conv2d_backward_bias(gy)
        gx = self.backend.conv2d_backward_input(gy, self.weight, g, self.groups) if self.needs_grad[0] else None
        gw = self.backend.conv2d_backward_weight(self.x, gy, g, self.groups) if self.needs_grad[1] else None
        return gx, gw, gb
