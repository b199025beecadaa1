// Batch normalisation over x (N, C, S) with S = H·W, per channel c over its M = N·S values, as on the CPU:
//     mean = Σ x / M,   var = Σ (x − mean)² / M (biased),   x̂ = (x − mean)·inv_std,   y = x̂·weight + bias
//     gbias = Σ gy,   gweight = Σ gy·x̂
//     gx = weight·inv_std · (gy − gbias/M − x̂·gweight/M)   with batch statistics (training),
//     gx = weight·inv_std · gy                             with running statistics (eval).
// The reductions over a channel take two stages, so that a few channels still fill the GPU. Stage 1: a grid of
// (channel, slice) blocks, block (c, s) reducing channel c's values e ∈ [s·L, min(s·L + L, M)) for the slice
// length L into partial[q, c, s] (partial is (2, C, slices): q = 0 and 1 hold the two quantities reduced).
// Stage 2: thread c merges its channel's slices in order. All of it adds up in double whatever T is, each
// sum in a fixed order: the same bits on every run.
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

// x[n, c, s] for the e-th of channel c's M values, e = n·S + s: offset (n·C + c)·S + s
template <typename Index>
__device__ __forceinline__ Index element(Index e, int c, int channels, const Divmod<Index>& by_plane) {
    Index s;
    return (by_plane.divmod(e, s) * channels + c) * by_plane.divisor + s;
}

// The channel of x's i-th element, i = (n·C + c)·S + s
template <typename Index>
__device__ __forceinline__ int channel_of(Index i, const Divmod<Index>& by_plane, const Divmod<Index>& by_channels) {
    int c;
    by_channels.divmod(by_plane.quotient(i), c);
    return c;
}

// This block's slice of its channel's M values: [s·L, min(s·L + L, M)) for s = blockIdx.y
template <typename Index>
struct Slice {
    Index begin, end;
    __device__ Slice(Index length, Index count)
        : begin(Index(blockIdx.y) * length), end(count - begin < length ? count : begin + length) {}
};

// Stage 1 of the statistics: block (c, s) leaves its slice's mean in partial[0, c, s] and its
// M2 = Σ (x − mean)² in partial[1, c, s], by two passes over the slice: Σx² − n·mean² would cancel.
template <typename T, typename Index>
__global__ void batch_norm_stats_partials(const T* __restrict__ x, int channels, Index plane, Index count,
                                          Index length, double* __restrict__ partial) {
    const int c = blockIdx.x;
    const Divmod<Index> by_plane(plane);
    const Slice<Index> slice(length, count);
    double total = 0;
    for (Index e = slice.begin + threadIdx.x; e < slice.end; e += blockDim.x)
        total += x[element(e, c, channels, by_plane)];
    const double mu = block_sum(total) / double(slice.end - slice.begin);
    double squares = 0;
    for (Index e = slice.begin + threadIdx.x; e < slice.end; e += blockDim.x) {
        const double d = x[element(e, c, channels, by_plane)] - mu;
        squares += d * d;
    }
    squares = block_sum(squares);
    if (threadIdx.x == 0)
        partial[c * gridDim.y + blockIdx.y] = mu, partial[(channels + c) * gridDim.y + blockIdx.y] = squares;
}

// Stage 2 of the statistics: thread c merges its slices' (n, mean, M2) in order, as Chan, Golub and LeVeque:
// with n = nₐ + n_b and δ = mean_b − meanₐ,   mean = meanₐ + δ·n_b/n,   M2 = M2ₐ + M2_b + δ²·nₐ·n_b/n;
// then var = M2 / M.
template <typename T>
__global__ void batch_norm_stats_merge(const double* __restrict__ partial, int channels, int slices,
                                       long long length, long long count, T* __restrict__ mean,
                                       T* __restrict__ var) {
    for (int c = first_index<int>(); c < channels; c += grid_stride<int>()) {
        double n = 0, mu = 0, m2 = 0;
        for (int s = 0; s < slices; ++s) {
            const double n_b = double(count - s * length < length ? count - s * length : length);
            const double delta = partial[c * slices + s] - mu, merged = n + n_b;
            mu += delta * (n_b / merged);
            m2 += partial[(channels + c) * slices + s] + delta * delta * (n * n_b / merged);
            n = merged;
        }
        mean[c] = T(mu), var[c] = T(m2 / count);
    }
}

