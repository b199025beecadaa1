"""Each op of the small NiN, forward and backward, at the layer shapes it meets in training (batch 128), and
MobileNetV2's depthwise 3×3 convolutions at their 224×224 shapes (batch 128/16 = 8).

The same code drives ninx and PyTorch: both offer `tensor(array, requires_grad=True)` and a functional
module with conv2d, relu, max_pool2d and adaptive_avg_pool2d under the same names and arguments. Inputs,
weights and biases all require gradients, so a backward computes every gradient the op has.
"""
import numpy as np

from . import nin
from .nin import Layer
from .report import make_row
from .timing import measure

FLOAT = 4  # bytes per float32
# MobileNetV2's depthwise 3×3 convs (channels, side, stride) at 224×224: features.4, 6, 14 and 17's
MOBILENET_DEPTHWISE = ((144, 56, 1), (192, 28, 1), (576, 14, 2), (960, 7, 1))


def _numel(shape):
    return int(np.prod(shape))


def _out(layer):
    """Output shape of a conv, maxpool, relu or gap layer."""
    n, c, h, w = layer.input_shape
    if layer.kind == "conv":
        oc, k, s, p = layer.args
        return (n, oc, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    if layer.kind == "depthwise":
        k, s, p = layer.args
        return (n, c, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    if layer.kind == "maxpool":
        k, s = layer.args
        return (n, c, (h - k) // s + 1, (w - k) // s + 1)
    return (n, c, 1, 1) if layer.kind == "gap" else layer.input_shape


def describe(layer):
    """Row name, e.g. 'conv 5×5 96→192', 'maxpool 3/2', 'relu', 'gap'."""
    if layer.kind == "conv":
        oc, k = layer.args[:2]
        return f"conv {k}×{k} {layer.input_shape[1]}→{oc}"
    if layer.kind == "depthwise":
        k, stride = layer.args[:2]
        return f"depthwise {k}×{k}/{stride} {layer.input_shape[1]}"
    if layer.kind == "maxpool":
        return "maxpool {}/{}".format(*layer.args)
    return layer.kind


def cost(layer, direction):
    """(flops, bytes) of one pass: useful arithmetic, and the compulsory float32 traffic (each operand once)."""
    x, y = _numel(layer.input_shape), _numel(_out(layer))
    if layer.kind == "conv":
        oc, k = layer.args[:2]
        w = oc * layer.input_shape[1] * k * k
        forward = 2 * y * layer.input_shape[1] * k * k
        if direction == "forward":
            return forward, (x + w + oc + y) * FLOAT
        return 2 * forward, (x + w + y + x + w + oc) * FLOAT  # reads x, w, gy; writes gx, gw, gb
    if layer.kind == "depthwise":
        c, k = layer.input_shape[1], layer.args[0]
        w, forward = c * k * k, 2 * y * k * k
        if direction == "forward":
            return forward, (x + w + c + y) * FLOAT
        return 2 * forward, (x + w + y + x + w + c) * FLOAT
    if layer.kind == "maxpool":
        k = layer.args[0]
        return (y * k * k, (x + y) * FLOAT) if direction == "forward" else (y, (y + x) * FLOAT)
    if layer.kind == "relu":
        return (x, 2 * x * FLOAT) if direction == "forward" else (x, 3 * x * FLOAT)
    return x, (x + y) * FLOAT  # gap: one add per input element, either way


def _operands(layer, rng):
    """float32 arrays for the op's leaves: (x,) or (x, weight, bias)."""
    arrays = [rng.standard_normal(layer.input_shape, dtype=np.float32)]
    if layer.kind == "conv":
        oc, k = layer.args[:2]
        fan_in = layer.input_shape[1] * k * k
        weight = rng.standard_normal((oc, layer.input_shape[1], k, k), dtype=np.float32)
        arrays.append(weight / np.float32(fan_in ** 0.5))
        arrays.append(np.zeros(oc, np.float32))
    if layer.kind == "depthwise":
        c, k = layer.input_shape[1], layer.args[0]
        arrays += [rng.standard_normal((c, 1, k, k), dtype=np.float32) / np.float32(k), np.zeros(c, np.float32)]
    return arrays


def _op(functional, layer):
    """The layer as a function of its leaves, written against `functional` (ninx's or torch's)."""
    if layer.kind == "conv":
        _, _, stride, padding = layer.args
        return lambda x, w, b: functional.conv2d(x, w, b, stride=stride, padding=padding)
    if layer.kind == "depthwise":
        _, stride, padding = layer.args
        groups = layer.input_shape[1]
        return lambda x, w, b: functional.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    if layer.kind == "maxpool":
        kernel, stride = layer.args
        return lambda x: functional.max_pool2d(x, kernel, stride)
    if layer.kind == "relu":
        return functional.relu
    return lambda x: functional.adaptive_avg_pool2d(x, 1)


def _cases(lib, functional, layer, arrays, gy):
    """{'forward': case, 'backward': case} for one library (see `timing.measure` for what a case is)."""
    leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
    op = _op(functional, layer)
    grad = lib.tensor(gy)

    def fresh_graph():
        for leaf in leaves:
            leaf.grad = None
        return op(*leaves)

    return {"forward": lambda: op(*leaves), "backward": (fresh_graph, lambda y: y.backward(grad))}


def distinct_layers(batch):
    """The small NiN's conv, relu, maxpool and gap layers, each distinct (kind, shape, args) once."""
    return list(dict.fromkeys(layer for layer in nin.layers(batch) if layer.kind != "dropout"))


def depthwise_layers(batch):
    """MobileNetV2's depthwise 3×3 convs (padding 1) at a sixteenth of the NiN batch (at least one image)."""
    n = max(1, batch // 16)
    return [Layer("depthwise", (n, c, side, side), (3, stride, 1)) for c, side, stride in MOBILENET_DEPTHWISE]


def run(batch=nin.BATCH, torch=None, warmup=1, repeats=5):
    """Rows for every distinct op and direction: ninx, and PyTorch alongside when `torch` is given."""
    import ninx
    rng = np.random.default_rng(0)
    rows = []
    for layer in distinct_layers(batch) + depthwise_layers(batch):
        arrays = _operands(layer, rng)
        gy = rng.standard_normal(_out(layer), dtype=np.float32)
        libs = {"ninx": _cases(ninx, ninx.nn.functional, layer, arrays, gy)}
        if torch is not None:
            libs["torch"] = _cases(torch, torch.nn.functional, layer, arrays, gy)
        for direction in ("forward", "backward"):
            timings = measure({lib: cases[direction] for lib, cases in libs.items()}, warmup, repeats)
            flops, traffic = cost(layer, direction)
            rows.append(make_row("ops", describe(layer), "×".join(map(str, layer.input_shape)), direction,
                                 "float32", flops, traffic, timings))
    return rows
