// im2col and its adjoint col2im, for an input x (N, C, H, W) and a kh×kw kernel with output oh×ow, L = oh·ow:
//
//     cols[n, (c·kh + i)·kw + j, oy·ow + ox] = x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]   (0 outside)
//
// so that the convolution of image n is W (oC, C·kh·kw) @ cols[n], one batched GEMM. col2im is a gather: one
// thread per input pixel adds up the column entries that came from it, in a fixed order — deterministic,
// with no atomics.
#include "ninx_cuda.cuh"
#include "window.cuh"

// One thread per column entry; consecutive threads write consecutive entries.
template <typename T>
__global__ void im2col(const T* __restrict__ x, int h, int w, int kh, int kw, int sh, int sw,
                       int ph, int pw, int dh, int dw, int oh, int ow, long long count, T* __restrict__ cols) {
    for (long long e = first_index(); e < count; e += grid_stride()) {
        // e = (((plane·kh + i)·kw + j)·oh + oy)·ow + ox, with plane = n·C + c
        const int ox = e % ow, oy = e / ow % oh, j = e / ((long long)ow * oh) % kw;
        const int i = e / ((long long)ow * oh * kw) % kh;
        const long long plane = e / ((long long)ow * oh * kw * kh);
        const int iy = oy * sh - ph + i * dh, ix = ox * sw - pw + j * dw;
        const bool inside = 0 <= iy && iy < h && 0 <= ix && ix < w;
        cols[e] = inside ? x[(plane * h + iy) * w + ix] : T(0);
    }
}

// One thread per input pixel (n, c, iy, ix): the sum over the taps (i, j) that read it, in the order the CPU
// adds them (i, then j, ascending — so windows in descending order).
template <typename T>
__global__ void col2im(const T* __restrict__ cols, int h, int w, int kh, int kw, int sh, int sw,
                       int ph, int pw, int dh, int dw, int oh, int ow, long long count, T* __restrict__ x) {
    const long long length = (long long)oh * ow;
    for (long long e = first_index(); e < count; e += grid_stride()) {
        // e = (plane·h + iy)·w + ix
        const int ix = e % w, iy = e / w % h;
        const long long plane = e / ((long long)w * h);
        const Windows rows = windows_over(iy, ph, sh, dh, kh, oh), columns = windows_over(ix, pw, sw, dw, kw, ow);
        T total = T(0);
        for (int oy = rows.last; oy >= rows.first; --oy) {
            const int tap_y = iy + ph - oy * sh;
            if (tap_y % dh != 0) continue;
            for (int ox = columns.last; ox >= columns.first; --ox) {
                const int tap_x = ix + pw - ox * sw;
                if (tap_x % dw != 0) continue;
                // the row of cols for (plane, i, j) is (plane·kh + i)·kw + j
                total += cols[((plane * kh + tap_y / dh) * kw + tap_x / dw) * length + oy * ow + ox];
            }
        }
        x[e] = total;
    }
}
