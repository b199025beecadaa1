"""Independent references for ninx's ops, in float64 numpy, written from each op's definition.

Nothing here imports ninx: convolution and pooling are explicit loops over window positions, products are
einsums, and the pooling rules (output size, ceil_mode, padding and the divisor) follow PyTorch's documented
behaviour, re-derived window by window rather than from the closed-form formulas ninx uses.
"""
import numpy as np


def f64(a):
    return np.asarray(a, dtype=np.float64)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---- sliding windows ----------------------------------------------------------------------------------

def window_starts(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """Start positions (in unpadded coordinates) of the windows along one axis.

    floor mode: every window that lies wholly inside the padded input [−p, size + p).
    ceil mode: also one last window hanging over the right edge, when elements remain uncovered, unless it
    would start in the right padding (PyTorch: windows must start inside the input or the left padding).
    """
    span = dilation * (kernel - 1) + 1
    starts, start = [], -padding
    while start + span <= size + padding:
        starts.append(start)
        start += stride
    last_covered = starts[-1] + span if starts else -padding
    if ceil_mode and last_covered < size + padding and start < size:
        starts.append(start)
    return starts


def window_positions(start, kernel, dilation=1):
    return [start + i * dilation for i in range(kernel)]


def pool_windows_nonempty(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """True when every window along the axis holds at least one input element."""
    return all(any(0 <= r < size for r in window_positions(s, kernel, dilation))
               for s in window_starts(size, kernel, stride, padding, dilation, ceil_mode))


# ---- convolution ----------------------------------------------------------------------------------

def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, o, oy, ox] = b[o] + Σ_{c, i, j} w[o, c, i, j] · xpad[n, g·C/G + c, oy·sh + i·dh, ox·sw + j·dw],
    where g = o // (oC/G) is o's group and xpad is x with `padding` zeros on each side."""
    x, w = f64(x), f64(w)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    xpad = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xpad[:, :, ph:ph + h, pw:pw + wd] = x
    oh = len(window_starts(h, kh, sh, ph, dh))
    ow = len(window_starts(wd, kw, sw, pw, dw))
    y = np.zeros((n, oc, oh, ow))
    og = oc // groups
    for g in range(groups):
        xs = xpad[:, g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, g * og:(g + 1) * og] += np.einsum("ncyx,oc->noyx", patch, ws[:, :, i, j])
    if b is not None:
        y += f64(b).reshape(1, -1, 1, 1)
    return y


def conv2d_gradients(x, w, gy, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw) of conv2d for output gradient gy: the adjoint of each tap's einsum in conv2d above, added
    into the padded input's windows and cropped."""
    x, w, gy = f64(x), f64(w), f64(gy)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    _, _, oh, ow = gy.shape
    xpad = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xpad[:, :, ph:ph + h, pw:pw + wd] = x
    gxpad, gw = np.zeros_like(xpad), np.zeros(w.shape)
    og = oc // groups
    for g in range(groups):
        channels, outputs = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        for i in range(kh):
            for j in range(kw):
                window = (slice(None), channels, slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                          slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))
                gw[outputs, :, i, j] = np.einsum("noyx,ncyx->oc", gy[:, outputs], xpad[window])
                gxpad[window] += np.einsum("noyx,oc->ncyx", gy[:, outputs], w[outputs, :, i, j])
    return gxpad[:, :, ph:ph + h, pw:pw + wd], gw


# ---- pooling ----------------------------------------------------------------------------------------

