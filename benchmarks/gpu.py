"""The GPU section (`python -m benchmarks --sections gpu`): ninx's CUDA kernels against cuBLAS and cuDNN.

Rows: the GEMM core against `cupy.matmul` (cuBLAS), and on the tensor cores in TF32 against PyTorch's; each small-NiN and d2l-NiN convolution — forward, input
gradient, weight gradient — against cuDNN through PyTorch where a CUDA build of it is importable, with TF32
off and on; ReLU, max-pool and batch-norm statistics in GB/s beside the device's measured copy bandwidth;
and the small-NiN and d2l-NiN training steps in images/s against PyTorch eager. Every result is checked
against a reference (cuBLAS, or float64 on the host) before it is timed. On a GPU each call is timed with
CUDA events after warm-up, medians of many runs. On the emulator (NINX_CUDA_EMULATE=1) `--quick` runs the
same code on tiny shapes with host timers, so CI keeps the section alive; its numbers mean nothing.
"""
import time

import numpy as np

import ninx
from ninx import nn
from ninx.backend import get_backend
from ninx.models import get_model, nin_d2l
from ninx.nn import functional as F

from .report import make_row
from .timing import Timing

FLOAT = 4


def device_info(backend):
    """The GPU's name, multiprocessors and memory, or the emulator's."""
    xp = backend.xp
    if xp is np:
        return {"name": "CUDA emulator (CPU)", "multiprocessors": 1, "memory_bytes": None, "emulated": True}
    props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
    return {"name": props["name"].decode(), "multiprocessors": props["multiProcessorCount"],
            "memory_bytes": props["totalGlobalMem"], "compute_capability": f"{props['major']}.{props['minor']}",
            "emulated": False}


class Clock:
    """Median time of a call: CUDA events on a GPU (after a device synchronize), the host clock otherwise."""

    def __init__(self, xp, warmup, repeats):
        self.xp, self.warmup, self.repeats = xp, warmup, repeats

    def time(self, run):
        for _ in range(self.warmup):
            run()
        times = []
        for _ in range(self.repeats):
            if self.xp is np:
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            else:
                begin, end = self.xp.cuda.Event(), self.xp.cuda.Event()
                self.xp.cuda.Device().synchronize()
                begin.record()
                run()
                end.record()
                end.synchronize()
                times.append(self.xp.cuda.get_elapsed_time(begin, end) / 1e3)
        return Timing(tuple(times))


def _check(name, got, expected, tolerance):
    """Relative error ‖got − expected‖ / ‖expected‖ below `tolerance`, or a loud failure: nothing wrong is timed."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    error = np.linalg.norm(got - expected) / max(np.linalg.norm(expected), 1e-30)
    if not np.isfinite(error) or error > tolerance:
        raise AssertionError(f"gpu benchmark: {name} is wrong before timing (relative error {error:.2e})")


def _host(array):
    return array if isinstance(array, np.ndarray) else array.get()


def gemm_rows(backend, clock, torch, sizes):
    """The GEMM core against xp.matmul (cuBLAS on a GPU), square float32 problems; then with
    ninx.backends.cuda.allow_tf32 (the tensor cores) against PyTorch's TF32 matmul where it is importable."""
    xp, rows, rng = backend.xp, [], np.random.default_rng(0)
    for n in sizes:
        a, b = (xp.asarray(rng.standard_normal((1, n, n)), dtype=np.float32) for _ in range(2))
        out, expected = xp.empty((1, n, n), dtype=np.float32), _host(a).astype(np.float64) @ _host(b)
        work = (2 * n ** 3, 3 * n * n * FLOAT)
        backend.gemm(a, b, out)
        _check(f"gemm {n}²", _host(out), expected, 1e-5)
        timings = {"ninx": clock.time(lambda: backend.gemm(a, b, out)),
                   "cuBLAS" if xp is not np else "numpy": clock.time(lambda: xp.matmul(a, b))}
        rows.append(make_row("gpu", "gemm", f"{n}×{n}×{n}", "forward", "float32", *work, timings))
        ninx.backends.cuda.allow_tf32 = True
        try:
            backend.gemm(a, b, out)
            _check(f"gemm TF32 {n}²", _host(out), expected, 1e-3)
            timings = {"ninx": clock.time(lambda: backend.gemm(a, b, out))}
        finally:
            ninx.backends.cuda.allow_tf32 = False
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32 = True
            ta, tb = (torch.as_tensor(x, device="cuda") for x in (a, b))
            timings["cuBLAS TF32 (PyTorch)"] = clock.time(lambda: torch.matmul(ta, tb))
            torch.backends.cuda.matmul.allow_tf32 = False
        rows.append(make_row("gpu", "gemm TF32", f"{n}×{n}×{n}", "forward", "TF32", *work, timings))
    return rows


