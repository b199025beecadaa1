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

Every other convolution builds its columns a chunk of images at a time (at most COLUMN_BYTES of them) and
keeps none: the backward builds each chunk again from x. A whole batch's columns would be K/C times the
input (25× for a 5×5 kernel: 207 MB for the small NiN's second block at batch 128), held from the forward
until the backward.
"""
from dataclasses import replace

from ..autograd import Function

COLUMN_BYTES = 8 << 20  # the most column matrix built at once: a memory bound (speed was the same at 8 MiB,
# 32 MiB and a whole batch on the 2-core Zen 5), not a cache size, so it does not follow the CPU target


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

    def chunks(self, itemsize):
        """Slices of the batch whose column matrices hold at most COLUMN_BYTES (one image at least); the whole
        batch at once for a 1×1 convolution, whose columns are a view."""
        g = self.geometry
        per_image = g.c * g.kh * g.kw * g.oh * g.ow * itemsize
        step = g.n if self.pointwise else max(1, COLUMN_BYTES // max(per_image, 1))
        return [slice(start, min(start + step, g.n)) for start in range(0, g.n, step)]

    def columns(self, x, images):
        """cols for the images `images` of x, as (images·G, K, L): a view for 1×1, else built by im2col."""
        g, groups = self.geometry, self.groups
        count = images.stop - images.start
        if self.pointwise:
            return self.backend.xp.ascontiguousarray(x[images]).reshape(count * groups, g.c // groups, g.oh * g.ow)
        return self.backend.im2col(x[images], replace(g, n=count)).reshape(count * groups, -1, g.oh * g.ow)

    def forward(self, x, weight, bias=None):
        g, groups, xp = self.geometry, self.groups, self.backend.xp
        out_channels, length = weight.shape[0], g.oh * g.ow
        self.empty = g.n == 0  # an empty batch: an empty output, and zero gradients for the weights
        if self.empty:
            return xp.zeros((0, out_channels, g.oh, g.ow), dtype=x.dtype)
        self.x = xp.ascontiguousarray(x)
        self.w3 = weight.reshape(groups, out_channels // groups, -1)
        y = xp.empty((g.n, out_channels, length), dtype=x.dtype)
        fused = groups == 1  # the epilogue's bias is per row of W, which spans every channel only for one group
        for images in self.chunks(x.dtype.itemsize):
            count = images.stop - images.start
            self.backend.gemm(self.w3, self.columns(self.x, images),
                              y[images].reshape(count * groups, out_channels // groups, length),
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
        gx = xp.empty(g.input_shape, dtype=gy.dtype) if self.needs_grad[0] else None
        gw = xp.empty(self.w3.shape, dtype=gy.dtype) if self.needs_grad[1] else None
        for number, images in enumerate(self.chunks(gy.dtype.itemsize)):
            rows = slice(images.start * groups, images.stop * groups)  # this chunk's entries of the batched GEMM
            count = images.stop - images.start
            if gw is not None:  # dW[g] (+)= Σ over this chunk's images of dY[i] @ cols[i]ᵀ
                gemm(gy3[rows], self.columns(self.x, images).transpose(0, 2, 1), gw, accumulate=number > 0)
            if gx is not None:
                gcols = xp.empty((count * groups, self.w3.shape[2], g.oh * g.ow), dtype=gy.dtype)
                gemm(self.w3.transpose(0, 2, 1), gy3[rows], gcols)
                gx[images] = gcols.reshape(gx[images].shape) if self.pointwise else \
                    self.backend.col2im(gcols.reshape(count, -1, g.oh * g.ow), replace(g, n=count))
        if gw is not None:
            gw = gw.reshape(self.inputs[1].shape)
        gb = gy.sum(axis=(0, 2, 3)) if len(self.needs_grad) > 2 and self.needs_grad[2] else None
        return gx, gw, gb
