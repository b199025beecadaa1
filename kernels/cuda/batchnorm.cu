// Batch normalisation over x (N, C, S) with S = H·W, per channel c over its M = N·S values, as on the CPU:
//     mean = Σ x / M,   var = Σ (x − mean)² / M (biased),   x̂ = (x − mean)·inv_std,   y = x̂·weight + bias
//     gbias = Σ gy,   gweight = Σ gy·x̂
//     gx = weight·inv_std · (gy − gbias/M − x̂·gweight/M)   with batch statistics (training),
//     gx = weight·inv_std · gy                             with running statistics (eval).
// The reductions run one block per channel and add up in double, whatever T is.
#include "ninx_cuda.cuh"

// The sum of v over the block, returned to every thread, in the same order on every run. Each warp adds its
// 32 values with shuffles; lane 0 of each warp leaves its warp's sum in shared memory; after the barrier
// every thread adds those sums itself. blockDim.x must be a multiple of 32.
__device__ double block_sum(double v) {
    __shared__ double warp_sums[32];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    __syncthreads();  // the previous call's readers are done with warp_sums
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
    __syncthreads();
    double total = 0;
    for (int warp = 0; warp < blockDim.x / 32; ++warp) total += warp_sums[warp];
    return total;
}

// x[n, c, s] for the e-th of channel c's M values, e = n·S + s
template <typename T>
__device__ __forceinline__ long long element(long long e, int c, int channels, long long plane) {
    return (e / plane * channels + c) * plane + e % plane;
}

// Two passes over the channel: Σ(x − mean)² does not cancel as Σx² − M·mean² can.
template <typename T>
__global__ void batch_norm_stats(const T* __restrict__ x, int images, int channels, long long plane,
                                 T* __restrict__ mean, T* __restrict__ var) {
    const int c = blockIdx.x;
    const long long count = images * plane;
    double total = 0;
    for (long long e = threadIdx.x; e < count; e += blockDim.x) total += x[element<T>(e, c, channels, plane)];
    const double mu = block_sum(total) / count;
    double squares = 0;
    for (long long e = threadIdx.x; e < count; e += blockDim.x) {
        const double d = x[element<T>(e, c, channels, plane)] - mu;
        squares += d * d;
    }
    squares = block_sum(squares);
    if (threadIdx.x == 0) mean[c] = T(mu), var[c] = T(squares / count);
}

template <typename T>
__global__ void batch_norm_forward(const T* __restrict__ x, const T* __restrict__ mean,
                                   const T* __restrict__ inv_std, const T* __restrict__ weight,
                                   const T* __restrict__ bias, int channels, long long plane, long long count,
                                   T* __restrict__ y) {
    for (long long i = first_index(); i < count; i += grid_stride()) {
        const int c = i / plane % channels;
        y[i] = (x[i] - mean[c]) * (inv_std[c] * weight[c]) + bias[c];
    }
}

template <typename T>
__global__ void batch_norm_backward(const T* __restrict__ x, const T* __restrict__ gy, const T* __restrict__ mean,
                                    const T* __restrict__ inv_std, const T* __restrict__ weight, int training,
                                    int images, int channels, long long plane, T* __restrict__ gx,
                                    T* __restrict__ gweight, T* __restrict__ gbias) {
    const int c = blockIdx.x;
    const long long count = images * plane;
    const T mu = mean[c], istd = inv_std[c];
    double sum_gy = 0, sum_gy_xhat = 0;
    for (long long e = threadIdx.x; e < count; e += blockDim.x) {
        const long long i = element<T>(e, c, channels, plane);
        sum_gy += gy[i];
        sum_gy_xhat += gy[i] * ((x[i] - mu) * istd);
    }
    sum_gy = block_sum(sum_gy);
    sum_gy_xhat = block_sum(sum_gy_xhat);
    if (threadIdx.x == 0) gbias[c] = T(sum_gy), gweight[c] = T(sum_gy_xhat);
    const T scale = weight[c] * istd;
    const double mean_gy = training ? sum_gy / count : 0, mean_gy_xhat = training ? sum_gy_xhat / count : 0;
    for (long long e = threadIdx.x; e < count; e += blockDim.x) {
        const long long i = element<T>(e, c, channels, plane);
        const T xhat = (x[i] - mu) * istd;
        gx[i] = T(scale * (gy[i] - mean_gy - xhat * mean_gy_xhat));
    }
}
