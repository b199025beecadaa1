// Convolution as an implicit GEMM (CUTLASS's formulation): the GEMM core's mainloop (mainloop.cuh) with a
// loader that gathers the convolution's window straight from the tensor into shared memory, so no column
// matrix is ever built. For x (N, C, H, W), weight (K, C/G, R, S) in G groups and y (N, K, P, Q), per group g
// (blockIdx.z), with Cg = C/G and Kg = K/G:
//
//   forward  y[n, g·Kg + k, p, q] = Σ_{c,r,s} w[g·Kg + k, c, r, s] · x[n, g·Cg + c, p·sh − ph + r·dh, q·sw − pw + s·dw]
//            M = Kg, N = N·P·Q (image, pixel), K = Cg·R·S;   A = w (a strided matrix),  B = x's windows
//   input    dx[n, g·Cg + c, y, x] = Σ_{k,r,s} w[g·Kg + k, c, r, s] · dy[n, g·Kg + k, (y + ph − r·dh)/sh, (x + pw − s·dw)/sw]
//            over the taps whose quotients are exact and in range;
//            M = Cg, N = N·H·W, K = Kg·R·S;   A = wᵀ per group (conv.py transposes the weight), B = dy's taps
//   weight   dw[g·Kg + k, c, r, s] = Σ_{n,p,q} dy[n, g·Kg + k, p, q] · x[n, g·Cg + c, p·sh − ph + r·dh, q·sw − pw + s·dw]
//            M = Kg, N = Cg·R·S, K = N·P·Q;   A = dy's rows, B = x's taps — the reduction split into slices
//            over K summed by gemm.cu's sum_slices: deterministic
//
// A gather loader keeps fixed what it can: a column-fixed one (forward, input gradient) keeps the same
// columns every step, so each column's image and window corner are worked out once per block, and only the
// tap (c, r, s) of each k is decoded per step; a depth-fixed one (weight gradient) keeps one k per step and
// decodes it once for all its columns. Indices inside one image are 32-bit (conv.py checks that C·H·W and
// K·P·Q fit); image offsets are 64-bit.
#include "ninx_cuda.cuh"
#include "mainloop.cuh"

// The convolution's sizes, as the kernels take them (after the images, channels, filters and groups).
struct Conv {
    int n, c, k, groups;                        // images, input channels, output channels (filters), groups
    int h, w, r, s, sh, sw, ph, pw, dh, dw, p, q;  // input, kernel, stride, padding, dilation, output sizes
    __device__ int cg() const { return c / groups; }
    __device__ int kg() const { return k / groups; }
};

// Which elements of a step's BK × W slice a thread loads, and their store into the shared tile; each gather
// loader below derives from one. Column-fixed: the same COLUMNS columns every step; element e is column slot
// e % COLUMNS at depth depth(e).
template <typename T, int W, int BK, int THREADS> struct ColumnFixed {
    static constexpr int E = W * BK / THREADS, COLUMNS = W > THREADS ? W / THREADS : 1;
    static constexpr int K_STEP = W > THREADS ? 1 : THREADS / W;
    typedef T Registers[E];
    __device__ static int column(int slot) { return W > THREADS ? threadIdx.x + THREADS * slot : threadIdx.x % W; }
    __device__ static int depth(int e) { return (W > THREADS ? 0 : threadIdx.x / W) + K_STEP * (e / COLUMNS); }
    __device__ __forceinline__ void store(const Registers& r, T (*tile)[W + SHARED_PAD]) const {
#pragma unroll
        for (int e = 0; e < E; ++e) tile[depth(e)][column(e % COLUMNS)] = r[e];
    }
};

// Depth-fixed: one k of each step, consecutive threads on consecutive k (so on consecutive pixels of the
// tensor); element e is column column(e).
template <typename T, int W, int BK, int THREADS> struct DepthFixed {
    static constexpr int E = W * BK / THREADS;
    typedef T Registers[E];
    __device__ static int depth() { return threadIdx.x % BK; }
    __device__ static int column(int e) { return threadIdx.x / BK + THREADS / BK * e; }
    __device__ __forceinline__ void store(const Registers& r, T (*tile)[W + SHARED_PAD]) const {
#pragma unroll
        for (int e = 0; e < E; ++e) tile[depth()][column(e)] = r[e];
    }
};

