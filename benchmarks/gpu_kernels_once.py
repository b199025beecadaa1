"""Every kernel of the cuda device's table, called once on small shapes — the program compute-sanitizer's
memcheck and racecheck run (benchmarks/gpu_run.sh). CuPy's memory pool is switched off, so each buffer is its
own allocation and an access past its end is caught instead of landing in a neighbour."""
import numpy as np

from ninx.backend import KERNELS, get_backend
from ninx.geometry import window2d


def main():
    import cupy
    cupy.cuda.set_allocator(None)
    backend, rng = get_backend("cuda"), np.random.default_rng(0)

    def array(*shape):
        return cupy.asarray(rng.standard_normal(shape), dtype=np.float32)
    conv = window2d("conv2d", (2, 3, 9, 7), 3, 2, 1)
    pool = window2d("max_pool2d", (2, 3, 9, 7), 3, 2, 1)
    x, mean, var, w = array(2, 3, 9, 7), array(3), array(3) ** 2 + 1, array(3)
    y, argmax = backend.max_pool2d(x, pool)
    calls = {
        "gemm": lambda: backend.gemm(array(2, 70, 33), array(2, 33, 65), cupy.empty((2, 70, 65), np.float32)),
        "im2col": lambda: backend.im2col(x, conv),
        "col2im": lambda: backend.col2im(array(2, 27, conv.oh * conv.ow), conv),
        "relu": lambda: backend.relu(x, 6.0),
        "relu_backward": lambda: backend.relu_backward(x, x, np.inf),
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
        cupy.cuda.Device().synchronize()
        print(f"{name}: ok")


if __name__ == "__main__":
    main()
