"""2-D convolution lowered onto the GEMM core, forward and backward in one Function.

Shapes: x (N, C, H, W), weight (oC, C/G, kh, kw) for G groups, output (N, oC, oh, ow), L = oh·ow,
K = (C/G)·kh·kw. Group g of image n is batch entry i = n·G + g of one batched GEMM:

    forward   Y[i]  = W[g] (oC/G × K) @ cols[i] (K × L)
    input     dcols[i] = W[g]ᵀ @ dY[i]                       then col2im (or a reshape for 1×1)
    weight    dW[g] = Σₙ dY[i] @ cols[i]ᵀ                    (the core's batch-reduce form: out[i % G])
    bias      db = Σ_{n, y, x} dY

For a 1×1 kernel with stride 1 and no padding, cols[i] *is* x[n] viewed as (C/G, H·W): each pixel's channel
vector is multiplied by the same matrix — a fully-connected layer applied at every pixel — so this path
never builds a column matrix.
"""
from ..autograd import Function


class Conv2d(Function):
    """The convolution, optionally fused with the ReLU (cap = inf) or ReLU6 (cap = 6) that follows it: the
    GEMM's write-back adds the bias and clamps, and the backward masks dY by the output's sign, which is all
    the activation's backward needs — one pass over the output instead of three."""

    def __init__(self, geometry, groups, cap=None):
        self.geometry, self.groups, self.cap = geometry, groups, cap

    @property
    def pointwise(self):
        g = self.geometry
        return (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (1, 1, 1, 1, 0, 0)

    def forward(self, x, weight, bias=None):
        g, groups, xp = self.geometry, self.groups, self.backend.xp
        out_channels, length = weight.shape[0], g.oh * g.ow
        self.empty = g.n == 0  # an empty batch: an empty output, and zero gradients for the weights
        if self.empty:
            return xp.zeros((0, out_channels, g.oh, g.ow), dtype=x.dtype)
        if self.pointwise:
            self.cols = xp.ascontiguousarray(x).reshape(g.n * groups, g.c // groups, length)
        else:
            self.cols = self.backend.im2col(x, g).reshape(g.n * groups, -1, length)
        self.w3 = weight.reshape(groups, out_channels // groups, -1)
        y = xp.empty((g.n, out_channels, length), dtype=x.dtype)
        fused = groups == 1  # the epilogue's bias is per row of W, which spans every channel only for one group
        self.backend.gemm(self.w3, self.cols, y.reshape(g.n * groups, out_channels // groups, length),
                          bias=bias if fused else None, relu_cap=self.cap if fused else None)
        if not fused and bias is not None:
            y += bias.reshape(1, -1, 1)
        if not fused and self.cap is not None:
            y = self.backend.relu(y, self.cap)
        self.y = y.reshape(g.n, out_channels, g.oh, g.ow) if self.cap is not None else None
        return y.reshape(g.n, out_channels, g.oh, g.ow)

    def backward(self, gy):
        g, groups, xp, gemm = self.geometry, self.groups, self.backend.xp, self.backend.gemm
        if self.empty:
            return tuple(xp.zeros(x.shape, dtype=gy.dtype) if wanted else None
                         for x, wanted in zip(self.inputs, self.needs_grad))
        if self.cap is not None:  # the fused activation: its mask from the output gives PyTorch's rule
            gy = self.backend.relu_backward(self.y, gy, self.cap)
        gy3 = xp.ascontiguousarray(gy).reshape(g.n * groups, -1, g.oh * g.ow)
        gx = gw = gb = None
        if self.needs_grad[0]:
            gcols = xp.empty(self.cols.shape, dtype=gy.dtype)
            gemm(self.w3.transpose(0, 2, 1), gy3, gcols)
            gx = gcols.reshape(g.input_shape) if self.pointwise else \
                self.backend.col2im(gcols.reshape(g.n, -1, g.oh * g.ow), g)
        if self.needs_grad[1]:
            gw = xp.empty(self.w3.shape, dtype=gy.dtype)
            gemm(gy3, self.cols.transpose(0, 2, 1), gw)
            gw = gw.reshape(self.inputs[1].shape)
        if len(self.needs_grad) > 2 and self.needs_grad[2]:
            gb = gy.sum(axis=(0, 2, 3))
        return gx, gw, gb
