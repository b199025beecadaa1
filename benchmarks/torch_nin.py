"""PyTorch, the optional reference: its import, its thread count, and the small NiN built from `nin.SPEC`.

PyTorch is never a dependency of ninx; these benchmarks use it only when it is importable.
"""
from . import nin


def load_torch(threads):
    """The torch module set to `threads` intra-op threads, or None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def small_nin(torch):
    """The small NiN of `nin.SPEC` as a torch.nn.Sequential (NCHW, float32, PyTorch's default init)."""
    nn = torch.nn
    layers = []
    for kind, *args in nin.SPEC:
        if kind == "block":
            c, o, k, s, p = args
            layers += [nn.Conv2d(c, o, k, s, p), nn.ReLU()]
            layers += [nn.Conv2d(o, o, 1), nn.ReLU(), nn.Conv2d(o, o, 1), nn.ReLU()]
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(*args))
        elif kind == "dropout":
            layers.append(nn.Dropout(*args))
        else:
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)
