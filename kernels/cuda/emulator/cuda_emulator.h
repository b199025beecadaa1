// The CUDA execution model for kernels compiled by the host C++ compiler (g++), used through ninx_cuda.cuh.
//
// Each CUDA thread of a block is a real OS thread (runtime.cpp schedules them); threadIdx, blockIdx, blockDim
// and gridDim are that thread's own copies. __shared__ variables are function statics, so the block's threads
// share them; the build's linker script (shared.ld) gathers them into one region that the runtime poisons
// with NaN bytes at the start of every block. Only one thread runs at a time, so atomics need no locking.
#pragma once
#include <cstring>

struct uint3 { unsigned x, y, z; };
struct dim3 { unsigned x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
constexpr int warpSize = 32;

inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

// Implemented by the runtime; each stops the calling thread at a barrier until the scheduler reopens it.
extern "C" void ninx_emu_syncthreads();
extern "C" void ninx_emu_syncwarp();
extern "C" unsigned long long* ninx_emu_lanes();  // this warp's 32 exchange slots for the coming shuffle

inline void __syncthreads() { ninx_emu_syncthreads(); }
inline void __syncwarp(unsigned /*mask*/ = 0xffffffffu) { ninx_emu_syncwarp(); }  // the whole warp, as here

// CUDA's integer min and max
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a < b ? b : a; }

// The value of lane (this lane + delta), or this lane's own when that is past the end of its width-segment.
// Every lane writes its value to a slot and waits at the warp barrier; then each reads the slot it wants.
// The mask is taken to name every live lane of the warp, as in the kernels here.
template <typename T> T __shfl_down_sync(unsigned /*mask*/, T value, unsigned delta, int width = warpSize) {
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffle of more than 8 bytes");
    unsigned long long* lanes = ninx_emu_lanes();
    unsigned lane = (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % warpSize;
    std::memcpy(&lanes[lane], &value, sizeof(T));
    ninx_emu_syncwarp();
    if (lane % width + delta < (unsigned)width) std::memcpy(&value, &lanes[lane + delta], sizeof(T));
    return value;
}

// Only one thread runs at a time (see runtime.cpp), so a read-modify-write is atomic as it stands.
template <typename T> T atomicAdd(T* address, T value) {
    T old = *address;
    *address = old + value;
    return old;
}

#include "wmma.h"  // nvcuda::wmma, the TF32 tensor-core tiles
