"""The 1×1 fact: a 1×1 convolution is one matrix applied at every pixel. conv2d with a 1×1 kernel, a batched
GEMM (W @ x viewed as (N, C, H·W)) and a per-pixel fully connected layer (NHWC → linear → NCHW) give the same
output and the same gradients for the input, the weight and the bias."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ninx
import references as ref
from ninx.geometry import window2d
from ninx.nn import functional as F
from ninx_kernels.cpu import direct
from strategies import dtypes, layouts, seeds, values

images = st.integers(1, 3)
channels = st.integers(1, 6)
sides = st.integers(1, 9)


def as_conv(x, w, b):
    return F.conv2d(x, w.reshape(w.shape[0], w.shape[1], 1, 1), b)


def as_batched_gemm(x, w, b):
    n, c, h, wd = x.shape
    y = w @ x.reshape(n, c, h * wd)  # (oC, C) broadcast against (N, C, H·W): one batched GEMM
    if b is not None:
        y = y + b.reshape(-1, 1)
    return y.reshape(n, w.shape[0], h, wd)


def as_per_pixel_linear(x, w, b):
    return F.linear(x.permute(0, 2, 3, 1), w, b).permute(0, 3, 1, 2)


PATHS = (as_conv, as_batched_gemm, as_per_pixel_linear)


@pytest.mark.parametrize("bias", [False, True])
@settings(max_examples=10)
@given(n=images, c=channels, oc=channels, h=sides, w=sides, dtype=dtypes, seed=seeds, data=st.data())
def test_conv1x1_batched_gemm_and_per_pixel_linear_agree(device, bias, n, c, oc, h, w, dtype, seed, data):
    x0, w0 = values((n, c, h, w), seed), values((oc, c), seed + 1)
    b0 = values((oc,), seed + 2) if bias else None
    gy = values((n, oc, h, w), seed + 3)
    layout = data.draw(layouts(4))
    outputs, grads = [], []
    for path in PATHS:
        x = ninx.tensor(layout.store(x0), dtype=dtype, requires_grad=True, device=device)
        params = [ninx.tensor(a, dtype=dtype, requires_grad=True, device=device) for a in (w0, b0) if a is not None]
        y = path(layout.view(x), params[0], params[1] if bias else None)
        y.backward(gy)
        outputs.append(y.numpy())
        grads.append([layout.view(x.grad).numpy()] + [p.grad.numpy() for p in params])

    # all three against the definition, then against each other, output and every gradient
    x_, w_, b_ = x0.astype(dtype), w0.astype(dtype), b0.astype(dtype) if bias else np.zeros(oc)
    expected = np.einsum("oc,nchw->nohw", w_, x_) + b_[:, None, None]
    magnitude = np.einsum("oc,nchw->nohw", abs(w_), abs(x_)) + abs(b_)[:, None, None]
    grad_terms = (oc, n * h * w, n * h * w)  # lengths of the sums behind dx, dW, db
    for y, g in zip(outputs, grads):
        ref.assert_close(y, expected, dtype, terms=c + 1, magnitude=magnitude)
        for got, want, terms, scale in zip(g, grads[0], grad_terms, grad_magnitudes(x0, w0, gy, bias)):
            ref.assert_close(got, want, dtype, terms=2 * terms, magnitude=scale)


def grad_magnitudes(x0, w0, gy, bias):
    """The sizes of what each gradient sums: |W|ᵀ|gy|, |gy||x|ᵀ, Σ|gy|."""
    return [np.einsum("oc,nohw->nchw", abs(w0), abs(gy)), np.einsum("nohw,nchw->oc", abs(gy), abs(x0))] + \
        ([abs(gy).sum(axis=(0, 2, 3))] if bias else [])


@given(n=images, c=channels, oc=channels, h=sides, w=sides, stride=st.integers(2, 3), padding=st.integers(0, 1),
       seed=seeds)
def test_strided_and_padded_1x1_goes_through_im2col_and_still_is_per_pixel(device, n, c, oc, h, w, stride, padding,
                                                                           seed):
    """A 1×1 kernel with stride or padding leaves the GEMM-only path; it must equal the 1×1 conv of the
    zero-padded, subsampled input."""
    x0, w0, b0 = values((n, c, h, w), seed), values((oc, c, 1, 1), seed + 1), values((oc,), seed + 2)
    padded = np.pad(x0, ((0, 0), (0, 0), (padding, padding), (padding, padding)))[:, :, ::stride, ::stride]
    tensor = lambda a: ninx.tensor(a, dtype=np.float64, device=device)
    strided = F.conv2d(tensor(x0), tensor(w0), tensor(b0), stride=stride, padding=padding).numpy()
    pointwise = F.conv2d(tensor(np.ascontiguousarray(padded)), tensor(w0), tensor(b0)).numpy()
    ref.assert_close(strided, pointwise, np.float64, terms=c + 1,
                     magnitude=ref.conv2d(abs(padded), abs(w0), abs(b0)))


def _lowering_steps(device, monkeypatch):
    """The list each backend's lowering steps besides the GEMM get recorded in: the window gather and col2im on
    the CPU, the implicit-GEMM kernels on cuda."""
    calls = []
    if device == "cpu":
        import ninx_kernels.cpu.conv as conv
        import ninx_kernels.cpu.direct as direct
        for module, name in ((conv, "windows"), (conv, "col2im"), (direct, "conv_direct"),
                             (direct, "weight_gradient_direct")):
            real = getattr(module, name)
            monkeypatch.setattr(module, name, lambda *args, _real=real, _name=name, **kw:
                                calls.append(_name) or _real(*args, **kw))
    else:
        import ninx_kernels.cuda.conv as module
        real = module.SOURCE.kernel
        monkeypatch.setattr(module.SOURCE, "kernel",
                            lambda dev, name, *args: calls.append(name) or real(dev, name, *args))
    return calls


LOWERED = {"cpu": ["windows", "col2im", "windows"],  # forward, input gradient, weight gradient (no columns kept)
           "cuda": ["conv_forward", "conv_input_grad", "conv_weight_grad"]}


@pytest.mark.parametrize("kernel, stride, padding, lowered", [
    (1, 1, 0, False), ((1, 1), 1, 0, False), (1, 2, 0, True), (1, 1, 1, True), (3, 1, 1, True), ((1, 3), 1, 0, True)])
def test_only_the_1x1_stride_1_unpadded_convolution_is_the_gemm_alone(device, monkeypatch, kernel, stride, padding,
                                                                      lowered):
    calls = _lowering_steps(device, monkeypatch)
    x = ninx.tensor(values((2, 4, 5, 5), 0), dtype=np.float64, requires_grad=True, device=device)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    w = ninx.tensor(values((3, 4) + k, 1), dtype=np.float64, requires_grad=True, device=device)
    F.conv2d(x, w, stride=stride, padding=padding).sum().backward()
    expected = list(LOWERED[device]) if lowered else []
    if expected and device == "cpu":  # which passes run the direct kernels depends on the target's tiles
        g = window2d("conv2d", x.shape, k, stride, padding)
        direct_passes = [direct.forward_tiles(g, 1, 3, 8), direct.input_gradient_tiles(g, 1, 3, 8),
                         direct.weight_gradient_fits(g, 1)]
        expected = [name if not routed else ("weight_gradient_direct" if i == 2 else "conv_direct")
                    for i, (name, routed) in enumerate(zip(expected, direct_passes))]
    assert calls == expected
