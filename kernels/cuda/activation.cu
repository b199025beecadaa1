// ReLU and ReLU6 as one clamp, y = min(max(x, 0), cap), with cap = inf for ReLU and 6 for ReLU6.
#include "ninx_cuda.cuh"

// out[i] = op(a[i], b[i]) for i < count: elements [0, vectors·V) as `vectors` 16-byte vectors of V values
// (the host passes vectors = 0 unless a, b and out are all 16-byte aligned), the rest one at a time.
template <typename T, typename Index, typename Op>
__device__ __forceinline__ void map(const T* __restrict__ a, const T* __restrict__ b, Index vectors, Index count,
                                    T* __restrict__ out, Op op) {
    typedef typename Vector16<T>::type Vector;
    constexpr int V = 16 / sizeof(T);
    for (Index v = first_index<Index>(); v < vectors; v += grid_stride<Index>()) {
        const Vector va = reinterpret_cast<const Vector*>(a)[v], vb = reinterpret_cast<const Vector*>(b)[v];
        Vector vo;
        const T *ea = reinterpret_cast<const T*>(&va), *eb = reinterpret_cast<const T*>(&vb);
        T* eo = reinterpret_cast<T*>(&vo);
#pragma unroll
        for (int j = 0; j < V; ++j) eo[j] = op(ea[j], eb[j]);
        reinterpret_cast<Vector*>(out)[v] = vo;
    }
    for (Index i = vectors * V + first_index<Index>(); i < count; i += grid_stride<Index>()) out[i] = op(a[i], b[i]);
}

// NaN passes through (both comparisons are false), as on the CPU. x is its own second operand, unread.
template <typename T, typename Index>
__global__ void relu(const T* __restrict__ x, T cap, Index vectors, Index count, T* __restrict__ y) {
    map(x, x, vectors, count, y, [cap](T v, T) { return v <= T(0) ? T(0) : (v > cap ? cap : v); });
}

// PyTorch's rule: the gradient stops where x <= 0 and, for a finite cap (ReLU6), where x >= cap; it passes
// everywhere else, NaN included, and +inf for ReLU (cap = inf). None passes at the kinks themselves.
template <typename T, typename Index>
__global__ void relu_backward(const T* __restrict__ x, const T* __restrict__ gy, T cap, Index vectors, Index count,
                              T* __restrict__ gx) {
    const bool capped = cap - cap == T(0);  // cap is finite (inf − inf is NaN); NVRTC has no <cmath>
    map(x, gy, vectors, count, gx, [cap, capped](T v, T g) { return v <= T(0) || (capped && v >= cap) ? T(0) : g; });
}
