// Sliding windows along one axis: input size `size`, padding, stride, dilation, kernel extent, output size.
// Window o covers input positions o·stride − pad + i·dil for taps i < kernel.
#pragma once
#include "ninx_cuda.cuh"

// The windows [first, last] that may have a tap on input position p: those with
// o·stride − pad ≤ p ≤ o·stride − pad + (kernel − 1)·dil, clipped to [0, out). Empty when first > last.
// The tap of window o on p, if any, is i = (p + pad − o·stride) / dil when that divides exactly.
// `stride` is an int or a Divmod<int> built once per launch; either way both dividends are ≥ 0.
struct Windows {
    int first, last;
};

template <typename Stride>
__device__ __forceinline__ Windows windows_over(int p, int pad, const Stride& stride, int dil, int kernel, int out) {
    const int reach = p + pad - (kernel - 1) * dil;  // the lowest start o·stride that still reaches p
    const int first = reach <= 0 ? 0 : quotient(reach - 1, stride) + 1;  // ⌈reach / stride⌉
    const int last = min(quotient(p + pad, stride), out - 1);
    return Windows{first, last};
}
