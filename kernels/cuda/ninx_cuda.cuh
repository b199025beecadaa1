// Included first by every .cu file, so that one source compiles for the GPU (NVRTC) and for the CUDA
// emulation layer (the host C++ compiler, against emulator/cuda_emulator.h), and holds what kernels share.
#pragma once
#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
#include "emulator/cuda_emulator.h"
#endif

// Kernels templated on an Index type come as an int instance and a long long one; the host (launch.py
// index_type) launches the int one when every element count and offset the kernel touches fits, as 32-bit
// integer arithmetic is several times cheaper than 64-bit, division most of all.

// Grid-stride loops: thread t of the whole grid takes elements t, t + T, t + 2T, … where T is the number of
// threads in the grid, so a grid of any size covers any count.
template <typename Index = long long>
__device__ __forceinline__ Index first_index() { return Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x); }
template <typename Index = long long>
__device__ __forceinline__ Index grid_stride() { return Index(gridDim.x) * Index(blockDim.x); }

// Division by a divisor d ≥ 1 fixed for the launch, built once at kernel start. For Index = int and n ≥ 0 it
// multiplies instead, as CUTLASS's FastDivmod: with l = ⌈log2 d⌉ and m = ⌈2^(31+l) / d⌉ (< 2^32), for d > 1
//     n / d = ⌊n·m / 2^(31+l)⌋ = (high word of n·m) >> (l − 1),
// exact for every n < 2^31: m·d = 2^(31+l) + r with 0 ≤ r < d, so n·m / 2^(31+l) = n/d + n·r / (d·2^(31+l)),
// an excess below 2^31 / 2^(31+l) = 2^−l ≤ 1/d, and n/d is at most ⌊n/d⌋ + (d − 1)/d: the floor stays.
// For Index = long long it divides.
template <typename Index>
struct Divmod {
    Index divisor;
    unsigned multiplier;
    int shift;

    __device__ explicit Divmod(Index d) : divisor(d), multiplier(0), shift(0) {
        if constexpr (sizeof(Index) == 4) {
            if (d > 1) {
                int l = 1;
                while ((1ll << l) < d) ++l;
                multiplier = unsigned(((1ull << (31 + l)) + d - 1) / d);
                shift = l - 1;
            }
        }
    }

    __device__ __forceinline__ Index quotient(Index n) const {
        if constexpr (sizeof(Index) == 4)
            return divisor == 1 ? n : Index(unsigned((unsigned long long)unsigned(n) * multiplier >> 32) >> shift);
        else
            return n / divisor;
    }

    // n / d, leaving n % d in `remainder` (an int where d fits one)
    template <typename Remainder>
    __device__ __forceinline__ Index divmod(Index n, Remainder& remainder) const {
        const Index q = quotient(n);
        remainder = Remainder(n - q * divisor);
        return q;
    }
};

// n / d for a plain divisor or a Divmod, so that helpers shared by both kinds of kernel take either
__device__ __forceinline__ int quotient(int n, int d) { return n / d; }
template <typename Index>
__device__ __forceinline__ Index quotient(Index n, const Divmod<Index>& d) { return d.quotient(n); }

// 16 bytes of T, the widest load one thread issues: float4 or double2.
template <typename T> struct Vector16;
template <> struct Vector16<float> { typedef float4 type; };
template <> struct Vector16<double> { typedef double2 type; };
