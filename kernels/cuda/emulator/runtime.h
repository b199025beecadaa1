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
// -1 with a message in `error` for an invalid launch configuration, a deadlock or a misused warp collective.
extern "C" int ninx_emu_run(const unsigned grid[3], const unsigned block[3], ninx_emu_thread_body body,
                            void** args, char* shared_begin, char* shared_end, char* error, size_t error_size);

// One lane's side of a call that all 32 lanes of a warp make together, with the same arguments (a wmma load,
// store or mma). The lane fills in the first six fields and waits in ninx_emu_warp_collective; the runtime opens
// the warp barrier only if every lane of the warp waits there with the same call, pointer, ldm and layout, and
// then fills in the last two. Each lane's `operands` stay readable by the others until its next warp barrier.
struct ninx_emu_collective {
    const char* call;            // "wmma::load_matrix_sync", say
    const char* fragment;        // the kind of fragment it takes ("matrix_a", ...), or null
    const void* pointer;         // the memory it reads or writes, or null
    unsigned ldm;
    int layout;                  // 0 row-major, 1 column-major, -1 none
    const void* operands;        // what this lane shares with the others, or null
    unsigned lane;               // this lane's number in the warp
    const ninx_emu_collective* warp[32];  // every lane's side, by lane
};

// Waits at the warp barrier as part of `call`. Lanes that disagree, or a lane of the warp that returned
// without making the call, give up the launch with a message saying which.
extern "C" void ninx_emu_warp_collective(ninx_emu_collective* call);

// Gives up the launch with `message`, for a kernel that misuses what the emulator checks; does not return.
extern "C" [[noreturn]] void ninx_emu_fail(const char* message);
