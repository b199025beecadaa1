// Bugs planted on purpose, for tests/test_cuda_emulator.py: the emulation layer must catch each of them.
#include "ninx_cuda.cuh"

// probes.cu's reverse_in_block without the barrier between writing the shared tile and reading it back
__global__ void reverse_without_barrier(const float* values, float* reversed) {
    __shared__ float tile[64];
    const int t = threadIdx.x, base = blockIdx.x * blockDim.x;
    tile[t] = values[base + t];
    reversed[base + t] = tile[blockDim.x - 1 - t];
}

// A copy whose bound check is off by one: thread n writes one element past the end of y.
__global__ void copy_one_too_far(const float* x, int n, float* y) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i] = i < n ? x[i] : 0.0f;
}

// y[i − 1] = x[i]: thread 0 writes one element before the start of y.
__global__ void shift_down(const float* x, int n, float* y) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i - 1] = x[i];
}
