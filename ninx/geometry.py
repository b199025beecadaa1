"""The geometry of a 2-D sliding window (convolution or pooling), checked before any kernel runs.

Output size along one axis, for input size H, padding p, dilation d, kernel k and stride s:
    span = d·(k − 1) + 1                          (extent of the dilated kernel)
    out  = floor((H + 2p − span) / s) + 1         (ceil instead of floor in pooling's ceil_mode, where a
                                                   last window that would start inside the right padding
                                                   is dropped, as PyTorch does)
"""
from dataclasses import dataclass


def pair(value, name):
    """An int or a pair of ints as a pair; anything else is a TypeError naming the argument."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def bounded_pair(op, value, name, minimum, context=""):
    """`pair(value)` with both entries at least `minimum` (1 for sizes and strides, 0 for padding)."""
    values = pair(value, name)
    if min(values) < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {kind}, got {values}{context}")
    return values


def output_size(size, kernel, stride, padding, dilation, ceil_mode=False):
    span = dilation * (kernel - 1) + 1
    room = size + 2 * padding - span
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def padding_only_window(size, kernel, stride, padding, dilation, out):
    """Index of the first of `out` windows along an axis that holds no input element, else None.

    Only a window starting in the left padding can miss the input: its dilated taps may step over it."""
    for o in range(out):
        start = o * stride - padding
        if start >= 0:
            return None
        reach = -(start // dilation)  # the first tap at or past position 0
        if reach >= kernel or start + reach * dilation >= size:
            return o
    return None


@dataclass(frozen=True)
class Window2d:
    """Input (n, c, h, w), kernel (kh, kw), stride, padding, dilation and the resulting output (oh, ow)."""
    n: int
    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    oh: int
    ow: int

    @property
    def input_shape(self):
        return (self.n, self.c, self.h, self.w)

    @property
    def output_shape(self):
        return (self.n, self.c, self.oh, self.ow)

    @property
    def pointwise(self):
        """A 1×1 window with stride 1 and no padding: the convolution is a GEMM on the input as it lies."""
        return (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw) == (1, 1, 1, 1, 0, 0)


def window2d(op, x_shape, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """Validate a sliding window over an NCHW input and compute its output size.

    Raises ValueError/TypeError naming `op`, the argument and the shapes, for: non-positive kernel, stride
    or dilation, negative padding, and a (dilated) kernel larger than the padded input.
    """
    n, c, h, w = x_shape
    context = f" for input of shape {tuple(x_shape)}"
    (kh, kw), (sh, sw) = (bounded_pair(op, kernel_size, "kernel_size", 1, context),
                          bounded_pair(op, stride, "stride", 1, context))
    (ph, pw), (dh, dw) = (bounded_pair(op, padding, "padding", 0, context),
                          bounded_pair(op, dilation, "dilation", 1, context))
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if span_h > h + 2 * ph or span_w > w + 2 * pw:
        raise ValueError(f"{op}: kernel {(kh, kw)} (dilation {(dh, dw)}, extent {(span_h, span_w)}) is larger "
                         f"than the padded input {(h + 2 * ph, w + 2 * pw)} of input shape {tuple(x_shape)} "
                         f"with padding {(ph, pw)}")
    oh = output_size(h, kh, sh, ph, dh, ceil_mode)
    ow = output_size(w, kw, sw, pw, dw, ceil_mode)
    return Window2d(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