// (a, b) = (i / d, i % d) in 32 bits
__device__ __forceinline__ void divmod(int i, int d, int& a, int& b) {
    a = i / d;
    b = i - a * d;
}

// The element (c, y, x) of one image, 0 outside it: a tap in the padding.
template <typename T>
__device__ __forceinline__ T pixel(const T* image, int c, int y, int x, int h, int w) {
    return (unsigned)y < (unsigned)h && (unsigned)x < (unsigned)w ? image[(c * h + y) * w + x] : T(0);
}

// B of the forward: x's window under output pixel (n, p, q) = column, at tap (c, r, s) = k.
template <typename T, int W, int BK, int THREADS> struct InputWindows : ColumnFixed<T, W, BK, THREADS> {
    typedef ColumnFixed<T, W, BK, THREADS> Map;
    using typename Map::Registers;
    Conv g;
    int depth_count;
    const T* image[Map::COLUMNS];  // x[n, group·Cg] of the column's image; null past the last column
    int y0[Map::COLUMNS], x0[Map::COLUMNS];  // the window's corner (p·sh − ph, q·sw − pw)

    __device__ InputWindows(const T* x, const Conv& g, int group, int n0) : g(g), depth_count(g.cg() * g.r * g.s) {
#pragma unroll
        for (int slot = 0; slot < Map::COLUMNS; ++slot) {
            const int column = n0 + Map::column(slot);
            int n, pq, p, q;
            divmod(column, g.p * g.q, n, pq);
            divmod(pq, g.q, p, q);
            image[slot] = n < g.n ? x + ((long long)n * g.c + group * g.cg()) * g.h * g.w : nullptr;
            y0[slot] = p * g.sh - g.ph;
            x0[slot] = q * g.sw - g.pw;
        }
    }

    __device__ __forceinline__ void fetch(int k0, Registers& r) const {
#pragma unroll
        for (int e = 0; e < Map::E; ++e) {
            const int slot = e % Map::COLUMNS, k = k0 + Map::depth(e);
            int c, rs, i, j;
            divmod(k, g.r * g.s, c, rs);
            divmod(rs, g.s, i, j);
            r[e] = image[slot] && k < depth_count
                       ? pixel(image[slot], c, y0[slot] + i * g.dh, x0[slot] + j * g.dw, g.h, g.w) : T(0);
        }
    }
};

// B of the input gradient: the entries of dy that input pixel (n, y, x) = column fed, at tap (k, r, s) = k.
template <typename T, int W, int BK, int THREADS> struct OutputTaps : ColumnFixed<T, W, BK, THREADS> {
    typedef ColumnFixed<T, W, BK, THREADS> Map;
    using typename Map::Registers;
    Conv g;
    int depth_count;
    const T* image[Map::COLUMNS];  // dy[n, group·Kg]; null past the last column
    int y0[Map::COLUMNS], x0[Map::COLUMNS];  // y + ph, x + pw: the window p reads (y, x) at tap r when y0 − r·dh = p·sh

    __device__ OutputTaps(const T* gy, const Conv& g, int group, int n0) : g(g), depth_count(g.kg() * g.r * g.s) {
#pragma unroll
        for (int slot = 0; slot < Map::COLUMNS; ++slot) {
            const int column = n0 + Map::column(slot);
            int n, yx, y, x;
            divmod(column, g.h * g.w, n, yx);
            divmod(yx, g.w, y, x);
            image[slot] = n < g.n ? gy + ((long long)n * g.k + group * g.kg()) * g.p * g.q : nullptr;
            y0[slot] = y + g.ph;
            x0[slot] = x + g.pw;
        }
    }

    __device__ __forceinline__ void fetch(int k0, Registers& r) const {
#pragma unroll
        for (int e = 0; e < Map::E; ++e) {
            const int slot = e % Map::COLUMNS, depth = k0 + Map::depth(e);
            int k, rs, i, j, p, p_rest, q, q_rest;
            divmod(depth, g.r * g.s, k, rs);
            divmod(rs, g.s, i, j);
            const int ty = y0[slot] - i * g.dh, tx = x0[slot] - j * g.dw;
            divmod(ty, g.sh, p, p_rest);
            divmod(tx, g.sw, q, q_rest);
            const bool tap = image[slot] && depth < depth_count && ty >= 0 && tx >= 0 && p_rest == 0 &&
                             q_rest == 0 && p < g.p && q < g.q;
            r[e] = tap ? image[slot][(k * g.p + p) * g.q + q] : T(0);
        }
    }
};

