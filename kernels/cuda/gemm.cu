// The GEMM core: out[o] = epilogue(Σ_i a[i % Ba] @ b[i % Bb]) over the batch indices i ≡ o (mod Bo), i < B.
//
// a (Ba, M, K) and b (Bb, K, N) are strided views (any strides, in elements, negative and zero included);
// out (Bo, M, N) is C-contiguous. Each block computes one 64×64 tile of one out[o] (tile column on
// blockIdx.x, tile row on blockIdx.y, o on blockIdx.z), summing all the products that fall on it itself — the
// batch-reduce is deterministic and needs no atomics. Per 16-deep step of K the block stages a 16×64 tile of
// A and of B in shared memory (16-byte loads where the contiguous axis is aligned, elementwise otherwise, zero
// past the edges), then each of its 64 threads adds their product into the 8×8 outputs it keeps in registers.
//
// The epilogue: v = Σ (+ c[o, m, n] when c is given: accumulate) (+ bias[m] when given), clamped to
// [low, high] (−inf, inf for none; 0, inf for ReLU; 0, 6 for ReLU6; NaN passes through).
//
// The loops over a thread's 8×8 outputs are unrolled, so its sums stay in registers — 139 for float, 208 for
// double on sm_90, no spills — rather than in local memory.
#include "ninx_cuda.cuh"

constexpr int TILE_M = 64, TILE_N = 64, TILE_K = 16;
constexpr int THREADS_M = 8, THREADS_N = 8;  // the block's threads as an 8×8 grid
constexpr int THREADS = THREADS_M * THREADS_N;
constexpr int PER_M = TILE_M / THREADS_M, PER_N = TILE_N / THREADS_N;  // 8×8 outputs per thread

// v (+ c[at] when accumulating) (+ bias[row]), clamped to [low, high]
template <typename T>
__device__ __forceinline__ T epilogue(T v, const T* c, const T* bias, T low, T high, long long at, int row) {
    if (c) v += c[at];
    if (bias) v += bias[row];
    return v <= low ? low : (v > high ? high : v);
}

// tile[k][w] = src[w·w_stride + k·k_stride] for w < w_left and k < k_left, else 0, by the block's threads.
// Units of V = 16 bytes of T run along w if w_stride is 1, else along k, consecutive threads taking
// consecutive units so the loads coalesce; a unit is one 16-byte load when its axis has stride 1, it lies
// wholly inside the matrix and it is aligned (src 16-byte aligned, the other stride a multiple of V).
template <typename T, int W>
__device__ __forceinline__ void stage(T (*tile)[W], const T* src, long long w_stride, long long k_stride,
                                      int w_left, int k_left) {
    constexpr int V = 16 / sizeof(T);
    typedef typename Vector16<T>::type Vector;
    const bool along_w = w_stride == 1;
    const bool contiguous = along_w || k_stride == 1;
    const bool aligned = contiguous && reinterpret_cast<unsigned long long>(src) % 16 == 0 &&
                         (along_w ? k_stride : w_stride) % V == 0;
    for (int unit = threadIdx.x; unit < TILE_K * W / V; unit += THREADS) {
        // along w: unit = k·(W/V) + w/V;   along k: unit = w·(TILE_K/V) + k/V
        const int w = along_w ? unit % (W / V) * V : unit / (TILE_K / V);
        const int k = along_w ? unit / (W / V) : unit % (TILE_K / V) * V;
        const int w_end = along_w ? w + V : w + 1, k_end = along_w ? k + 1 : k + V;
        if (aligned && w_end <= w_left && k_end <= k_left) {
            const Vector v = *reinterpret_cast<const Vector*>(src + w * w_stride + k * k_stride);
            const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
            for (int j = 0; j < V; ++j) (along_w ? tile[k][w + j] : tile[k + j][w]) = e[j];
        } else {
            for (int j = 0; j < V; ++j) {
                const int wj = along_w ? w + j : w, kj = along_w ? k : k + j;
                tile[kj][wj] = wj < w_left && kj < k_left ? src[wj * w_stride + kj * k_stride] : T(0);
            }
        }
    }
}

