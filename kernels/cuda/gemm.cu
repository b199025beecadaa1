// The GEMM core: out[o] = epilogue(Σ_i a[i % Ba] @ b[i % Bb]) over the batch indices i ≡ o (mod Bo), i < B.
//
// a (Ba, M, K) and b (Bb, K, N) are strided views (any strides, in elements, negative and zero included);
// out (Bo, M, N) is C-contiguous. Each block computes one tile of one out[o] (tile column on blockIdx.x,
// tile row on blockIdx.y, o on blockIdx.z), summing all the products that fall on it itself — the
// batch-reduce is deterministic and needs no atomics. The mainloop, its tile shapes and the epilogue are
// mainloop.cuh's; here the operands are strided matrices.
//
// The ladder (rungs of the SGEMM ladder; a number where a GPU measured it — none has yet):
//   1. 64×64×16 shared tiles, 8×8 sums per thread, 16-byte global loads where aligned
//   2. 128×128×8 tiles of 256 threads in 2×4 warps, a thread's 8×8 as 2×2 sub-tiles of 4×4 read with
//      16-byte shared loads; padded shared rows; global → register prefetch with two shared buffers, one
//      barrier per step; the tile shape chosen per problem (tiling.py)
//   3. TF32 tensor cores through nvcuda::wmma (m16n16k8, float accumulation), when allow_tf32 is set
#include "ninx_cuda.cuh"
#include "mainloop.cuh"
#include "tensor_cores.cuh"

#define NINX_GEMM_PARAMETERS                                                                               \
    const T *__restrict__ a, long long a_batch, long long a_row, long long a_col, int a_count,               \
        const T *__restrict__ b, long long b_batch, long long b_row, long long b_col, int b_count, const T *c, \
        const T *__restrict__ bias, T low, T high, int m, int n, int k, int batch, int out_count, T *out
#define NINX_GEMM_ARGUMENTS \
    a, a_batch, a_row, a_col, a_count, b, b_batch, b_row, b_col, b_count, c, bias, low, high, m, n, k, batch, out_count, out

// Both GEMM kernels: `Product` is what a block sums its tile in, on CUDA cores or on tensor cores.
template <typename T, class Tile, class Product>
__device__ __forceinline__ void gemm_blocks(NINX_GEMM_PARAMETERS) {
    __shared__ SharedTiles<T, Tile> tiles;
    const int m0 = blockIdx.y * Tile::BM, n0 = blockIdx.x * Tile::BN;
    for (int o = blockIdx.z; o < out_count; o += gridDim.z) {
        Product sums(tiles);
        for (int i = o; i < batch; i += out_count) {
            // the tile's rows of A (w = m, k) and columns of B (w = n, k)
            const StridedLoader<T, Tile::BM, Tile::BK, Tile::THREADS> rows(a + (i % a_count) * a_batch, a_row,
                                                                           a_col, m0, m, k);
            const StridedLoader<T, Tile::BN, Tile::BK, Tile::THREADS> columns(b + (i % b_count) * b_batch, b_col,
                                                                              b_row, n0, n, k);
            mainloop(rows, columns, 0, k, tiles, sums);
        }
        const long long at = (long long)o * m * n;
        write_tile<T, Tile>(sums, out + at, Epilogue<T>{c ? c + at : c, bias, low, high}, m0, n0, m, n, n, 0);
    }
}

template <typename T, class Tile>
__global__ void __launch_bounds__(Tile::THREADS, 1) gemm(NINX_GEMM_PARAMETERS) {
    gemm_blocks<T, Tile, Sums<T, Tile>>(NINX_GEMM_ARGUMENTS);
}

// float only: the inputs rounded to TF32 on the tensor cores (tensor_cores.cuh)
template <typename T, class Tile>
__global__ void __launch_bounds__(Tile::THREADS, 1) gemm_tf32(NINX_GEMM_PARAMETERS) {
    gemm_blocks<T, Tile, TensorCoreSums<Tile>>(NINX_GEMM_ARGUMENTS);
}

// out[o] = epilogue(Σ_s partial[s·Bo + o]) for a batch-reduce split into `slices` GEMMs (see gemm.py):
// partial holds slices·Bo matrices of m×n, `size` = Bo·m·n elements per slice; summed in slice order.
template <typename T>
__global__ void sum_slices(const T* __restrict__ partial, int slices, long long size, int m, int n, const T* c,
                           const T* __restrict__ bias, T low, T high, T* out) {
    for (long long e = first_index(); e < size; e += grid_stride()) {
        T v = T(0);
        for (int slice = 0; slice < slices; ++slice) v += partial[slice * size + e];
        out[e] = Epilogue<T>{c, bias, low, high}(v, e, e / n % m);  // e = (o·m + row)·n + column
    }
}