// A of the weight gradient: dy[n, group·Kg + row, pixel] for k = (n, pixel) and rows row = the tile's w.
template <typename T, int W, int BK, int THREADS> struct OutputRows : DepthFixed<T, W, BK, THREADS> {
    typedef DepthFixed<T, W, BK, THREADS> Map;
    using typename Map::Registers;
    Conv g;
    const T* gy;
    int group, w0, depth_count;

    __device__ OutputRows(const T* gy, const Conv& g, int group, int w0)
        : g(g), gy(gy), group(group), w0(w0), depth_count(g.n * g.p * g.q) {}

    __device__ __forceinline__ void fetch(int k0, Registers& r) const {
        const int depth = k0 + Map::depth();
        int n, pixel;
        divmod(depth, g.p * g.q, n, pixel);
        const T* row0 = gy + ((long long)n * g.k + group * g.kg()) * g.p * g.q + pixel;  // dy[n, group·Kg, pixel]
#pragma unroll
        for (int e = 0; e < Map::E; ++e) {
            const int row = w0 + Map::column(e);
            r[e] = depth < depth_count && row < g.kg() ? row0[row * g.p * g.q] : T(0);
        }
    }
};

// B of the weight gradient: x[n, group·Cg + c, p·sh − ph + r·dh, q·sw − pw + s·dw] for k = (n, p, q) and
// column (c, r, s).
template <typename T, int W, int BK, int THREADS> struct InputTaps : DepthFixed<T, W, BK, THREADS> {
    typedef DepthFixed<T, W, BK, THREADS> Map;
    using typename Map::Registers;
    Conv g;
    const T* x;
    int group, w0, depth_count, column_count;

    __device__ InputTaps(const T* x, const Conv& g, int group, int w0)
        : g(g), x(x), group(group), w0(w0), depth_count(g.n * g.p * g.q), column_count(g.cg() * g.r * g.s) {}

    __device__ __forceinline__ void fetch(int k0, Registers& r) const {
        const int depth = k0 + Map::depth();
        int n, pq, p, q;
        divmod(depth, g.p * g.q, n, pq);
        divmod(pq, g.q, p, q);
        const T* image = x + ((long long)n * g.c + group * g.cg()) * g.h * g.w;
        const int y0 = p * g.sh - g.ph, x0 = q * g.sw - g.pw;
#pragma unroll
        for (int e = 0; e < Map::E; ++e) {
            const int column = w0 + Map::column(e);
            int c, rs, i, j;
            divmod(column, g.r * g.s, c, rs);
            divmod(rs, g.s, i, j);
            r[e] = depth < depth_count && column < column_count
                       ? pixel(image, c, y0 + i * g.dh, x0 + j * g.dw, g.h, g.w) : T(0);
        }
    }
};

#define NINX_CONV_PARAMETERS                                                                             \
    int images, int channels, int filters, int groups, int h, int w, int r, int s, int sh, int sw, int ph, \
        int pw, int dh, int dw, int p, int q
#define NINX_CONV {images, channels, filters, groups, h, w, r, s, sh, sw, ph, pw, dh, dw, p, q}

