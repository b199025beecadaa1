// Small kernels for tests/test_cuda_emulator.py, each exercising one part of the CUDA emulation layer.
#include "ninx_cuda.cuh"

// where[12·t …] = threadIdx, blockIdx, blockDim, gridDim (x, y, z each) of the thread with global rank t
__global__ void coordinates(int* where) {
    const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    int* w = where + 12 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
    const unsigned values[12] = {threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z,
                                 blockDim.x, blockDim.y, blockDim.z, gridDim.x, gridDim.y, gridDim.z};
    for (int i = 0; i < 12; ++i) w[i] = values[i];
}

// Each block reverses its slice of `values` through shared memory. `before` gets what the shared tile held
// when the block started, read before any thread of the block wrote it.
__global__ void reverse_in_block(const float* values, float* reversed, float* before) {
    __shared__ float tile[64];
    const int t = threadIdx.x, base = blockIdx.x * blockDim.x;
    before[base + t] = tile[t];
    __syncthreads();
    tile[t] = values[base + t];
    __syncthreads();
    reversed[base + t] = tile[blockDim.x - 1 - t];
}

// Threads with leave[t] != 0 return at once; the rest meet at the barrier twice (a returned thread leaves the
// barrier's count) and each adds up what all the staying threads wrote.
__global__ void early_return(const int* leave, int* sums) {
    __shared__ int tile[256];
    const int t = threadIdx.x;
    if (leave[t]) return;
    tile[t] = t * t;
    __syncthreads();
    int total = 0;
    for (int j = 0; j < blockDim.x; ++j)
        if (!leave[j]) total += tile[j];
    __syncthreads();
    sums[t] = total;
}

// Every thread of a block draws a ticket from a shared counter with atomicAdd (the returned old value), and
// counts its bin of a shared-memory histogram; thread 0 then copies the block's histogram out.
__global__ void tickets(const int* bins, int* ticket, int* histogram) {
    __shared__ int next;
    __shared__ int counts[4];
    const int t = threadIdx.x, at = blockIdx.x * blockDim.x + t;
    if (t == 0) next = 0;
    if (t < 4) counts[t] = 0;
    __syncthreads();
    ticket[at] = atomicAdd(&next, 1);
    atomicAdd(&counts[bins[at]], 1);
    __syncthreads();
    if (t < 4) histogram[4 * blockIdx.x + t] = counts[t];
}

// One step of a shuffle-down tree per offset = width/2, width/4, …, 1: lane l adds lane l + offset's value
// when that lane is in its width-segment (else its own); lane 0 of each segment ends with the segment's sum.
__global__ void shuffle_sums(const double* values, int width, double* sums) {
    const int at = blockIdx.x * blockDim.x + threadIdx.x;
    double v = values[at];
    for (int offset = width / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset, width);
    sums[at] = v;
}

// Half a warp waits at __syncthreads() while the other half waits in a shuffle that needs the whole warp:
// neither can go on. (Undefined on a GPU; the emulator reports a deadlock instead of hanging.)
__global__ void split_warp(float* out) {
    float v = threadIdx.x;
    if (threadIdx.x < 16)
        __syncthreads();
    else
        v = __shfl_down_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

// y[i] = x[i] for i < n — except that nothing writes y[n - 1]
__global__ void copy_all_but_last(const float* x, int n, float* y) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n - 1) y[i] = x[i];
}

// y[i] = x[i] + x[i + 1]: the last thread reads one past the end of x
__global__ void add_next(const float* x, int n, float* y) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] + x[i + 1];
}

template <typename T> __global__ void scale(const T* x, T factor, long long n, T* y) {
    for (long long i = first_index(); i < n; i += grid_stride()) y[i] = x[i] * factor;
}
