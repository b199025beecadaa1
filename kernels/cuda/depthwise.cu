// Depthwise convolution (groups = input channels), forward and both gradients, computed directly.
// x (N, C, H, W), w (C·M, 1, kh, kw) for a channel multiplier M, y (N, C·M, oh, ow); output channel o sees
// input channel o / M only:
//     y[n, o, oy, ox] = Σ_{i, j} w[o, i, j] · x[n, o / M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]
// Forward: one thread per output. Input gradient: one thread per input pixel, gathering from the windows over
// it (window.cuh), in a fixed order (deterministic, no atomics). Weight gradient: one block per tap w[o, i, j],
// its threads striding over the N·oh·ow products, then a fixed-order reduction in shared memory.
#include "ninx_cuda.cuh"
#include "window.cuh"

template <typename T>
__global__ void depthwise_conv2d(const T* __restrict__ x, const T* __restrict__ w, int channels, int multiplier,
                                 int h, int wd, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                 int oh, int ow, long long count, T* __restrict__ y) {
    for (long long e = first_index(); e < count; e += grid_stride()) {
        // e = ((n·C·M + o)·oh + oy)·ow + ox
        const int ox = e % ow, oy = e / ow % oh;
        const long long plane = e / ((long long)ow * oh);  // n·C·M + o
        const int o = plane % (channels * multiplier);
        const T* in = x + (plane / (channels * multiplier) * channels + o / multiplier) * h * wd;
        const T* filter = w + (long long)o * kh * kw;
        T total = T(0);
        for (int i = 0; i < kh; ++i) {
            const int iy = oy * sh - ph + i * dh;
            if (iy < 0 || iy >= h) continue;
            for (int j = 0; j < kw; ++j) {
                const int ix = ox * sw - pw + j * dw;
                if (ix >= 0 && ix < wd) total += filter[i * kw + j] * in[iy * wd + ix];
            }
        }
        y[e] = total;
    }
}

// gx[n, c, iy, ix] = Σ_{m, i, j} w[c·M + m, i, j] · gy[n, c·M + m, oy, ox] over the windows (oy, ox) whose tap
// (i, j) lands on (iy, ix): i = (iy + ph − oy·sh) / dh when that divides exactly, and the same for j.
template <typename T>
__global__ void depthwise_conv2d_backward_input(const T* __restrict__ gy, const T* __restrict__ w, int channels,
                                                int multiplier, int h, int wd, int kh, int kw, int sh, int sw,
                                                int ph, int pw, int dh, int dw, int oh, int ow, long long count,
                                                T* __restrict__ gx) {
    for (long long e = first_index(); e < count; e += grid_stride()) {
        // e = ((n·C + c)·h + iy)·wd + ix
        const int ix = e % wd, iy = e / wd % h;
        const long long plane = e / ((long long)wd * h);  // n·C + c
        const int c = plane % channels;
        const long long first_output = (plane / channels * channels + c) * multiplier;  // n·C·M + c·M
        const Windows rows = windows_over(iy, ph, sh, dh, kh, oh), columns = windows_over(ix, pw, sw, dw, kw, ow);
        T total = T(0);
        for (int m = 0; m < multiplier; ++m) {
            const T* g = gy + (first_output + m) * oh * ow;
            const T* filter = w + (long long)(c * multiplier + m) * kh * kw;
            for (int oy = rows.first; oy <= rows.last; ++oy) {
                const int dy = iy + ph - oy * sh;
                if (dy % dh) continue;
                for (int ox = columns.first; ox <= columns.last; ++ox) {
                    const int dx = ix + pw - ox * sw;
                    if (dx % dw == 0) total += filter[dy / dh * kw + dx / dw] * g[oy * ow + ox];
                }
            }
        }
        gx[e] = total;
    }
}

// gw[o, i, j] = Σ_{n, oy, ox} gy[n, o, oy, ox] · x[n, o / M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]; block
// o·kh·kw + i·kw + j. Launched with DEPTHWISE_THREADS threads per block.
constexpr int DEPTHWISE_THREADS = 128;

template <typename T>
__global__ void depthwise_conv2d_backward_weight(const T* __restrict__ x, const T* __restrict__ gy, int images,
                                                 int channels, int multiplier, int h, int wd, int kh, int kw,
                                                 int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow,
                                                 T* __restrict__ gw) {
    __shared__ T partial[DEPTHWISE_THREADS];
    const int tap = blockIdx.x, j = tap % kw, i = tap / kw % kh, o = tap / (kw * kh);
    const int out_channels = channels * multiplier;
    const long long count = (long long)images * oh * ow;
    T total = T(0);
    for (long long e = threadIdx.x; e < count; e += blockDim.x) {
        // e = (n·oh + oy)·ow + ox
        const int ox = e % ow, oy = e / ow % oh, n = e / ((long long)ow * oh);
        const int iy = oy * sh - ph + i * dh, ix = ox * sw - pw + j * dw;
        if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
            total += gy[(((long long)n * out_channels + o) * oh + oy) * ow + ox] *
                     x[(((long long)n * channels + o / multiplier) * h + iy) * wd + ix];
    }
    partial[threadIdx.x] = total;
    __syncthreads();
    for (int half = DEPTHWISE_THREADS / 2; half > 0; half /= 2) {  // pairwise, in a fixed order
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) gw[tap] = partial[0];
}
