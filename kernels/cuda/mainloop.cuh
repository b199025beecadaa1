// The GEMM core's block-level mainloop, shared by the GEMM (gemm.cu) and the implicit-GEMM convolutions
// (conv.cu): a block computes one BM×BN tile of out = A (M×K) @ B (K×N), BK of K at a time.
//
// What an operand is lives in its *loader*: a strided matrix (StridedLoader, below) or a window of the
// convolution's input gathered on the fly (conv.cu). A loader stages its BK×W slice of a step as
// tile[k][w] — A as a_tile[k][m], B as b_tile[k][n] — in two halves, so that the global loads of the next
// step are in flight while the current one computes:
//     fetch(k0, registers)   the thread's share of the step at k0, from global memory (0 outside the matrix)
//     store(registers, tile) that share into a shared-memory tile
//
// Double buffering: two tiles per operand. Step s computes on buffer s % 2 while the step s + 1 loaded into
// registers is stored into the other buffer; one barrier per step then both publishes the new buffer and
// retires the old one.
//
// Warp tiling: the block's threads form WARPS_M × WARPS_N warps, a warp's 32 lanes LANES_M × LANES_N, and
// each thread keeps 8×8 sums in registers, as 2×2 sub-tiles of 4×4 spaced a warp's lane span apart:
//     rows    m = warp_m·(BM/WARPS_M) + lane_m·4 + h·(LANES_M·4) + i,   h < 2, i < 4   (columns alike)
// so per k a thread reads 2 runs of 4 consecutive shared words of each operand (one 16-byte load each for
// float), and the lanes of a warp read at most 8 distinct runs of one row: conflict-free.
//
// Shared rows are padded by PAD = 4 words: a loader that writes along k (a row-major A whose K axis is
// contiguous, or the convolutions' depth-fixed loaders) puts neighbouring threads PAD banks apart instead
// of on one bank.
#pragma once
#include "ninx_cuda.cuh"

constexpr int SHARED_PAD = 4;  // words of padding after each shared row (see above)
constexpr int WARP = 32;        // lanes; CUDA's warpSize is not a constant expression

template <int BM_, int BN_, int BK_, int WARPS_M_, int WARPS_N_, int LANES_M_>
struct Tiling {
    static constexpr int BM = BM_, BN = BN_, BK = BK_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
    static constexpr int LANES_M = LANES_M_, LANES_N = WARP / LANES_M_;
    static constexpr int THREADS = WARP * WARPS_M * WARPS_N;
    static constexpr int PER = 8, PAD = SHARED_PAD;  // sums per thread along each axis; shared row padding
    static_assert(BM == WARPS_M * LANES_M * PER && BN == WARPS_N * LANES_N * PER, "the warps tile the block");
    static_assert(THREADS % BK == 0, "the depth-fixed loaders give each thread one k of a step");
};

// The tile shapes gemm.py and conv.py choose from (their TILINGS tables hold the same numbers).
struct Tile128x128 : Tiling<128, 128, 8, 2, 4, 8> {};  // 256 threads: large problems
struct Tile64x64 : Tiling<64, 64, 8, 1, 2, 8> {};       // 64 threads: too few 128×128 tiles to fill the GPU
struct Tile32x128 : Tiling<32, 128, 8, 1, 2, 4> {};     // 64 threads: few rows (10 output channels), many columns

// Row (column) of sum[i][·] (sum[·][j]) in the block's tile, for i (j) < 8.
template <class Tile> __device__ __forceinline__ int tile_row(int i) {
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    return warp / Tile::WARPS_N * (Tile::BM / Tile::WARPS_M) + lane / Tile::LANES_N * 4 +
           i / 4 * (Tile::LANES_M * 4) + i % 4;
}
template <class Tile> __device__ __forceinline__ int tile_column(int j) {
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    return warp % Tile::WARPS_N * (Tile::BN / Tile::WARPS_N) + lane % Tile::LANES_N * 4 +
           j / 4 * (Tile::LANES_N * 4) + j % 4;
}

