"""ReLU and ReLU6 on the cuda device: activation.cu's clamp, forward and backward."""
import numpy as np

from .launch import Source

SOURCE = Source("activation", ("relu", "relu_backward"))


def relu(device, x, cap=np.inf):
    shape = x.shape  # ascontiguousarray makes a 0-d array 1-d
    x = device.xp.ascontiguousarray(x)
    y = device.xp.empty_like(x)
    SOURCE.each_element(device, "relu", x.dtype, x.size, (x, x.dtype.type(cap), np.int64(x.size), y))
    return y.reshape(shape)


def relu_backward(device, x, gy, cap=np.inf):
    shape = gy.shape
    x, gy = device.xp.ascontiguousarray(x), device.xp.ascontiguousarray(gy)
    gx = device.xp.empty_like(gy)
    SOURCE.each_element(device, "relu_backward", x.dtype, x.size,
                        (x, gy, x.dtype.type(cap), np.int64(x.size), gx))
    return gx.reshape(shape)
