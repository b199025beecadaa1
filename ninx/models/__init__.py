"""Network-in-Network models (the mlpconv block, d2l's and the paper's NiNs, small NiNs), the networks that
followed them (GoogLeNet, MobileNetV1 and V2, EfficientNet-B0…B7, each with a small variant), and a registry."""
from .nin import initialise, mlpconv, nin_28, nin_32, nin_block, nin_cifar10, nin_d2l, nin_digits, nin_small
from .efficientnet import (EfficientNet, MBConv, efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3,
                           efficientnet_b4, efficientnet_b5, efficientnet_b6, efficientnet_b7, efficientnet_small)
from .googlenet import BasicConv2d, GoogLeNet, Inception, InceptionAux, googlenet, googlenet_small
from .mobilenetv1 import DepthwiseSeparableConv2d, MobileNetV1, mobilenet_v1, mobilenet_v1_small
from .mobilenetv2 import InvertedResidual, MobileNetV2, mobilenet_v2, mobilenet_v2_small
from .registry import MODELS, get_model, input_shape

__all__ = ["mlpconv", "nin_block", "initialise", "nin_d2l", "nin_cifar10", "nin_small", "nin_28", "nin_32", "nin_digits",
           "GoogLeNet", "Inception", "InceptionAux", "BasicConv2d", "googlenet", "googlenet_small",
           "MobileNetV1", "DepthwiseSeparableConv2d", "mobilenet_v1", "mobilenet_v1_small",
           "MobileNetV2", "InvertedResidual", "mobilenet_v2", "mobilenet_v2_small",
           "EfficientNet", "MBConv", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
           "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_small",
           "MODELS", "get_model", "input_shape"]
