"""What a model costs, layer by layer: output shape, parameters, multiply-accumulates, activation memory, and
the memory of prediction and of training (d2l §8.3, exercise 4).

The model runs once on zeros of one image, in eval mode and under no_grad (so no random numbers are drawn and
no running statistics move), with a forward hook on every leaf layer (a module without sub-modules): each
call of a leaf is a row, in the order of the calls, so branches (Inception), residuals (MobileNetV2) and
gates (squeeze-and-excitation) are listed as they run. Every count is per image times the batch size N.

    MACs         conv: N·oC·oH·oW·(C/G)·kh·kw — a depthwise conv (G = C) is N·oC·oH·oW·kh·kw, and the 1×1
                 convs of squeeze-and-excitation act on its (N, C, 1, 1) means, so they cost C·squeeze each
                 per image; linear: N·out·in;  0 for everything else (pooling, activations, dropout, batch
                 norm, flatten, and the additions and products between layers: a few operations per output
                 element, not counted)
    activation   bytes of the layer's output
    prediction   weights + the largest (layer input + layer output) over consecutive rows: a chain frees each
                 activation once the next layer has consumed it (for branching models an estimate)
    training     weights + gradients (as many as weights) + optimizer state (SGD 0, SGD with momentum 1,
                 Adam/AdamW 2 copies of the weights) + the input and every layer output, all kept for the
                 backward pass. Framework workspace (the CPU conv's input-gradient column chunk of at most
                 8 MiB) is not counted.
"""
from dataclasses import dataclass

import numpy as np

from . import nn
from .autograd import no_grad
from .tensor import tensor

OPTIMIZER_STATES = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}  # copies of the weights kept


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int
    activation_bytes: int


@dataclass
class Summary:
    """Per-layer rows and totals (bytes, counts); `str(summary)` is the printable table."""
    rows: list
    input_shape: tuple
    params: int
    param_bytes: int
    macs: int
    input_bytes: int
    activation_bytes: int
    peak_activation_bytes: int
    optimizer: str
    optimizer_state_bytes: int

    @property
    def inference_bytes(self):
        return self.param_bytes + self.peak_activation_bytes

    @property
    def training_bytes(self):
        return 2 * self.param_bytes + self.optimizer_state_bytes + self.input_bytes + self.activation_bytes

    def __str__(self):
        width = max([10] + [len(r.name) + 2 for r in self.rows])
        header = f"{'layer':<{width}}{'type':<18}{'output shape':<22}{'parameters':>12}{'MACs':>16}{'activations':>13}"
        lines = [header, "-" * len(header)]
        for r in self.rows:
            lines.append(f"{r.name:<{width}}{r.kind:<18}{str(r.output_shape):<22}{r.params:>12,}{r.macs:>16,}"
                         f"{format_bytes(r.activation_bytes):>13}")
        lines += ["-" * len(header),
                  f"{'total':<{width + 40}}{self.params:>12,}{self.macs:>16,}{format_bytes(self.activation_bytes):>13}",
                  "",
                  f"input {self.input_shape}: {format_bytes(self.input_bytes)}",
                  f"parameters: {self.params:,} ({format_bytes(self.param_bytes)})",
                  f"compute: {self.macs / 1e6:,.1f} M MACs per forward pass (a training step: about 3× that)",
                  f"prediction memory: {format_bytes(self.inference_bytes)} = weights {format_bytes(self.param_bytes)}"
                  f" + largest layer input and output {format_bytes(self.peak_activation_bytes)}",
                  f"training memory with {self.optimizer}: {format_bytes(self.training_bytes)} = weights "
                  f"{format_bytes(self.param_bytes)} + gradients {format_bytes(self.param_bytes)}",
                  f"    + optimizer state {format_bytes(self.optimizer_state_bytes)} + input and activations kept "
                  f"for backward {format_bytes(self.input_bytes + self.activation_bytes)}"]
        return "\n".join(lines)


def format_bytes(count):
    """Bytes in binary units: 512 B, 1.5 KiB, 3.2 MiB, 1.1 GiB."""
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def layer_macs(module, output):
    """Multiply-accumulates of one layer for the given output (see the module docstring)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def _trace(model, x, rows):
    """Run `model` on x with a hook on each leaf layer appending its row; the hooks are removed after."""
    def record(name):
        def hook(module, inputs, y):
            params = sum(p.numel() for p in module.parameters())
            rows.append(LayerRow(name or type(module).__name__, type(module).__name__, y.shape, params,
                                 layer_macs(module, y), y.numel() * y.dtype.itemsize))
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
               if not any(True for _ in m.children())]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()


def summary(model, input_shape, optimizer="adam"):
    """Trace `model` on an input of `input_shape` (N, C, H, W) and return its `Summary` (print it for the table).

    `optimizer` ("sgd", "sgd-momentum", "adam", "adamw") sets how much optimizer state training keeps.
    """
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}, got {optimizer!r}")
    input_shape = tuple(int(n) for n in input_shape)
    if len(input_shape) < 2 or min(input_shape) <= 0:
        raise ValueError(f"input_shape must be (N, C, …) with positive sizes, got {input_shape}")
    params = list(model.parameters())
    dtype = params[0].dtype if params else np.dtype(np.float32)
    device = params[0].device if params else "cpu"
    batch = input_shape[0]
    modes = {m: m.training for m in model.modules()}
    rows = []
    model.eval()
    try:
        with no_grad():
            _trace(model, tensor(np.zeros((1,) + input_shape[1:]), dtype=dtype, device=device), rows)
    finally:
        for m, mode in modes.items():
            m.training = mode
    for r in rows:  # traced on one image: scale to the batch
        r.output_shape = (batch,) + tuple(r.output_shape[1:])
        r.macs *= batch
        r.activation_bytes *= batch
    itemsize = np.dtype(dtype).itemsize
    input_bytes = int(np.prod(input_shape)) * itemsize
    sizes = [input_bytes] + [r.activation_bytes for r in rows]
    param_bytes = sum(p.numel() * p.dtype.itemsize for p in params)
    return Summary(rows=rows, input_shape=input_shape, params=sum(p.numel() for p in params),
                   param_bytes=param_bytes, macs=sum(r.macs for r in rows), input_bytes=input_bytes,
                   activation_bytes=sum(sizes[1:]),
                   peak_activation_bytes=max(a + b for a, b in zip(sizes, sizes[1:])) if rows else input_bytes,
                   optimizer=optimizer, optimizer_state_bytes=OPTIMIZER_STATES[optimizer] * param_bytes)
