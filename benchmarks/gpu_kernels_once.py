"""Every kernel of the cuda device's table, called once on small shapes — the program compute-sanitizer's
memcheck and racecheck run (benchmarks/gpu_run.sh). CuPy's memory pool is switched off, so each buffer is its
own allocation and an access past its end is caught instead of landing in a neighbour. With
NINX_CUDA_EMULATE=1 it runs on the emulator (tests/test_gpu_benchmark.py), so no kernel of the table is
left out of the sanitizer's run."""
import numpy as np

from ninx.backend import KERNELS, get_backend
from ninx.geometry import window2d


def main():
    backend, rng = get_backend("cuda"), np.random.default_rng(0)
    xp = backend.xp
    if xp is not np:  # cupy: no pool
        xp.cuda.set_allocator(None)

    def synchronize():
        if xp is not np:
            xp.cuda.Device().synchronize()

    def array(*shape):
        return xp.asarray(rng.standard_normal(shape), dtype=np.float32)
    conv = window2d("conv2d", (2, 3, 9, 7), 3, 2, 1)
    pool = window2d("max_pool2d", (2, 3, 9, 7), 3, 2, 1)
    x, mean, var, w = array(2, 3, 9, 7), array(3), array(3) ** 2 + 1, array(3)
    y, argmax = backend.max_pool2d(x, pool)
    filters, conv_gy = array(4, 3, 3, 3), array(2, 4, conv.oh, conv.ow)
    depthwise, depthwise_gy = array(6, 1, 3, 3), array(2, 6, conv.oh, conv.ow)
    calls = {
        "gemm": lambda: backend.gemm(array(2, 70, 33), array(2, 33, 65), xp.empty((2, 70, 65), np.float32)),
        "conv2d": lambda: backend.conv2d(x, filters, conv, 1, bias=array(4), relu_cap=np.inf),
        "conv2d_backward_input": lambda: backend.conv2d_backward_input(conv_gy, filters, conv, 1),
        "conv2d_backward_weight": lambda: backend.conv2d_backward_weight(x, conv_gy, conv, 1),
        "conv2d_backward_bias": lambda: backend.conv2d_backward_bias(conv_gy),
        "depthwise_conv2d": lambda: backend.depthwise_conv2d(x, depthwise, conv, array(6)),
        "depthwise_conv2d_backward_input": lambda: backend.depthwise_conv2d_backward_input(depthwise_gy, depthwise,
                                                                                             conv),
        "depthwise_conv2d_backward_weight": lambda: backend.depthwise_conv2d_backward_weight(x, depthwise_gy, conv),
        "depthwise_conv2d_backward_weight_bias": lambda: backend.depthwise_conv2d_backward_weight_bias(
            x, depthwise_gy, conv),
        "relu": lambda: backend.relu(x, 6.0),
        "relu_backward": lambda: backend.relu_backward(x, x, np.inf),
        "relu_backward_bias": lambda: backend.relu_backward_bias(x, x, 6.0),
        "max_pool2d": lambda: backend.max_pool2d(x, pool),
        "max_pool2d_backward": lambda: backend.max_pool2d_backward(y, argmax, pool),
        "avg_pool2d": lambda: backend.avg_pool2d(x, pool, True, 0),
        "avg_pool2d_backward": lambda: backend.avg_pool2d_backward(y, pool, False, 0),
        "batch_norm_stats": lambda: backend.batch_norm_stats(x),
        "batch_norm_forward": lambda: backend.batch_norm_forward(x, mean, var, w, mean),
        "batch_norm_backward": lambda: backend.batch_norm_backward(x, x, mean, var, w, True),
    }
    missing = set(KERNELS) - set(calls)
    if missing:
        raise SystemExit(f"gpu_kernels_once: no call for kernels {sorted(missing)}")
    for name in KERNELS:
        calls[name]()
        synchronize()
        print(f"{name}: ok")


if __name__ == "__main__":
    main()