// dst[0..3] = src[0..3], 16 bytes at a time (src 16-byte aligned)
template <typename T> __device__ __forceinline__ void copy4(const T* src, T* dst) {
    typedef typename Vector16<T>::type Vector;
    constexpr int V = 16 / sizeof(T);
#pragma unroll
    for (int v = 0; v < 4; v += V) {
        const Vector chunk = *reinterpret_cast<const Vector*>(src + v);
        const T* e = reinterpret_cast<const T*>(&chunk);
#pragma unroll
        for (int j = 0; j < V; ++j) dst[v + j] = e[j];
    }
}

// The block's shared tiles: two buffers per operand (32-byte aligned, as tensor-core loads need).
template <typename T, class Tile> struct SharedTiles {
    alignas(32) T a[2][Tile::BK][Tile::BM + Tile::PAD];
    alignas(32) T b[2][Tile::BK][Tile::BN + Tile::PAD];
};

// The CUDA-core product: each thread's 8×8 sums in registers, at tile_row(i), tile_column(j).
template <typename T, class Tile> struct Sums {
    T sum[8][8] = {};

    __device__ explicit Sums(SharedTiles<T, Tile>&) {}  // the tiles are for products that write out through them

    // sum += a_tile @ b_tile over one step's BK
    __device__ __forceinline__ void multiply(const T (*a_tile)[Tile::BM + Tile::PAD],
                                             const T (*b_tile)[Tile::BN + Tile::PAD]) {
#pragma unroll
        for (int kk = 0; kk < Tile::BK; ++kk) {
            T a[8], b[8];
#pragma unroll
            for (int h = 0; h < 8; h += 4) {
                copy4(&a_tile[kk][tile_row<Tile>(h)], &a[h]);
                copy4(&b_tile[kk][tile_column<Tile>(h)], &b[h]);
            }
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) sum[i][j] += a[i] * b[j];
        }
    }
};


// product += A[:, k_begin:k_end] @ B[k_begin:k_end, :] on this block's tile, through the loaders; the product
// is Sums (CUDA cores) or TensorCoreSums (tensor_cores.cuh). Every thread of the block calls it with the same
// range; it ends on a barrier, so the tiles may be reused at once.
template <typename T, class Tile, class ALoader, class BLoader, class Product>
__device__ __forceinline__ void mainloop(const ALoader& a, const BLoader& b, int k_begin, int k_end,
                                         SharedTiles<T, Tile>& tiles, Product& product) {
    if (k_begin >= k_end) return;
    typename ALoader::Registers a_next;
    typename BLoader::Registers b_next;
    a.fetch(k_begin, a_next);
    b.fetch(k_begin, b_next);
    a.store(a_next, tiles.a[0]);
    b.store(b_next, tiles.b[0]);
    __syncthreads();
    int buffer = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += Tile::BK) {
        const bool more = k0 + Tile::BK < k_end;
        if (more) {  // issue the next step's global loads before this step's arithmetic
            a.fetch(k0 + Tile::BK, a_next);
            b.fetch(k0 + Tile::BK, b_next);
        }
        product.multiply(tiles.a[buffer], tiles.b[buffer]);
        if (more) {
            a.store(a_next, tiles.a[buffer ^ 1]);
            b.store(b_next, tiles.b[buffer ^ 1]);
        }
        __syncthreads();
        buffer ^= 1;
    }
}

// X[w0 + w, k] for w < W of a strided matrix X (w_count × k_count; strides in elements, any sign), as
// tile[k - k0][w]. Units of V = 16 bytes of T run along w when w_stride is 1, else along k; consecutive
// threads take consecutive units, so the loads coalesce. A unit is one 16-byte load when its axis has stride
// 1, it lies wholly inside X and it is aligned (X[w0, 0] 16-byte aligned, the other stride a multiple of V);
// else it is loaded element by element, 0 outside X.
template <typename T, int W, int BK, int THREADS>
struct StridedLoader {
    static constexpr int V = 16 / sizeof(T), E = W * BK / THREADS;  // elements per thread per step
    static_assert(E % V == 0 && W % V == 0 && BK % V == 0, "a thread's share is whole units");
    typedef T Registers[E];
    const T* origin;  // X[w0, 0]
    long long w_stride, k_stride;
    int w_left, k_count;  // w_left = w_count − w0: the rows (of X) left from w0
    bool along_w, vector;

