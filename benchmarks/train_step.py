"""The whole training step of the small NiN — forward, cross-entropy, backward, SGD update — in images/s.

ninx's model is `ninx.models.get_model("nin-small")`; PyTorch's is built from the same `nin.SPEC`. Both
train on the same random batch, so the row compares like with like (dropout on, float32, SGD lr 0.1). PyTorch
is timed twice, alternating with ninx: in NCHW, the row the bar is set on, and channels-last (its model and
batch in `torch.channels_last`, where oneDNN's convolutions run fastest on the CPU), the figure beyond it.
"""
import warnings

import numpy as np

from . import nin
from .report import make_row
from .timing import measure

CHANNELS_LAST = "torch channels-last"


def _step(functional, model, optimizer, x, labels):
    """One training step as a closure; the same code for ninx and PyTorch."""
    def step():
        optimizer.zero_grad()
        functional.cross_entropy(model(x), labels).backward()
        optimizer.step()
    return step


def _count(parameters):
    return sum(int(np.prod(p.shape)) for p in parameters)


def _ninx_step(x, labels):
    import ninx
    from ninx import models, optim
    # like PyTorch's copy: nin.SPEC's last block ends in a ReLU, and PyTorch's default initialisation (with
    # Kaiming-normal init this random batch at lr 0.1 diverges to NaN within a few steps)
    model = models.get_model("nin-small", final_relu=True, init="default")
    model.train()
    step = _step(ninx.nn.functional, model, optim.SGD(model.parameters(), lr=nin.LR),
                 ninx.tensor(x), ninx.tensor(labels))
    return step, _count(model.parameters()), model


def peak_memory(step, model, input_shape):
    """The step's peak memory against what it needs: {peak_bytes, needed_bytes, ratio}.

    peak = the weights, held before the step, + the peak of what the step allocates through numpy (tracemalloc
    sees numpy's allocations; Numba's own, inside compiled kernels, are not counted). needed = `ninx summary`'s
    training memory with SGD: weights, their gradients, the input and every layer's output kept for backward."""
    import tracemalloc

    from ninx.summary import summary
    needed = summary(model, input_shape, optimizer="sgd")
    tracemalloc.start()
    try:
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    total = needed.param_bytes + peak
    return {"peak_bytes": total, "needed_bytes": needed.training_bytes, "ratio": total / needed.training_bytes}


def _torch_step(torch, x, labels, memory_format):
    from .torch_nin import small_nin
    model = small_nin(torch).to(memory_format=memory_format)
    model.train()
    step = _step(torch.nn.functional, model, torch.optim.SGD(model.parameters(), lr=nin.LR),
                 torch.from_numpy(x).contiguous(memory_format=memory_format), torch.from_numpy(labels))
    return step, _count(model.parameters())


def run(batch=nin.BATCH, torch=None, warmup=1, repeats=5):
    """The 'train' rows: ninx (when ninx.models and ninx.optim exist) against PyTorch NCHW, and against PyTorch
    channels-last (when PyTorch is given), from one alternating measurement."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch,) + nin.IMAGE, dtype=np.float32)
    labels = rng.integers(0, nin.CLASSES, batch)
    steps, memory = {}, None
    try:
        step, count, model = _ninx_step(x, labels)
        steps["ninx"], memory = (step, count), peak_memory(step, model, x.shape)
    except ImportError as e:
        warnings.warn(f"training step: ninx has no model or optimizer yet ({e}); timing PyTorch only")
    if torch is not None:
        steps["torch"] = _torch_step(torch, x, labels, torch.contiguous_format)
        steps[CHANNELS_LAST] = _torch_step(torch, x, labels, torch.channels_last)
    if not steps:
        return []
    for name, (_, count) in steps.items():
        if count != nin.parameter_count():
            warnings.warn(f"training step: {name}'s model has {count} parameters, the small NiN "
                          f"{nin.parameter_count()}")
    timings = measure({name: step for name, (step, _) in steps.items()}, warmup, repeats)
    flops = 6 * nin.macs_per_image() * batch  # forward 2·MACs, backward 4·MACs (input and weight gradients)
    shape = "×".join(map(str, (batch,) + nin.IMAGE))
    references = [name for name in ("torch", CHANNELS_LAST) if name in timings] or [None]
    rows = [make_row("train", "small NiN step", shape, "step", "float32", flops, None,
                     {name: timings[name] for name in ("ninx", reference) if name in timings}, items=batch)
            for reference in references]
    rows[0]["memory"] = memory
    return rows
