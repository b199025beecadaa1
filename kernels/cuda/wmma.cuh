// nvcuda::wmma, the warp-level tensor-core API (TF32 tiles need sm_80 or later), for a .cu file that includes
// ninx_cuda.cuh first: CUDA's <mma.h> under NVRTC or nvcc (sources.py puts its headers on NVRTC's include
// path). The host compiler has no <mma.h>: there ninx_cuda.cuh has brought the emulator's (emulator/wmma.h).
#pragma once
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#include <mma.h>
#endif
