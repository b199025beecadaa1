// The tensor-core product for mainloop.cuh: a warp's share of the block tile summed by nvcuda::wmma in TF32
// (m16 n16 k8, float accumulation), the alternative to Sums when ninx.backends.cuda.allow_tf32 is set.
//
// Warp w (w_m, w_n) of WARPS_M × WARPS_N owns the (BM/WARPS_M) × (BN/WARPS_N) part of the tile that its
// threads' 8×8 sums cover in Sums, as FM × FN accumulator fragments of 16×16. Per step (BK = 8, one k8) it
// loads FM fragments of A from a_tile — A(m, k) = a_tile[k][m], a column-major 16×8 tile with leading
// dimension BM + PAD — and FN of B from b_tile (row-major, BN + PAD), rounds their elements to TF32 (10-bit
// mantissa, to nearest) and multiplies every pair. A fragment's layout across lanes is opaque, so the sums
// leave through shared memory: each warp stores one fragment at a time into its own 16×16 slot of the
// (then idle) shared tiles and writes it out, 8 elements a lane, through the epilogue.
#pragma once
#include "mainloop.cuh"
#include "wmma.cuh"

template <class Tile> struct TensorCoreSums {
    static constexpr int WM = Tile::BM / Tile::WARPS_M, WN = Tile::BN / Tile::WARPS_N;  // the warp's part
    static constexpr int FM = WM / 16, FN = WN / 16;
    static_assert(Tile::BK == 8 && WM % 16 == 0 && WN % 16 == 0, "a warp's part is whole m16 n16 k8 tiles");
    static_assert(Tile::THREADS / WARP * 256 * sizeof(float) <= sizeof(SharedTiles<float, Tile>),
                  "a 16×16 slot per warp fits in the shared tiles");
    nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float> sum[FM][FN];
    float* slot;  // this warp's 16×16 floats of shared memory for writing out

    __device__ explicit TensorCoreSums(SharedTiles<float, Tile>& tiles)
        : slot(reinterpret_cast<float*>(&tiles) + threadIdx.x / WARP * 256) {
#pragma unroll
        for (int f = 0; f < FM; ++f)
#pragma unroll
            for (int g = 0; g < FN; ++g) nvcuda::wmma::fill_fragment(sum[f][g], 0.0f);
    }

    __device__ static int warp_m() { return threadIdx.x / WARP / Tile::WARPS_N * WM; }
    __device__ static int warp_n() { return threadIdx.x / WARP % Tile::WARPS_N * WN; }

    template <class Fragment> __device__ static void round_to_tf32(Fragment& f) {
#pragma unroll
        for (int i = 0; i < f.num_elements; ++i) f.x[i] = nvcuda::wmma::__float_to_tf32(f.x[i]);
    }

    __device__ __forceinline__ void multiply(const float (*a_tile)[Tile::BM + Tile::PAD],
                                             const float (*b_tile)[Tile::BN + Tile::PAD]) {
        using namespace nvcuda::wmma;
        fragment<matrix_a, 16, 16, 8, precision::tf32, col_major> a[FM];
        fragment<matrix_b, 16, 16, 8, precision::tf32, row_major> b[FN];
#pragma unroll
        for (int f = 0; f < FM; ++f) {
            load_matrix_sync(a[f], &a_tile[0][warp_m() + 16 * f], Tile::BM + Tile::PAD);
            round_to_tf32(a[f]);
        }
#pragma unroll
        for (int g = 0; g < FN; ++g) {
            load_matrix_sync(b[g], &b_tile[0][warp_n() + 16 * g], Tile::BN + Tile::PAD);
            round_to_tf32(b[g]);
        }
#pragma unroll
        for (int f = 0; f < FM; ++f)
#pragma unroll
            for (int g = 0; g < FN; ++g) mma_sync(sum[f][g], a[f], b[g], sum[f][g]);
    }
};

// Writes the block's tensor-core sums through `epilogue` into out (see column_offset), a fragment at a time.
template <typename T, class Tile, class Finish>
__device__ __forceinline__ void write_tile(const TensorCoreSums<Tile>& sums, float* out, const Finish& epilogue,
                                           int m0, int n0, int m, int n, int L, long long image_stride) {
    const int lane = threadIdx.x % WARP;
#pragma unroll
    for (int f = 0; f < sums.FM; ++f)
#pragma unroll
        for (int g = 0; g < sums.FN; ++g) {
            nvcuda::wmma::store_matrix_sync(sums.slot, sums.sum[f][g], 16, nvcuda::wmma::mem_row_major);
            __syncwarp();
#pragma unroll
            for (int t = 0; t < 8; ++t) {  // element e = r·16 + c of the fragment: 16 lanes on one row
                const int e = lane + WARP * t;
                const int row = m0 + sums.warp_m() + 16 * f + e / 16, column = n0 + sums.warp_n() + 16 * g + e % 16;
                if (row < m && column < n) {
                    const long long at = column_offset(column, L, image_stride) + (long long)row * L;
                    out[at] = epilogue(sums.slot[e], at, row);
                }
            }
            __syncwarp();  // every lane has read the slot before the next fragment overwrites it
        }
    __syncthreads();  // the slots are the shared tiles: a next mainloop (another out[o]) refills them after this
}
