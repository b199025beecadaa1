"""Loss modules over `functional`, with PyTorch's names and arguments."""
from . import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    """Cross-entropy of logits (N, C) against class labels (N,) or probabilities (N, C); see F.cross_entropy.

    `weight` (C,) is held as a buffer, so it moves with the module, as in PyTorch."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction, self.label_smoothing = ignore_index, reduction, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)

    def extra_repr(self):
        return f"reduction={self.reduction!r}" + (f", label_smoothing={self.label_smoothing}"
                                                 if self.label_smoothing else "")
