"""The small NiN as data: its layer list, and the input shape each layer sees — the shapes we time at.

    nin_block(1, 96, 5, 1, 2), max-pool 3/2, nin_block(96, 192, 5, 1, 2), max-pool 3/2,
    nin_block(192, 192, 3, 1, 1), max-pool 3/2, dropout 0.5, nin_block(192, 10, 3, 1, 1), global average pool

A nin_block(i, o, k, s, p) is conv k×k (stride s, padding p), ReLU, then twice (1×1 conv o→o, ReLU).
979,814 parameters and 121 M multiply-adds per 28×28 image.
"""
from typing import NamedTuple

BATCH = 128
IMAGE = (1, 28, 28)
CLASSES = 10
LR = 0.1

SPEC = (("block", 1, 96, 5, 1, 2), ("maxpool", 3, 2),
        ("block", 96, 192, 5, 1, 2), ("maxpool", 3, 2),
        ("block", 192, 192, 3, 1, 1), ("maxpool", 3, 2),
        ("dropout", 0.5),
        ("block", 192, 10, 3, 1, 1), ("gap",))


class Layer(NamedTuple):
    """One elementary layer: kind ('conv', 'relu', 'maxpool', 'dropout', 'gap'), its input (N, C, H, W),
    and its arguments (conv: out_channels, kernel, stride, padding; maxpool: kernel, stride)."""
    kind: str
    input_shape: tuple
    args: tuple = ()


def _out(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def layers(batch=BATCH):
    """The small NiN's elementary layers in order, each with the input shape it sees at `batch`."""
    n, (c, h, w) = batch, IMAGE
    out = []
    for kind, *args in SPEC:
        if kind == "block":
            _, oc, k, s, p = args
            for (kk, ss, pp) in ((k, s, p), (1, 1, 0), (1, 1, 0)):
                out.append(Layer("conv", (n, c, h, w), (oc, kk, ss, pp)))
                c, h, w = oc, _out(h, kk, ss, pp), _out(w, kk, ss, pp)
                out.append(Layer("relu", (n, c, h, w)))
        elif kind == "maxpool":
            k, s = args
            out.append(Layer("maxpool", (n, c, h, w), (k, s)))
            h, w = _out(h, k, s, 0), _out(w, k, s, 0)
        elif kind == "dropout":
            out.append(Layer("dropout", (n, c, h, w), tuple(args)))
        else:
            out.append(Layer("gap", (n, c, h, w)))
    return out


def parameter_count():
    """Weights and biases of every convolution (979,814)."""
    total = 0
    for layer in layers(1):
        if layer.kind == "conv":
            oc, k = layer.args[:2]
            total += oc * layer.input_shape[1] * k * k + oc
    return total


def macs_per_image():
    """Multiply-adds of one image's forward pass (convolutions only; about 121 M)."""
    total = 0
    for layer in layers(1):
        if layer.kind == "conv":
            (_, c, h, w), (oc, k, s, p) = layer.input_shape, layer.args
            total += oc * c * k * k * _out(h, k, s, p) * _out(w, k, s, p)
    return total
