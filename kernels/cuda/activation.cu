// ReLU and ReLU6 as one clamp, y = min(max(x, 0), cap), with cap = inf for ReLU and 6 for ReLU6.
#include "ninx_cuda.cuh"

// NaN passes through (both comparisons are false), as on the CPU.
template <typename T>
__global__ void relu(const T* __restrict__ x, T cap, long long count, T* __restrict__ y) {
    for (long long i = first_index(); i < count; i += grid_stride()) {
        const T v = x[i];
        y[i] = v <= T(0) ? T(0) : (v > cap ? cap : v);
    }
}

// The gradient passes where 0 < x < cap: none at the kinks themselves (PyTorch's rule).
template <typename T>
__global__ void relu_backward(const T* __restrict__ x, const T* __restrict__ gy, T cap, long long count,
                              T* __restrict__ gx) {
    for (long long i = first_index(); i < count; i += grid_stride()) {
        const T v = x[i];
        gx[i] = T(0) < v && v < cap ? gy[i] : T(0);
    }
}
