// Included first by every .cu file, so that one source compiles for the GPU (NVRTC) and for the CUDA
// emulation layer (the host C++ compiler, against emulator/cuda_emulator.h), and holds what kernels share.
#pragma once
#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
#include "emulator/cuda_emulator.h"
#endif

// Grid-stride loops: thread t of the whole grid takes elements t, t + T, t + 2T, … where T is the number of
// threads in the grid, so a grid of any size covers any count.
__device__ __forceinline__ long long first_index() { return blockIdx.x * (long long)blockDim.x + threadIdx.x; }
__device__ __forceinline__ long long grid_stride() { return (long long)gridDim.x * blockDim.x; }

// 16 bytes of T, the widest load one thread issues: float4 or double2.
template <typename T> struct Vector16;
template <> struct Vector16<float> { typedef float4 type; };
template <> struct Vector16<double> { typedef double2 type; };