    __device__ StridedLoader(const T* x, long long w_stride, long long k_stride, int w0, int w_count, int k_count)
        : origin(x + w0 * w_stride), w_stride(w_stride), k_stride(k_stride), w_left(w_count - w0),
          k_count(k_count), along_w(w_stride == 1) {
        vector = (along_w || k_stride == 1) && reinterpret_cast<unsigned long long>(origin) % 16 == 0 &&
                 (along_w ? k_stride : w_stride) % V == 0;
    }

    // unit u's first element: along w, u = k·(W/V) + w/V; along k, u = w·(BK/V) + k/V
    __device__ __forceinline__ void unit_at(int u, int& w, int& k) const {
        w = along_w ? u % (W / V) * V : u / (BK / V);
        k = along_w ? u / (W / V) : u % (BK / V) * V;
    }

    __device__ __forceinline__ void fetch(int k0, Registers& r) const {
#pragma unroll
        for (int n = 0; n < E / V; ++n) {
            int w, k;
            unit_at(threadIdx.x + THREADS * n, w, k);
            k += k0;
            const T* at = origin + w * w_stride + k * k_stride;
            if (vector && (along_w ? w + V <= w_left && k < k_count : w < w_left && k + V <= k_count)) {
                const typename Vector16<T>::type chunk = *reinterpret_cast<const typename Vector16<T>::type*>(at);
                const T* e = reinterpret_cast<const T*>(&chunk);
#pragma unroll
                for (int j = 0; j < V; ++j) r[n * V + j] = e[j];
            } else {
#pragma unroll
                for (int j = 0; j < V; ++j) {
                    const int wj = along_w ? w + j : w, kj = along_w ? k : k + j;
                    r[n * V + j] = wj < w_left && kj < k_count ? origin[wj * w_stride + kj * k_stride] : T(0);
                }
            }
        }
    }

    __device__ __forceinline__ void store(const Registers& r, T (*tile)[W + SHARED_PAD]) const {
#pragma unroll
        for (int n = 0; n < E / V; ++n) {
            int w, k;
            unit_at(threadIdx.x + THREADS * n, w, k);
#pragma unroll
            for (int j = 0; j < V; ++j) (along_w ? tile[k][w + j] : tile[k + j][w]) = r[n * V + j];
        }
    }
};

// The epilogue: v (+ c[at] when accumulating) (+ bias[row] when given), clamped to [low, high] (−inf, inf
// for none; 0, inf for ReLU; 0, 6 for ReLU6; NaN passes through).
template <typename T> struct Epilogue {
    const T* c;
    const T* bias;
    T low, high;
    __device__ __forceinline__ T operator()(T v, long long at, int row) const {
        if (c) v += c[at];
        if (bias) v += bias[row];
        return v <= low ? low : (v > high ? high : v);
    }
};

// The sums as they are (a gradient, or the partial sums of a split reduction).
struct Unchanged {
    template <typename T> __device__ __forceinline__ T operator()(T v, long long, int) const { return v; }
};

// Where element (row, column) of the M×N product goes in out:
//     out[(column / L)·image_stride + row·L + column % L]
// — a plain row-major matrix when L = N (image_stride unused), or the (image, row, pixel) layout of a
// convolution's NCHW output when the columns run over (image, pixel) with L pixels an image. This is the part
// that depends on the column only; add row·L.
__device__ __forceinline__ long long column_offset(int column, int L, long long image_stride) {
    return column / L * image_stride + column % L;
}

// Writes the block's sums through `epilogue` into out (see column_offset).
template <typename T, class Tile, class Finish>
__device__ __forceinline__ void write_tile(const Sums<T, Tile>& sums, T* out, const Finish& epilogue, int m0, int n0,
                                           int m, int n, int L, long long image_stride) {
    long long column_at[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const int column = n0 + tile_column<Tile>(j);
        column_at[j] = column < n ? column_offset(column, L, image_stride) : -1;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int row = m0 + tile_row<Tile>(i);
        if (row >= m) continue;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            if (column_at[j] < 0) continue;
            const long long at = column_at[j] + (long long)row * L;
            out[at] = epilogue(sums.sum[i][j], at, row);
        }
    }
}
