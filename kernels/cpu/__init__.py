"""The CPU kernel table (Numba): the functions of `ninx.backend.KernelTable`, one file per family of ops."""
from .activation import relu, relu_backward, relu_backward_bias
from .batchnorm import batch_norm_backward, batch_norm_forward, batch_norm_stats
from .conv import conv2d, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight
from .depthwise import (depthwise_conv2d, depthwise_conv2d_backward_input, depthwise_conv2d_backward_weight,
                        depthwise_conv2d_backward_weight_bias)
from .gemm import gemm
from .memory import keep_freed_memory
from .pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

keep_freed_memory()
