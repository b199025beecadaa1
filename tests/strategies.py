"""Hypothesis strategies for ninx's tests: conv and pool geometries (valid, and invalid on purpose), tensor
layouts that reach an op as non-contiguous views made inside ninx, and broadcastable shapes.

Cases hold shapes and options plus a seed; the values come from `values(shape, seed)` so every example
is cheap to build and small (N ≤ 3, C ≤ 6, H, W ≤ 9).
"""
import dataclasses
from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from references import pool_windows_nonempty

DTYPES = (np.float32, np.float64)
dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**32 - 1)


def values(shape, seed, low=None, high=None):
    """float64 standard-normal values (or uniform in [low, high)) for `shape`, from `seed`."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) if low is None else rng.uniform(low, high, shape)


# ---- layouts: how a tensor reaches an op --------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """A leaf array `store(a)` and ninx ops `view(t)` that turn its tensor back into one equal to `a`.

    'contiguous' passes `a` as it is; 'permuted' stores the axes in another order and permutes them back;
    'strided' stores `a` at every other position of a doubled axis (NaN between) and slices with step 2;
    'flipped' stores an axis reversed and reverses it back (a negative stride).
    """
    kind: str
    perm: tuple = ()
    axis: int = 0

    def store(self, a):
        if self.kind == "permuted":
            return np.ascontiguousarray(a.transpose(self.perm))
        if self.kind == "strided":
            shape = list(a.shape)
            shape[self.axis] *= 2
            out = np.full(shape, np.nan)
            out[self._index(slice(None, None, 2), a.ndim)] = a
            return out
        if self.kind == "flipped":
            return np.ascontiguousarray(a[self._index(slice(None, None, -1), a.ndim)])
        return a

    def view(self, t):
        if self.kind == "permuted":
            return t.permute(tuple(int(i) for i in np.argsort(self.perm)))
        if self.kind == "strided":
            return t[self._index(slice(None, None, 2), t.ndim)]
        if self.kind == "flipped":
            return t[self._index(slice(None, None, -1), t.ndim)]
        return t

    def _index(self, step, ndim):
        return tuple(step if i == self.axis else slice(None) for i in range(ndim))


def layouts(ndim):
    """Any layout of an `ndim`-dimensional tensor: contiguous, or a non-contiguous view made in ninx."""
    axes = st.integers(0, max(ndim - 1, 0))
    if ndim == 0:
        return st.just(Layout("contiguous"))
    return st.one_of(
        st.just(Layout("contiguous")),
        st.permutations(range(ndim)).map(lambda p: Layout("permuted", perm=tuple(p))),
        axes.map(lambda a: Layout("strided", axis=a)),
        axes.map(lambda a: Layout("flipped", axis=a)),
    )


@st.composite
def int_or_pair(draw, ints):
    """A value per axis, drawn independently; equal ones are spelled as one int or as a pair (both spellings
    of an argument get exercised)."""
    h, w = draw(ints), draw(ints)
    return h if h == w and draw(st.booleans()) else (h, w)


def as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---- convolution ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvCase:
    x_shape: tuple
    w_shape: tuple
    bias: bool
    stride: object
    padding: object
    dilation: object
    groups: int
    dtype: type
    seed: int
    x_layout: Layout = Layout("contiguous")
    w_layout: Layout = Layout("contiguous")
    w_dtype: type = None
    b_shape: tuple = None

    @property
    def options(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def arrays(self):
        """(x, w, b) in float64; b is None without bias."""
        x = values(self.x_shape, self.seed)
        w = values(self.w_shape, self.seed + 1) / np.sqrt(max(1, int(np.prod(self.w_shape[1:]))))
        b = values(self.b_shape or self.w_shape[:1], self.seed + 2) if self.bias else None
        return x, w, b


@st.composite
def conv_cases(draw, bias=None):
    """A valid conv2d: groups dividing both channel counts, a dilated kernel no larger than the padded input.

    `bias` fixes whether there is one (tests parametrise it so that both are always covered)."""
    groups = draw(st.integers(1, 3))
    c, oc = groups * draw(st.integers(1, 6 // groups)), groups * draw(st.integers(1, 6 // groups))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(int_or_pair(st.integers(1, 3)))
    padding = draw(int_or_pair(st.integers(0, 2)))
    dilation = draw(int_or_pair(st.integers(1, 2)))
    (ph, pw), (dh, dw) = as_pair(padding), as_pair(dilation)
    low_h, low_w = max(1, dh * (kh - 1) + 1 - 2 * ph), max(1, dw * (kw - 1) + 1 - 2 * pw)
    h, w = draw(st.integers(low_h, max(low_h, 9))), draw(st.integers(low_w, max(low_w, 9)))
    return ConvCase(x_shape=(draw(st.integers(1, 3)), c, h, w), w_shape=(oc, c // groups, kh, kw),
                    bias=draw(st.booleans()) if bias is None else bias, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, dtype=draw(dtypes), seed=draw(seeds),
                    x_layout=draw(layouts(4)), w_layout=draw(layouts(4)))


@dataclass(frozen=True)
class Invalid:
    """A call that must fail: the broken case, the exception type and words its message must contain."""
    case: object
    fault: str
    error: type
    words: tuple


def _shape(t):
    return str(tuple(t))


CONV_FAULTS = ("rank", "channels", "groups", "groups_zero", "kernel", "stride", "dilation", "padding", "dtype",
               "bias")


@st.composite
def invalid_conv_cases(draw, fault):
    """A valid conv2d case with exactly one thing broken: `fault`, one of CONV_FAULTS."""
    case = draw(conv_cases())
    x, w = case.x_shape, case.w_shape
    if fault == "rank":
        x = draw(st.sampled_from([x[1:], x + (2,)]))
        return Invalid(dataclasses.replace(case, x_shape=x, x_layout=Layout("contiguous")), fault, ValueError,
                       ("input", _shape(x)))
    if fault == "channels":
        x = (x[0], x[1] + draw(st.integers(1, 2)) * case.groups) + x[2:]
        return Invalid(dataclasses.replace(case, x_shape=x), fault, ValueError, ("weight", _shape(w), _shape(x)))
    if fault == "groups":
        groups = draw(st.integers(2, 7).filter(lambda g: x[1] % g or w[0] % g))
        return Invalid(dataclasses.replace(case, groups=groups), fault, ValueError, ("groups", _shape(x), _shape(w)))
    if fault == "groups_zero":
        return Invalid(dataclasses.replace(case, groups=draw(st.integers(-2, 0))), fault, ValueError, ("groups",))
    if fault == "kernel":
        (ph, pw), (dh, dw) = as_pair(case.padding), as_pair(case.dilation)
        axis = draw(st.integers(0, 1))
        room = (x[2] + 2 * ph, x[3] + 2 * pw)[axis]
        k = room // (dh, dw)[axis] + 2  # extent (k − 1)·d + 1 > room
        w = w[:2] + ((k, w[3]) if axis == 0 else (w[2], k))
        return Invalid(dataclasses.replace(case, w_shape=w), fault, ValueError, ("kernel", _shape(x)))
    if fault in ("stride", "dilation"):
        bad = draw(st.integers(-2, 0))
        value = draw(st.sampled_from([bad, (bad, 1), (1, bad)]))
        return Invalid(dataclasses.replace(case, **{fault: value}), fault, ValueError, (fault, _shape(x)))
    if fault == "padding":
        value = draw(st.sampled_from([-1, (-1, 0), (0, -2)]))
        return Invalid(dataclasses.replace(case, padding=value), fault, ValueError, ("padding", _shape(x)))
    if fault == "dtype":
        other = np.float64 if case.dtype == np.float32 else np.float32
        return Invalid(dataclasses.replace(case, w_dtype=other), fault, TypeError,
                       ("weight", _shape(w), _shape(x), np.dtype(other).name))
    assert fault == "bias", fault
    b = (w[0] + draw(st.integers(1, 2)),)
    return Invalid(dataclasses.replace(case, bias=True, b_shape=b), fault, ValueError, ("bias", _shape(b)))


# ---- pooling ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolCase:
    x_shape: tuple
    kernel_size: object
    stride: object
    padding: object
    dilation: object
    ceil_mode: bool
    dtype: type
    seed: int
    layout: Layout = Layout("contiguous")
    count_include_pad: bool = True
    divisor_override: object = None

    @property
    def max_options(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode)

    @property
    def avg_options(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)


def pool_is_valid(h, w, kernel_size, stride, padding, dilation, ceil_mode):
    """PyTorch's rules: padding at most half the kernel, the dilated kernel within the padded input, and
    (what PyTorch does not check, but a window of padding alone has no maximum) every window touching the input."""
    (kh, kw), (ph, pw), (dh, dw) = as_pair(kernel_size), as_pair(padding), as_pair(dilation)
    (sh, sw) = as_pair(stride if stride is not None else kernel_size)
    if min(kh, kw, sh, sw, dh, dw) <= 0 or min(ph, pw) < 0 or ph > kh // 2 or pw > kw // 2:
        return False
    if dh * (kh - 1) + 1 > h + 2 * ph or dw * (kw - 1) + 1 > w + 2 * pw:
        return False
    return (pool_windows_nonempty(h, kh, sh, ph, dh, ceil_mode)
            and pool_windows_nonempty(w, kw, sw, pw, dw, ceil_mode))


@st.composite
def pool_cases(draw, dilated=True, ceil_mode=None, count_include_pad=None):
    """A valid max/avg pooling (avg cases have dilation 1 and draw count_include_pad and divisor_override).

    `ceil_mode` and `count_include_pad` may be fixed (tests parametrise them so that both are always covered)."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), int_or_pair(st.integers(1, 3))))
    padding = draw(st.one_of(st.integers(0, min(kh, kw) // 2),
                             st.tuples(st.integers(0, kh // 2), st.integers(0, kw // 2))))
    dilation = draw(int_or_pair(st.integers(1, 3))) if dilated else 1
    (ph, pw), (dh, dw) = as_pair(padding), as_pair(dilation)
    low_h, low_w = max(1, dh * (kh - 1) + 1 - 2 * ph), max(1, dw * (kw - 1) + 1 - 2 * pw)
    assume(low_h <= 9 and low_w <= 9)
    h, w = draw(st.integers(low_h, 9)), draw(st.integers(low_w, 9))
    ceil_mode = draw(st.booleans()) if ceil_mode is None else ceil_mode
    assume(pool_is_valid(h, w, (kh, kw), stride, padding, dilation, ceil_mode))
    kernel_size = kh if kh == kw and draw(st.booleans()) else (kh, kw)
    return PoolCase(x_shape=(draw(st.integers(1, 3)), draw(st.integers(1, 4)), h, w), kernel_size=kernel_size,
                    stride=stride, padding=padding, dilation=dilation,
                    ceil_mode=ceil_mode, dtype=draw(dtypes), seed=draw(seeds), layout=draw(layouts(4)),
                    count_include_pad=draw(st.booleans()) if count_include_pad is None else count_include_pad,
                    divisor_override=draw(st.one_of(st.none(), st.integers(1, 5))) if not dilated else None)


POOL_FAULTS = ("rank", "kernel_zero", "stride", "dilation", "padding_negative", "padding_half", "kernel",
               "empty_window", "divisor", "integer_input")


@st.composite
def invalid_pool_cases(draw, fault):
    """A valid pooling with one thing broken: `fault`, one of POOL_FAULTS ('dilation' and 'empty_window' only
    for max pooling, 'divisor' only for average pooling)."""
    case = draw(pool_cases())
    x = case.x_shape
    (kh, kw) = as_pair(case.kernel_size)
    if fault == "rank":
        x = draw(st.sampled_from([x[1:], x + (2,)]))
        return Invalid(dataclasses.replace(case, x_shape=x, layout=Layout("contiguous")), fault, ValueError,
                       ("input", _shape(x)))
    if fault == "kernel_zero":
        return Invalid(dataclasses.replace(case, kernel_size=(0, kw), padding=0), fault, ValueError,
                       ("kernel_size", _shape(x)))
    if fault in ("stride", "dilation"):
        bad = draw(st.integers(-2, 0))
        return Invalid(dataclasses.replace(case, **{fault: draw(st.sampled_from([bad, (1, bad)]))}), fault,
                       ValueError, (fault, _shape(x)))
    if fault == "padding_negative":
        return Invalid(dataclasses.replace(case, padding=(-1, 0)), fault, ValueError, ("padding", _shape(x)))
    if fault == "padding_half":
        return Invalid(dataclasses.replace(case, padding=(kh // 2 + 1, 0)), fault, ValueError,
                       ("padding", "kernel", _shape(x)))
    if fault == "kernel":
        big = x[2] + 2 * (kh // 2) + 1
        return Invalid(dataclasses.replace(case, kernel_size=(big, kw), dilation=1, padding=0, stride=1), fault,
                       ValueError, ("kernel", _shape(x)))
    if fault == "empty_window":
        # height 1, kernel 2 dilated by 2, padding 1: the only window reads rows −1 and 1, both padding
        x = x[:2] + (1, x[3])
        return Invalid(dataclasses.replace(case, x_shape=x, kernel_size=(2, 1), dilation=2, padding=(1, 0),
                                           stride=1, ceil_mode=False), fault, ValueError, ("padding", _shape(x)))
    if fault == "divisor":
        return Invalid(dataclasses.replace(case, divisor_override=draw(st.integers(-1, 0))), fault, ValueError,
                       ("divisor_override",))
    assert fault == "integer_input", fault
    return Invalid(dataclasses.replace(case, dtype=np.int64, layout=Layout("contiguous")), fault, TypeError,
                   ("input", "int64", _shape(x)))


# ---- shapes ------------------------------------------------------------------------------------------------

broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)
small_shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


@st.composite
def reductions(draw):
    """(shape, dim, keepdim): dim is None, one axis (maybe negative) or a tuple of distinct axes."""
    shape = draw(small_shapes)
    nd = len(shape)
    dim = draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                         st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple)))
    return shape, dim, draw(st.booleans())


@st.composite
def matmul_shapes(draw):
    """Operand shapes for `a @ b`: either may be 1-D; batch axes of different ranks that broadcast."""
    m, k, n = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    batch_a, batch_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)).input_shapes
    a = (k,) if draw(st.booleans()) and not batch_a else batch_a + (m, k)
    b = (k,) if draw(st.booleans()) and not batch_b else batch_b + (k, n)
    return a, b