template <typename T, typename Index>
__global__ void batch_norm_forward(const T* __restrict__ x, const T* __restrict__ mean,
                                   const T* __restrict__ inv_std, const T* __restrict__ weight,
                                   const T* __restrict__ bias, int channels, Index plane, Index count,
                                   T* __restrict__ y) {
    const Divmod<Index> by_plane(plane), by_channels(channels);
    for (Index i = first_index<Index>(); i < count; i += grid_stride<Index>()) {
        const int c = channel_of(i, by_plane, by_channels);
        y[i] = (x[i] - mean[c]) * (inv_std[c] * weight[c]) + bias[c];
    }
}

// Stage 1 of the backward: block (c, s) leaves its slice's Σ gy in partial[0, c, s] and Σ gy·x̂ in
// partial[1, c, s].
template <typename T, typename Index>
__global__ void batch_norm_backward_partials(const T* __restrict__ x, const T* __restrict__ gy,
                                             const T* __restrict__ mean, const T* __restrict__ inv_std,
                                             int channels, Index plane, Index count, Index length,
                                             double* __restrict__ partial) {
    const int c = blockIdx.x;
    const T mu = mean[c], istd = inv_std[c];
    const Divmod<Index> by_plane(plane);
    const Slice<Index> slice(length, count);
    double sum_gy = 0, sum_gy_xhat = 0;
    for (Index e = slice.begin + threadIdx.x; e < slice.end; e += blockDim.x) {
        const Index i = element(e, c, channels, by_plane);
        sum_gy += gy[i];
        sum_gy_xhat += gy[i] * ((x[i] - mu) * istd);
    }
    sum_gy = block_sum(sum_gy);
    sum_gy_xhat = block_sum(sum_gy_xhat);
    if (threadIdx.x == 0)
        partial[c * gridDim.y + blockIdx.y] = sum_gy, partial[(channels + c) * gridDim.y + blockIdx.y] = sum_gy_xhat;
}

// Stage 2 of the backward: thread r adds up row r of partial, the 2·C rows of `slices` sums, in order: into
// sums[r] (gbias for r < C, then gweight), and over M into means[r], which the input gradient takes.
template <typename T>
__global__ void batch_norm_backward_merge(const double* __restrict__ partial, int rows, int slices, long long count,
                                          double* __restrict__ means, T* __restrict__ sums) {
    for (int r = first_index<int>(); r < rows; r += grid_stride<int>()) {
        double total = 0;
        for (int s = 0; s < slices; ++s) total += partial[r * slices + s];
        sums[r] = T(total), means[r] = total / count;
    }
}

// means holds mean(gy) and then mean(gy·x̂) per channel, from stage 2; unread in eval mode.
template <typename T, typename Index>
__global__ void batch_norm_backward_input(const T* __restrict__ x, const T* __restrict__ gy,
                                          const T* __restrict__ mean, const T* __restrict__ inv_std,
                                          const T* __restrict__ weight, const double* __restrict__ means,
                                          int training, int channels, Index plane, Index count,
                                          T* __restrict__ gx) {
    const Divmod<Index> by_plane(plane), by_channels(channels);
    for (Index i = first_index<Index>(); i < count; i += grid_stride<Index>()) {
        const int c = channel_of(i, by_plane, by_channels);
        const T istd = inv_std[c], xhat = (x[i] - mean[c]) * istd;
        const double mean_gy = training ? means[c] : 0, mean_gy_xhat = training ? means[channels + c] : 0;
        gx[i] = T(weight[c] * istd * (gy[i] - mean_gy - xhat * mean_gy_xhat));
    }
}
