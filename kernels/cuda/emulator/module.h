// What a kernel module built for the emulator exports to the Python launcher: for each kernel, its name (the
// name expression, as cupy.RawModule knows it), its C parameter types, and a way to launch it. The build
// (build.py) compiles a file that includes the .cu source, then this header, then the list of entries.
#pragma once
#include <string>
#include <type_traits>
#include <utility>

#include "runtime.h"

extern "C" char ninx_shared_begin[], ninx_shared_end[];  // the module's __shared__ variables (shared.ld)

namespace ninx_emu {

template <typename T> struct CName;  // the parameter types kernels may take, named as the launcher reads them
template <> struct CName<float> { static constexpr const char* value = "float"; };
template <> struct CName<double> { static constexpr const char* value = "double"; };
template <> struct CName<int> { static constexpr const char* value = "int"; };
template <> struct CName<long long> { static constexpr const char* value = "long long"; };

template <typename T> std::string describe() {
    if constexpr (std::is_pointer_v<T>) {
        using Element = std::remove_pointer_t<T>;
        return (std::is_const_v<Element> ? "const " : "") + std::string(CName<std::remove_const_t<Element>>::value) + "*";
    } else {
        return CName<T>::value;
    }
}

// "const float*,int,float*" for a kernel taking (const float*, int, float*)
template <typename... P> std::string signature(void (*)(P...)) {
    std::string text;
    ((text += (text.empty() ? "" : ",") + describe<P>()), ...);
    return text;
}

// args[i] points at the value of parameter i, as cuLaunchKernel's kernelParams do
template <auto Kernel, typename... P, size_t... I> void call(void** args, std::index_sequence<I...>) {
    Kernel(*static_cast<P*>(args[I])...);
}

template <auto Kernel, typename... P> void call(void (*)(P...), void** args) {
    call<Kernel, P...>(args, std::index_sequence_for<P...>{});
}

template <auto Kernel> void run_thread(const ninx_emu_coords* at, void** args) {
    threadIdx = {at->thread[0], at->thread[1], at->thread[2]};
    blockIdx = {at->block[0], at->block[1], at->block[2]};
    blockDim = {at->block_dim[0], at->block_dim[1], at->block_dim[2]};
    gridDim = {at->grid_dim[0], at->grid_dim[1], at->grid_dim[2]};
    call<Kernel>(Kernel, args);
}

struct Entry {
    const char* name;
    std::string signature;
    ninx_emu_thread_body body;
};

extern const Entry entries[];
extern const int entry_count;

}  // namespace ninx_emu

#define NINX_EMU_KERNEL(name, ...) \
    ninx_emu::Entry { name, ninx_emu::signature(&__VA_ARGS__), &ninx_emu::run_thread<&__VA_ARGS__> }

extern "C" int ninx_emu_kernel_count() { return ninx_emu::entry_count; }

extern "C" const char* ninx_emu_kernel_name(int i) { return ninx_emu::entries[i].name; }

extern "C" const char* ninx_emu_kernel_signature(int i) { return ninx_emu::entries[i].signature.c_str(); }

extern "C" int ninx_emu_launch(int i, const unsigned grid[3], const unsigned block[3], void** args, char* error,
                               size_t error_size) {
    return ninx_emu_run(grid, block, ninx_emu::entries[i].body, args, ninx_shared_begin, ninx_shared_end, error,
                        error_size);
}
