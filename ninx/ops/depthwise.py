"""Depthwise convolution, forward and backward in one Function over the backend's direct kernels.

groups = C: output channel o = c·M + m filters input channel c alone with its own kh×kw filter (M, the channel
multiplier, is oC / C). MobileNet's depthwise 3×3 and EfficientNet's 5×5 are this op with M = 1.

    forward  y[n, o]  = w[o] ⋆ x[n, o // M]                     (⋆: the strided, padded, dilated correlation)
    input    gx[n, c] = Σ_m w[c·M + m] ⋆ᵀ gy[n, c·M + m]        (⋆ᵀ: its adjoint, each tap scattered back)
    weight   gw[o, i, j] = Σ_{n, oy, ox} gy[n, o, oy, ox] · x[n, o // M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]
    bias     gb[o] = Σ_{n, oy, ox} gy[n, o, oy, ox]
"""
from ..autograd import Function


class DepthwiseConv2d(Function):
    def __init__(self, geometry):
        self.geometry = geometry

    def forward(self, x, weight, bias=None):
        g, xp = self.geometry, self.backend.xp
        self.x, self.weight = x, weight
        if g.n == 0:
            return xp.zeros((0, weight.shape[0], g.oh, g.ow), dtype=x.dtype)
        return self.backend.depthwise_conv2d(x, weight, g, bias)

    def backward(self, gy):
        g, xp = self.geometry, self.backend.xp
        gx = gw = gb = None
        if self.needs_grad[0]:
            gx = xp.zeros(g.input_shape, dtype=gy.dtype) if g.n == 0 else \
                self.backend.depthwise_conv2d_backward_input(gy, self.weight, g)
        wants_bias = len(self.needs_grad) > 2 and self.needs_grad[2]
        if self.needs_grad[1] and wants_bias and g.n:  # both from one pass over gy's frames
            gw, gb = self.backend.depthwise_conv2d_backward_weight_bias(self.x, gy, g)
        elif self.needs_grad[1]:
            gw = xp.zeros(self.weight.shape, dtype=gy.dtype) if g.n == 0 else \
                self.backend.depthwise_conv2d_backward_weight(self.x, gy, g)
        if wants_bias and gb is None:
            gb = self.backend.conv2d_backward_bias(gy)
        return gx, gw, gb
