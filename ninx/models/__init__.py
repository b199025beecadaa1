"""Network-in-Network models: the mlpconv block, d2l's and the paper's NiNs, small NiNs, and a registry."""
from .nin import initialise, mlpconv, nin_28, nin_32, nin_block, nin_cifar10, nin_d2l, nin_digits, nin_small
from .registry import MODELS, get_model, input_shape

__all__ = ["mlpconv", "nin_block", "initialise", "nin_d2l", "nin_cifar10", "nin_small", "nin_28", "nin_32",
           "nin_digits", "MODELS", "get_model", "input_shape"]