def conv_layers(model, image):
    """(input shape, Conv2d) of every convolution of `model` on one input of shape `image`."""
    found = []
    hooks = [m.register_forward_hook(lambda m, inputs, out: found.append((inputs[0].shape, m)))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    with ninx.no_grad():
        model.eval()(ninx.zeros(*image))
    for h in hooks:
        h.remove()
    return list({(shape, m.kernel_size, m.stride, m.padding, m.out_channels): (shape, m) for shape, m in found}.values())


def _torch_conv(torch, x, w, conv, tf32, wanted):
    """cuDNN's conv2d on copies of x and w; `wanted` ("input", "weight" or None) is the gradient it computes."""
    torch.backends.cudnn.allow_tf32 = tf32
    tx = torch.tensor(_host(x), device="cuda", requires_grad=wanted == "input")
    tw = torch.tensor(_host(w), device="cuda", requires_grad=wanted == "weight")
    return lambda: torch.nn.functional.conv2d(tx, tw, stride=conv.stride, padding=conv.padding)


def torch_twin(torch, model):
    """The same network in PyTorch, loaded with the ninx model's state dict: the names and shapes match."""
    twin = _torch_module(torch, model)
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    return twin


def _torch_module(torch, module):
    tnn = torch.nn
    if isinstance(module, nn.Sequential):
        return tnn.Sequential(*[_torch_module(torch, m) for m in module])
    if isinstance(module, nn.Conv2d):
        return tnn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                          module.padding, module.dilation, module.groups, module.bias is not None)
    simple = {nn.ReLU: lambda m: tnn.ReLU(), nn.Flatten: lambda m: tnn.Flatten(m.start_dim, m.end_dim),
              nn.Dropout: lambda m: tnn.Dropout(m.p), nn.GlobalAvgPool2d: lambda m: tnn.AdaptiveAvgPool2d(1),
              nn.MaxPool2d: lambda m: tnn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation,
                                                     ceil_mode=m.ceil_mode)}
    if type(module) not in simple:
        raise NotImplementedError(f"torch_twin: no PyTorch twin for {type(module).__name__}")
    return simple[type(module)](module)


def conv_rows(backend, clock, torch, name, model, image):
    """Forward, input and weight gradient of each distinct convolution, against cuDNN (TF32 off and on)."""
    xp, rows, rng = backend.xp, [], np.random.default_rng(1)
    for shape, conv in conv_layers(model, image):
        x = ninx.tensor(rng.standard_normal(shape), dtype=np.float32, device=backend.name, requires_grad=True)
        w = ninx.tensor(rng.standard_normal(conv.weight.shape) / np.sqrt(np.prod(conv.weight.shape[1:])),
                        dtype=np.float32, device=backend.name, requires_grad=True)
        y = F.conv2d(x, w, stride=conv.stride, padding=conv.padding)
        gy = ninx.tensor(rng.standard_normal(y.shape), dtype=np.float32, device=backend.name)
        macs = int(np.prod(y.shape)) * int(np.prod(w.shape[1:]))
        traffic = (x.numel() + w.numel() + y.numel()) * FLOAT
        label = f"{name} conv {conv.kernel_size[0]}×{conv.kernel_size[0]} {shape[1]}→{conv.out_channels}"

        def forward():
            return F.conv2d(x, w, stride=conv.stride, padding=conv.padding)

        def backward(wanted):
            x.grad = w.grad = None
            x.requires_grad, w.requires_grad = wanted == "input", wanted == "weight"
            forward().backward(gy)
        for direction, run in (("forward", forward), ("input grad", lambda: backward("input")),
                               ("weight grad", lambda: backward("weight"))):
            timings = {"ninx": clock.time(run)}
            if torch is not None:
                tgy = torch.tensor(gy.numpy(), device="cuda")
                for tf32 in (False, True):
                    wanted = {"forward": None, "input grad": "input", "weight grad": "weight"}[direction]
                    op = _torch_conv(torch, x.numpy(), w.numpy(), conv, tf32, wanted)
                    if direction == "forward":
                        _check(label, _host(forward().data), op().detach().cpu().numpy(), 3e-3 if tf32 else 1e-4)
                        timings[f"cuDNN{' TF32' if tf32 else ''}"] = clock.time(op)
                    else:
                        timings[f"cuDNN{' TF32' if tf32 else ''}"] = clock.time(lambda: op().backward(tgy))
            rows.append(make_row("gpu", label, "×".join(map(str, shape)), direction, "float32",
                                 2 * macs, traffic, timings))
        x.requires_grad = w.requires_grad = True
    return rows


