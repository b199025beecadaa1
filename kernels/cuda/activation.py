"""ReLU and ReLU6 on the cuda device: activation.cu's clamp, forward and backward, by 16-byte vectors where
every array is aligned for them (an offset view is not) and one element at a time for the rest."""
import numpy as np

from .launch import Source, aligned, index_type

SOURCE = Source("activation", indexed=("relu", "relu_backward"))


def _launch(device, name, arrays, cap, out):
    """Run `name` over the elements of `arrays` (x, and gy for the backward) with `cap`, into `out`."""
    x, width = arrays[0], 16 // arrays[0].itemsize  # values per vector
    index = index_type(x.size)
    vectors = x.size // width if aligned(*arrays, out) else 0
    work = vectors + x.size - vectors * width  # one thread's item per vector and per leftover element
    SOURCE.each_element(device, name, x.dtype, work, (*arrays, x.dtype.type(cap), index(vectors), index(x.size), out),
                        index)


def relu(device, x, cap=np.inf):
    shape = x.shape  # ascontiguousarray makes a 0-d array 1-d
    x = device.xp.ascontiguousarray(x)
    y = device.xp.empty_like(x)
    _launch(device, "relu", (x,), cap, y)
    return y.reshape(shape)


def relu_backward(device, x, gy, cap=np.inf):
    shape = gy.shape
    x, gy = device.xp.ascontiguousarray(x), device.xp.ascontiguousarray(gy)
    gx = device.xp.empty_like(gy)
    _launch(device, "relu_backward", (x, gy), cap, gx)
    return gx.reshape(shape)


def relu_backward_bias(device, x, gy, cap=np.inf):
    """relu_backward, then the per-channel sums of its result over N, H, W (CuPy's reduction)."""
    gx = relu_backward(device, x, gy, cap)
    return gx, gx.sum(axis=(0, 2, 3))