// y = epilogue(conv(x, weight)): + bias[k] when given, clamped to [low, high] (the fused ReLU/ReLU6).
template <typename T, class Tile>
__global__ void __launch_bounds__(Tile::THREADS, 1)
conv_forward(const T* __restrict__ x, const T* __restrict__ weight, const T* __restrict__ bias, T low, T high,
             NINX_CONV_PARAMETERS, T* __restrict__ y) {
    const Conv g = NINX_CONV;
    __shared__ SharedTiles<T, Tile> tiles;
    const int group = blockIdx.z, m0 = blockIdx.y * Tile::BM, n0 = blockIdx.x * Tile::BN;
    const int depth = g.cg() * g.r * g.s, pixels = g.p * g.q;
    const StridedLoader<T, Tile::BM, Tile::BK, Tile::THREADS> filter_rows(
        weight + (long long)group * g.kg() * depth, depth, 1, m0, g.kg(), depth);
    const InputWindows<T, Tile::BN, Tile::BK, Tile::THREADS> windows(x, g, group, n0);
    Sums<T, Tile> sums(tiles);
    mainloop(filter_rows, windows, 0, depth, tiles, sums);
    const Epilogue<T> epilogue{nullptr, bias ? bias + group * g.kg() : bias, low, high};
    write_tile<T, Tile>(sums, y + (long long)group * g.kg() * pixels, epilogue, m0, n0, g.kg(), g.n * pixels, pixels,
                        (long long)g.k * pixels);
}

// dx = the input gradient, from dy and the weight transposed per group: weight_t (G, Cg, Kg·R·S).
template <typename T, class Tile>
__global__ void __launch_bounds__(Tile::THREADS, 1)
conv_input_grad(const T* __restrict__ gy, const T* __restrict__ weight_t, NINX_CONV_PARAMETERS, T* __restrict__ gx) {
    const Conv g = NINX_CONV;
    __shared__ SharedTiles<T, Tile> tiles;
    const int group = blockIdx.z, m0 = blockIdx.y * Tile::BM, n0 = blockIdx.x * Tile::BN;
    const int depth = g.kg() * g.r * g.s, pixels = g.h * g.w;
    const StridedLoader<T, Tile::BM, Tile::BK, Tile::THREADS> channel_rows(
        weight_t + (long long)group * g.cg() * depth, depth, 1, m0, g.cg(), depth);
    const OutputTaps<T, Tile::BN, Tile::BK, Tile::THREADS> taps(gy, g, group, n0);
    Sums<T, Tile> sums(tiles);
    mainloop(channel_rows, taps, 0, depth, tiles, sums);
    write_tile<T, Tile>(sums, gx + (long long)group * g.cg() * pixels, Unchanged(), m0, n0, g.cg(), g.n * pixels,
                        pixels, (long long)g.c * pixels);
}

// partial[slice·G + g] = the weight gradient of group g summed over the slice's share of (n, p, q): `chunk`
// of them (a multiple of the tile's BK), slice s taking [s·chunk, (s + 1)·chunk); blockIdx.z = g·slices + s.
template <typename T, class Tile>
__global__ void __launch_bounds__(Tile::THREADS, 1)
conv_weight_grad(const T* __restrict__ x, const T* __restrict__ gy, int slices, int chunk, NINX_CONV_PARAMETERS,
                 T* __restrict__ partial) {
    const Conv g = NINX_CONV;
    __shared__ SharedTiles<T, Tile> tiles;
    const int group = blockIdx.z / slices, slice = blockIdx.z % slices;
    const int m0 = blockIdx.y * Tile::BM, n0 = blockIdx.x * Tile::BN;
    const int columns = g.cg() * g.r * g.s, depth = g.n * g.p * g.q;
    const OutputRows<T, Tile::BM, Tile::BK, Tile::THREADS> rows(gy, g, group, m0);
    const InputTaps<T, Tile::BN, Tile::BK, Tile::THREADS> taps(x, g, group, n0);
    Sums<T, Tile> sums(tiles);
    const long long end = (long long)(slice + 1) * chunk;  // past 2^31 for the last slice of a deep reduction
    mainloop(rows, taps, slice * chunk, end < depth ? (int)end : depth, tiles, sums);
    write_tile<T, Tile>(sums, partial + (long long)(slice * g.groups + group) * g.kg() * columns, Unchanged(), m0, n0,
                        g.kg(), columns, columns, 0);
}
