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

// PyTorch's rule: the gradient stops where x <= 0 and, for a finite cap (ReLU6), where x >= cap; it passes
// everywhere else, NaN included, and +inf for ReLU (cap = inf). None passes at the kinks themselves.
template <typename T>
__global__ void relu_backward(const T* __restrict__ x, const T* __restrict__ gy, T cap, long long count,
                              T* __restrict__ gx) {
    const bool capped = cap - cap == T(0);  // cap is finite (inf − inf is NaN); NVRTC has no <cmath>
    for (long long i = first_index(); i < count; i += grid_stride()) {
        const T v = x[i];
        gx[i] = v <= T(0) || (capped && v >= cap) ? T(0) : gy[i];
    }
}
