"""`BatchNorm2d`: per-channel normalisation with learnt scale and shift and running statistics."""
import numpy as np

from ..tensor import get_default_dtype, tensor
from . import functional as F
from .module import Module, Parameter


class BatchNorm2d(Module):
    """Normalise each of `num_features` channels of (N, C, H, W) (Ioffe & Szegedy 2015), PyTorch semantics.

    Training uses the batch's mean and biased variance and moves running_mean/running_var towards them by
    `momentum` (running_var with the unbiased variance); momentum=None averages all batches so far equally.
    Evaluation uses the running statistics. affine=False drops weight and bias; track_running_stats=False
    keeps no running statistics and always uses the batch's.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None):
        super().__init__()
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features <= 0:
            raise ValueError(f"BatchNorm2d: num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        float_type = get_default_dtype()
        self.weight = Parameter(np.ones(num_features, float_type)) if affine else None
        self.bias = Parameter(np.zeros(num_features, float_type)) if affine else None
        tracked = track_running_stats
        self.register_buffer("running_mean", tensor(np.zeros(num_features, float_type)) if tracked else None)
        self.register_buffer("running_var", tensor(np.ones(num_features, float_type)) if tracked else None)
        self.register_buffer("num_batches_tracked", tensor(0) if tracked else None)
        self.to(device=device, dtype=dtype)

    def forward(self, input):
        tracking = self.training and self.track_running_stats
        momentum = self.momentum
        if momentum is None:  # cumulative average: the n-th batch gets weight 1/n
            momentum = 1.0 / (self.num_batches_tracked.item() + 1) if tracking else 0.0
        y = F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                         training=self.training or not self.track_running_stats, momentum=momentum, eps=self.eps)
        if tracking:
            self.num_batches_tracked.data[...] += 1
        return y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
