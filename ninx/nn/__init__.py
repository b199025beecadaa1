"""Neural-network building blocks: `Module` and the layers; `ninx.nn.functional` holds the stateless ops and
`ninx.nn.init` the initialisers."""
from . import functional, init, utils
from .batchnorm import BatchNorm2d
from .container import ModuleList, Sequential
from .conv import Conv2d
from .layers import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, Dropout, Flatten, GlobalAvgPool2d, Hardsigmoid,
                     Hardswish, Hardtanh, Identity, LocalResponseNorm, MaxPool2d, ReLU, ReLU6, Sigmoid, SiLU,
                     StochasticDepth)
from .linear import Linear
from .loss import CrossEntropyLoss
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "Conv2d", "Linear", "BatchNorm2d", "ReLU", "ReLU6",
           "Sigmoid", "SiLU", "Hardsigmoid", "Hardswish", "Hardtanh", "Identity", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "GlobalAvgPool2d", "LocalResponseNorm", "Dropout", "StochasticDepth",
           "Flatten", "CrossEntropyLoss", "functional", "init", "utils"]
