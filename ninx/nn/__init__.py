"""Neural-network building blocks: `Module` and the layers; `ninx.nn.functional` holds the stateless ops and
`ninx.nn.init` the initialisers."""
from . import functional, init
from .batchnorm import BatchNorm2d
from .container import Sequential
from .conv import Conv2d
from .layers import AdaptiveAvgPool2d, AvgPool2d, Dropout, Flatten, GlobalAvgPool2d, MaxPool2d, ReLU, ReLU6
from .linear import Linear
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "Sequential", "Conv2d", "Linear", "BatchNorm2d", "ReLU", "ReLU6", "MaxPool2d",
           "AvgPool2d", "AdaptiveAvgPool2d", "GlobalAvgPool2d", "Dropout", "Flatten", "functional", "init"]
