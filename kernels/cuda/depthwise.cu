// Depthwise convolution (groups = input channels), forward and both gradients, computed directly.
// x (N, C, H, W), w (C·M, 1, kh, kw) for a channel multiplier M, y (N, C·M, oh, ow); output channel o sees
// input channel o / M only:
//     y[n, o, oy, ox] = Σ_{i, j} w[o, i, j] · x[n, o / M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]
// Forward: one thread per output. Input gradient: one thread per input pixel, gathering from the windows over
// it (window.cuh), in a fixed order (deterministic, no atomics). Weight gradient: one block per tap w[o, i, j],
// its threads striding over the N·oh·ow products, then a fixed-order reduction in shared memory. Each kernel's
// divisors (sizes, strides, dilations, M) are Divmods built at its start, so its index math divides by none.
#include "ninx_cuda.cuh"
#include "window.cuh"

template <typename T, typename Index>
__global__ void depthwise_conv2d(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                                 int channels, int multiplier, int h, int wd, int kh, int kw, int sh, int sw,
                                 int ph, int pw, int dh, int dw, int oh, int ow, Index count, T* __restrict__ y) {
    const Divmod<Index> by_ow(ow), by_oh(oh), by_out_channels(channels * multiplier);
    const Divmod<int> by_multiplier(multiplier);
    for (Index e = first_index<Index>(); e < count; e += grid_stride<Index>()) {
        // e = ((n·C·M + o)·oh + oy)·ow + ox
        int ox, oy, o;
        const Index n = by_out_channels.divmod(by_oh.divmod(by_ow.divmod(e, ox), oy), o);
        const T* in = x + (n * channels + by_multiplier.quotient(o)) * h * wd;
        const T* filter = w + Index(o) * kh * kw;
        T total = bias[o];
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
template <typename T, typename Index>
__global__ void depthwise_conv2d_backward_input(const T* __restrict__ gy, const T* __restrict__ w, int channels,
                                                int multiplier, int h, int wd, int kh, int kw, int sh, int sw,
                                                int ph, int pw, int dh, int dw, int oh, int ow, Index count,
                                                T* __restrict__ gx) {
    const Divmod<Index> by_wd(wd), by_h(h), by_channels(channels);
    const Divmod<int> by_sh(sh), by_sw(sw), by_dh(dh), by_dw(dw);
    for (Index e = first_index<Index>(); e < count; e += grid_stride<Index>()) {
        // e = ((n·C + c)·h + iy)·wd + ix; plane = n·C + c, whose first output channel is plane·M = n·C·M + c·M
        int ix, iy, c;
        const Index plane = by_h.divmod(by_wd.divmod(e, ix), iy);
        by_channels.divmod(plane, c);
        const Windows rows = windows_over(iy, ph, by_sh, dh, kh, oh);
        const Windows columns = windows_over(ix, pw, by_sw, dw, kw, ow);
        T total = T(0);
        for (int m = 0; m < multiplier; ++m) {
            const T* g = gy + (plane * multiplier + m) * oh * ow;
            const T* filter = w + Index(c * multiplier + m) * kh * kw;
            for (int oy = rows.first; oy <= rows.last; ++oy) {
                int off_y;  // (iy + ph − oy·sh) % dh: window oy reads iy with tap i when this is 0
                const int i = by_dh.divmod(iy + ph - oy * sh, off_y);
                if (off_y) continue;
                for (int ox = columns.first; ox <= columns.last; ++ox) {
                    int off_x;
                    const int j = by_dw.divmod(ix + pw - ox * sw, off_x);
                    if (off_x == 0) total += filter[i * kw + j] * g[oy * ow + ox];
                }
            }
        }
        gx[e] = total;
    }
}

// gw[o, i, j] = Σ_{n, oy, ox} gy[n, o, oy, ox] · x[n, o / M, oy·sh − ph + i·dh, ox·sw − pw + j·dw]; block
// o·kh·kw + i·kw + j. Launched with DEPTHWISE_THREADS threads per block.
constexpr int DEPTHWISE_THREADS = 128;

template <typename T, typename Index>
__global__ void depthwise_conv2d_backward_weight(const T* __restrict__ x, const T* __restrict__ gy, int images,
                                                 int channels, int multiplier, int h, int wd, int kh, int kw,
                                                 int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow,
                                                 T* __restrict__ gw) {
    __shared__ T partial[DEPTHWISE_THREADS];
    const int tap = blockIdx.x, j = tap % kw, i = tap / kw % kh, o = tap / (kw * kh), c = o / multiplier;
    const int out_channels = channels * multiplier;
    const Index count = Index(images) * oh * ow;
    const Divmod<Index> by_ow(ow), by_oh(oh);
    T total = T(0);
    for (Index e = threadIdx.x; e < count; e += blockDim.x) {
        // e = (n·oh + oy)·ow + ox
        int ox, oy;
        const Index n = by_oh.divmod(by_ow.divmod(e, ox), oy);
        const int iy = oy * sh - ph + i * dh, ix = ox * sw - pw + j * dw;
        if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
            total += gy[((n * out_channels + o) * oh + oy) * ow + ox] * x[((n * channels + c) * h + iy) * wd + ix];
    }
    partial[threadIdx.x] = total;
    __syncthreads();
    for (int half = DEPTHWISE_THREADS / 2; half > 0; half /= 2) {  // pairwise, in a fixed order
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) gw[tap] = partial[0];
}
