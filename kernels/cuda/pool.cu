// Max and average pooling over NCHW planes, forward and backward. Window (oy, ox) covers input rows
// oy·sh − ph + i·dh (i < kh) and the matching columns. Forward: one thread per output; backward: one thread
// per input pixel gathering from the windows over it, in the CPU's order (deterministic, no atomics). Each
// kernel's divisors (plane sizes, strides) are Divmods built at its start, so its index math divides by none.
#include "ninx_cuda.cuh"
#include "window.cuh"

// Padding never wins: taps outside the input are skipped. Strict '>' keeps the first maximum in row-major
// window order, and a NaN always takes over (v != v), exactly as the CPU kernel does.
template <typename T, typename Index>
__global__ void max_pool2d(const T* __restrict__ x, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                           int dh, int dw, int oh, int ow, Index count, T* __restrict__ y,
                           long long* __restrict__ argmax) {
    const Divmod<Index> by_ow(ow), by_oh(oh);
    for (Index e = first_index<Index>(); e < count; e += grid_stride<Index>()) {
        // e = (plane·oh + oy)·ow + ox
        int ox, oy;
        const T* in = x + by_oh.divmod(by_ow.divmod(e, ox), oy) * h * w;
        T best = T(0);
        long long where = -1;
        for (int i = 0; i < kh; ++i) {
            const int iy = oy * sh - ph + i * dh;
            if (iy < 0 || iy >= h) continue;
            for (int j = 0; j < kw; ++j) {
                const int ix = ox * sw - pw + j * dw;
                if (ix < 0 || ix >= w) continue;
                const T v = in[iy * w + ix];
                if (where < 0 || v > best || v != v) best = v, where = iy * w + ix;
            }
        }
        y[e] = best;
        argmax[e] = where;
    }
}

// Each input pixel p collects the gradients of the windows whose argmax is p, windows in row-major order.
template <typename T, typename Index>
__global__ void max_pool2d_backward(const T* __restrict__ gy, const long long* __restrict__ argmax, int h, int w,
                                    int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow,
                                    Index count, T* __restrict__ gx) {
    const Divmod<Index> by_w(w), by_h(h);
    const Divmod<int> by_sh(sh), by_sw(sw);
    for (Index e = first_index<Index>(); e < count; e += grid_stride<Index>()) {
        // e = (plane·h + iy)·w + ix
        int ix, iy;
        const Index out = by_h.divmod(by_w.divmod(e, ix), iy) * oh * ow;  // the plane's first output
        const Windows rows = windows_over(iy, ph, by_sh, dh, kh, oh);
        const Windows columns = windows_over(ix, pw, by_sw, dw, kw, ow);
        T total = T(0);
        for (int oy = rows.first; oy <= rows.last; ++oy)
            for (int ox = columns.first; ox <= columns.last; ++ox)
                if (argmax[out + oy * ow + ox] == iy * w + ix) total += gy[out + oy * ow + ox];
        gx[e] = total;
    }
}

// Window (oy, ox) clipped to the input, [y0, y1) × [x0, x1), and the divisor PyTorch uses for it: the
// override if positive, else the window's size within the padded input (count_include_pad), else its size
// within the input.
struct AverageWindow {
    int y0, x0, y1, x1, divisor;
};

__device__ __forceinline__ AverageWindow average_window(int oy, int ox, int h, int w, int kh, int kw, int sh, int sw,
                                                        int ph, int pw, int count_include_pad, int divisor_override) {
    int y0 = oy * sh - ph, x0 = ox * sw - pw;
    int y1 = min(y0 + kh, h + ph), x1 = min(x0 + kw, w + pw);
    const int padded_size = (y1 - y0) * (x1 - x0);
    y0 = max(y0, 0), x0 = max(x0, 0), y1 = min(y1, h), x1 = min(x1, w);
    const int divisor = divisor_override > 0 ? divisor_override
                        : count_include_pad ? padded_size : (y1 - y0) * (x1 - x0);
    return AverageWindow{y0, x0, y1, x1, divisor};
}

template <typename T, typename Index>
__global__ void avg_pool2d(const T* __restrict__ x, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                           int count_include_pad, int divisor_override, int oh, int ow, Index count,
                           T* __restrict__ y) {
    const Divmod<Index> by_ow(ow), by_oh(oh);
    for (Index e = first_index<Index>(); e < count; e += grid_stride<Index>()) {
        // e = (plane·oh + oy)·ow + ox
        int ox, oy;
        const T* in = x + by_oh.divmod(by_ow.divmod(e, ox), oy) * h * w;
        const AverageWindow a = average_window(oy, ox, h, w, kh, kw, sh, sw, ph, pw, count_include_pad,
                                               divisor_override);
        T total = T(0);
        for (int iy = a.y0; iy < a.y1; ++iy)
            for (int ix = a.x0; ix < a.x1; ++ix) total += in[iy * w + ix];
        y[e] = a.y1 > a.y0 && a.x1 > a.x0 ? total / T(a.divisor) : T(0);
    }
}

// Each input pixel collects gy / divisor from every window over it, windows in row-major order.
template <typename T, typename Index>
__global__ void avg_pool2d_backward(const T* __restrict__ gy, int h, int w, int kh, int kw, int sh, int sw, int ph,
                                    int pw, int count_include_pad, int divisor_override, int oh, int ow,
                                    Index count, T* __restrict__ gx) {
    const Divmod<Index> by_w(w), by_h(h);
    const Divmod<int> by_sh(sh), by_sw(sw);
    for (Index e = first_index<Index>(); e < count; e += grid_stride<Index>()) {
        // e = (plane·h + iy)·w + ix
        int ix, iy;
        const T* g = gy + by_h.divmod(by_w.divmod(e, ix), iy) * oh * ow;
        const Windows rows = windows_over(iy, ph, by_sh, 1, kh, oh);
        const Windows columns = windows_over(ix, pw, by_sw, 1, kw, ow);
        T total = T(0);
        for (int oy = rows.first; oy <= rows.last; ++oy)
            for (int ox = columns.first; ox <= columns.last; ++ox)
                total += g[oy * ow + ox] / T(average_window(oy, ox, h, w, kh, kw, sh, sw, ph, pw, count_include_pad,
                                                            divisor_override).divisor);
        gx[e] = total;
    }
}