def bandwidth_rows(backend, clock, shape):
    """ReLU, max-pool and batch-norm statistics in GB/s (bytes read once, written once) beside a device copy."""
    xp, rng = backend.xp, np.random.default_rng(2)
    x = xp.asarray(rng.standard_normal(shape), dtype=np.float32)
    n = x.size * FLOAT
    window = ninx.geometry.window2d("max_pool2d", shape, 3, 2, 0)
    pooled = int(np.prod(window.output_shape))
    cases = {
        "copy": (lambda: x.copy(), 2 * n),
        "relu": (lambda: backend.relu(x, np.inf), 2 * n),
        "max_pool2d 3/2": (lambda: backend.max_pool2d(x, window), n + pooled * (FLOAT + 8)),  # values + argmax
        "batch_norm_stats": (lambda: backend.batch_norm_stats(x), n),
    }
    _check("relu", _host(backend.relu(x, np.inf)), np.maximum(_host(x), 0), 1e-6)
    mean, var = backend.batch_norm_stats(x)
    _check("batch_norm_stats", _host(mean), _host(x).astype(np.float64).mean(axis=(0, 2, 3)), 1e-4)
    rows = []
    for name, (run, traffic) in cases.items():
        rows.append(make_row("gpu", name, "×".join(map(str, shape)), "forward", "float32", None, traffic,
                             {"ninx": clock.time(run)}))
        rows[-1]["gbytes_per_s"] = traffic / rows[-1]["ninx"]["median_s"] / 1e9
    return rows


def train_rows(backend, clock, torch, name, build, image, batch):
    """One SGD step (forward, cross-entropy, backward, update) in images/s, against PyTorch eager."""
    rng = np.random.default_rng(3)
    ninx.manual_seed(0)
    model = build().to(backend.name).train()
    optimizer = ninx.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = ninx.tensor(rng.standard_normal((batch,) + image), dtype=np.float32, device=backend.name)
    labels = ninx.tensor(rng.integers(0, 10, batch), device=backend.name)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        optimizer.step()
    timings = {"ninx": clock.time(step)}
    if torch is not None:
        twin = torch_twin(torch, model.cpu()).cuda().train()
        model.to(backend.name)
        topt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)
        tx, tl = torch.tensor(x.numpy(), device="cuda"), torch.tensor(labels.numpy(), device="cuda")

        def torch_step():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(twin(tx), tl).backward()
            topt.step()
        timings["PyTorch eager"] = clock.time(torch_step)
    return [make_row("gpu", f"{name} training step", f"batch {batch}", "step", "float32", None, None, timings,
                     items=batch)]


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def run(quick):
    """Every row of the GPU section, and the device they ran on."""
    backend = get_backend("cuda")
    torch = None if backend.xp is np else _torch_cuda()
    clock = Clock(backend.xp, *((1, 2) if quick else (3, 20)))
    if quick:  # tiny shapes: the emulator runs each block's threads one at a time
        rows = gemm_rows(backend, clock, torch, (32, 48))
        small = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 1))
        rows += conv_rows(backend, clock, torch, "tiny", small, (1, 1, 6, 6))
        rows += bandwidth_rows(backend, clock, (2, 3, 8, 8))
        rows += train_rows(backend, clock, torch, "nin-digits", lambda: get_model("nin-digits"), (1, 8, 8), 2)
    else:
        rows = gemm_rows(backend, clock, torch, (1024, 2048, 4096, 8192))
        rows += conv_rows(backend, clock, torch, "small NiN", get_model("nin-small"), (128, 1, 28, 28))
        rows += conv_rows(backend, clock, torch, "d2l NiN", nin_d2l(), (128, 1, 224, 224))
        rows += bandwidth_rows(backend, clock, (128, 96, 54, 54))
        rows += train_rows(backend, clock, torch, "small NiN", lambda: get_model("nin-small"), (1, 28, 28), 128)
        rows += train_rows(backend, clock, torch, "d2l NiN", nin_d2l, (1, 224, 224), 128)
    return rows, device_info(backend)