def _pool_loop(x, kernel_size, stride, padding, dilation, ceil_mode, visit):
    """Call visit(n, c, oy, ox, rows, cols) for every output position; returns the output shape."""
    (kh, kw), (sh, sw) = pair(kernel_size), pair(stride if stride is not None else kernel_size)
    (ph, pw), (dh, dw) = pair(padding), pair(dilation)
    n, c, h, w = x.shape
    ys = window_starts(h, kh, sh, ph, dh, ceil_mode)
    xs = window_starts(w, kw, sw, pw, dw, ceil_mode)
    for a in range(n):
        for ch in range(c):
            for oy, y0 in enumerate(ys):
                for ox, x0 in enumerate(xs):
                    visit(a, ch, oy, ox, window_positions(y0, kh, dh), window_positions(x0, kw, dw))
    return (n, c, len(ys), len(xs))


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, where): window maxima over input elements only (padding never wins), and for each output the
    (row, col) of the FIRST maximum met in row-major window order."""
    x = f64(x)
    found = {}

    def visit(n, c, oy, ox, rows, cols):
        best = None
        for r in rows:
            for q in cols:
                if 0 <= r < x.shape[2] and 0 <= q < x.shape[3] and (best is None or x[n, c, r, q] > best[0]):
                    best = (x[n, c, r, q], r, q)
        found[n, c, oy, ox] = best

    shape = _pool_loop(x, kernel_size, stride, padding, dilation, ceil_mode, visit)
    y = np.zeros(shape)
    where = np.zeros(shape + (2,), dtype=np.int64)
    for key, (value, r, q) in found.items():
        y[key], where[key] = value, (r, q)
    return y, where


def max_pool2d_grad(x_shape, gy, where):
    """Each output's gradient added to the input element it took its maximum from."""
    gx = np.zeros(x_shape)
    for key in np.ndindex(*gy.shape):
        r, q = where[key]
        gx[key[0], key[1], r, q] += gy[key]
    return gx


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Window sums over input elements divided by PyTorch's divisor: `divisor_override` if given; else the
    number of window positions inside the padded input [−p, size + p) (count_include_pad) or inside the input."""
    x = f64(x)
    n, c, h, w = x.shape
    (ph, pw) = pair(padding)
    out = {}

    def visit(a, ch, oy, ox, rows, cols):
        total, real, padded = 0.0, 0, 0
        for r in rows:
            for q in cols:
                if -ph <= r < h + ph and -pw <= q < w + pw:
                    padded += 1
                if 0 <= r < h and 0 <= q < w:
                    real += 1
                    total += x[a, ch, r, q]
        divisor = divisor_override or (padded if count_include_pad else real)
        out[a, ch, oy, ox] = total / divisor

    y = np.zeros(_pool_loop(x, kernel_size, stride, padding, 1, ceil_mode, visit))
    for key, value in out.items():
        y[key] = value
    return y


# ---- activations, losses, products ----------------------------------------------------------------------

def relu(x):
    return np.where(f64(x) > 0, f64(x), 0.0)


def relu6(x):
    return np.clip(f64(x), 0.0, 6.0)


def log_softmax(x, dim):
    """x_i − log Σ_j exp(x_j), the log-sum-exp taken pairwise by np.logaddexp (no overflow for any x)."""
    x = f64(x)
    return x - np.logaddexp.reduce(x, axis=dim, keepdims=True)


def softmax(x, dim):
    return np.exp(log_softmax(x, dim))


def cross_entropy(logits, labels, reduction="mean"):
    losses = -log_softmax(logits, 1)[np.arange(len(labels)), labels]
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


def cross_entropy_grad(logits, labels, reduction="mean"):
    """d(loss)/d(logits) for an upstream gradient of ones: softmax − onehot, divided by N for 'mean'."""
    g = softmax(logits, 1)
    g[np.arange(len(labels)), labels] -= 1
    return g / len(labels) if reduction == "mean" else g


def matmul(a, b):
    """numpy's matmul rules from their definition: 1-D operands promoted, batch axes broadcast."""
    a, b = f64(a), f64(b)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    y = np.einsum("...ik,...kj->...ij", a2, b2)
    if a.ndim == 1:
        y = y[..., 0, :]
    if b.ndim == 1:
        y = y[..., 0]
    return y


def linear(x, w, b=None):
    y = np.einsum("...i,oi->...o", f64(x), f64(w))
    return y + f64(b) if b is not None else y


# ---- how close is close enough --------------------------------------------------------------------------

ROUNDING = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}


def assert_close(actual, expected, dtype, terms=1, magnitude=None):
    """|actual − expected| ≤ ROUNDING[dtype] · terms · magnitude, elementwise, and the shapes agree.

    `terms` is the length of the sums behind each value (rounding error grows with it: float32 allows about
    1e-4 relative for 100 terms); `magnitude` is the size of what was summed — for a product, the reference
    applied to |a| and |b| — and defaults to |expected| + 1.
    """
    actual, expected = np.asarray(actual), f64(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype}, expected {np.dtype(dtype)}"
    magnitude = np.abs(expected) + 1 if magnitude is None else f64(magnitude)
    bound = np.broadcast_to(ROUNDING[np.dtype(dtype)] * max(terms, 1) * magnitude, expected.shape)
    error = np.abs(f64(actual) - expected)
    if not np.all(error <= bound):  # NaN fails too
        excess = np.where(error <= bound, -np.inf, np.nan_to_num(error - bound, nan=np.inf))
        worst = np.unravel_index(np.argmax(excess), error.shape)
        raise AssertionError(f"at {worst}: got {f64(actual)[worst]}, expected {expected[worst]}, "
                             f"allowed ±{bound[worst]:.3g}")


# ---- the activations, pooling and normalisation of the networks after NiN ---------------------------------

def sigmoid(x):
    return 1 / (1 + np.exp(-f64(x)))


def silu(x):
    return f64(x) * sigmoid(x)


def hardtanh(x, low=-1.0, high=1.0):
    return np.minimum(np.maximum(f64(x), low), high)


def hardsigmoid(x):
    """0 for x ≤ −3, 1 for x ≥ 3, the line x/6 + 1/2 between."""
    x = f64(x)
    return np.select([x <= -3, x >= 3], [0.0, 1.0], x / 6 + 0.5)


def hardswish(x):
    return f64(x) * hardsigmoid(x)


def adaptive_cells(size, out):
    """PyTorch's adaptive cells along an axis: cell i covers [floor(i·size/out), ceil((i + 1)·size/out))."""
    import math
    return [range(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def adaptive_pool2d(x, output_size, reduce):
    """`reduce` (np.mean or np.max) of each adaptive cell of each plane."""
    x = f64(x)
    (oh, ow), (n, c, h, w) = pair(output_size), x.shape
    y = np.zeros((n, c, oh, ow))
    for i, rows in enumerate(adaptive_cells(h, oh)):
        for j, cols in enumerate(adaptive_cells(w, ow)):
            y[:, :, i, j] = reduce(x[:, :, rows.start:rows.stop, cols.start:cols.stop], axis=(2, 3))
    return y


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """y_c = x_c / (k + α/n · Σ x_{c'}² over c' from c − n//2 to c + (n − 1)//2 within the channels)^β."""
    x = f64(x)
    y = np.zeros_like(x)
    channels = x.shape[1]
    for c in range(channels):
        window = range(max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1))
        energy = sum(x[:, d] ** 2 for d in window)
        y[:, c] = x[:, c] / (k + alpha / size * energy) ** beta
    return y
