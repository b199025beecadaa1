// The interface between a kernel module built for the emulator (module.h) and the runtime (runtime.cpp).
#pragma once
#include <cstddef>

// Where one CUDA thread stands; the module copies these into its threadIdx, blockIdx, blockDim and gridDim.
struct ninx_emu_coords {
    unsigned thread[3], block[3], block_dim[3], grid_dim[3];
};

// Runs one CUDA thread: sets its coordinates, then calls the kernel with the launch's arguments.
typedef void (*ninx_emu_thread_body)(const ninx_emu_coords* at, void** args);

// Runs the grid: blocks one after another, each block's threads under the run token (see runtime.cpp).
// [shared_begin, shared_end) is the module's __shared__ memory, poisoned before every block. Returns 0, or
// -1 with a message in `error` for an invalid launch configuration or a deadlock.
extern "C" int ninx_emu_run(const unsigned grid[3], const unsigned block[3], ninx_emu_thread_body body,
                            void** args, char* shared_begin, char* shared_end, char* error, size_t error_size);