// __launch_bounds__(THREADS, 1): one block per SM is enough, so ptxas need not spill to fit more
template <typename T>
__global__ void __launch_bounds__(THREADS, 1)
gemm(const T* __restrict__ a, long long a_batch, long long a_row, long long a_col, int a_count,
     const T* __restrict__ b, long long b_batch, long long b_row, long long b_col, int b_count,
     const T* c, const T* __restrict__ bias, T low, T high, int m, int n, int k, int batch, int out_count,
     T* out) {
    __shared__ T a_tile[TILE_K][TILE_M];  // a_tile[k][r] = A[m0 + r, k0 + k]
    __shared__ T b_tile[TILE_K][TILE_N];  // b_tile[k][s] = B[k0 + k, n0 + s]
    const int m0 = blockIdx.y * TILE_M, n0 = blockIdx.x * TILE_N;
    // thread (ty, tx) owns rows m0 + ty + THREADS_M·i and columns n0 + tx + THREADS_N·j: neighbouring threads
    // read neighbouring shared words and write neighbouring outputs
    const int ty = threadIdx.x / THREADS_N, tx = threadIdx.x % THREADS_N;
    for (int o = blockIdx.z; o < out_count; o += gridDim.z) {
        T sum[PER_M][PER_N] = {};
        for (int i = o; i < batch; i += out_count) {
            const T* a_tile_origin = a + (i % a_count) * a_batch + m0 * a_row;
            const T* b_tile_origin = b + (i % b_count) * b_batch + n0 * b_col;
            for (int k0 = 0; k0 < k; k0 += TILE_K) {
                stage<T, TILE_M>(a_tile, a_tile_origin + k0 * a_col, a_row, a_col, m - m0, k - k0);
                stage<T, TILE_N>(b_tile, b_tile_origin + k0 * b_row, b_col, b_row, n - n0, k - k0);
                __syncthreads();
#pragma unroll
                for (int kk = 0; kk < TILE_K; ++kk) {
                    T a_column[PER_M], b_row_part[PER_N];
#pragma unroll
                    for (int r = 0; r < PER_M; ++r) a_column[r] = a_tile[kk][ty + THREADS_M * r];
#pragma unroll
                    for (int s = 0; s < PER_N; ++s) b_row_part[s] = b_tile[kk][tx + THREADS_N * s];
#pragma unroll
                    for (int r = 0; r < PER_M; ++r)
#pragma unroll
                        for (int s = 0; s < PER_N; ++s) sum[r][s] += a_column[r] * b_row_part[s];
                }
                __syncthreads();  // the tiles are read before the next step overwrites them
            }
        }
#pragma unroll
        for (int r = 0; r < PER_M; ++r)
#pragma unroll
            for (int s = 0; s < PER_N; ++s) {
                const int row = m0 + ty + THREADS_M * r, column = n0 + tx + THREADS_N * s;
                if (row >= m || column >= n) continue;
                const long long at = ((long long)o * m + row) * n + column;
                out[at] = epilogue(sum[r][s], c, bias, low, high, at, row);
            }
    }
}

// out[o] = epilogue(Σ_s partial[s·Bo + o]) for a batch-reduce split into `slices` GEMMs (see gemm.py):
// partial holds slices·Bo matrices of m×n, `size` = Bo·m·n elements per slice; summed in slice order.
template <typename T>
__global__ void sum_slices(const T* __restrict__ partial, int slices, long long size, int m, int n, const T* c,
                           const T* __restrict__ bias, T low, T high, T* out) {
    for (long long e = first_index(); e < size; e += grid_stride()) {
        T v = T(0);
        for (int slice = 0; slice < slices; ++slice) v += partial[slice * size + e];
        out[e] = epilogue(v, c, bias, low, high, e, e / n % m);  // e = (o·m + row)·n + column
    }
}
