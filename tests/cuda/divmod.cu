// Divmod (ninx_cuda.cuh) as a kernel, for tests/test_cuda_memory_bound.py to hold against Python's divmod.
#include "ninx_cuda.cuh"

// q[i], r[i] = divmod(n[i], d[i]), through a Divmod<Index> built for d[i]
template <typename Index>
__global__ void divide(const Index* n, const Index* d, Index count, Index* q, Index* r) {
    for (Index i = first_index<Index>(); i < count; i += grid_stride<Index>())
        q[i] = Divmod<Index>(d[i]).divmod(n[i], r[i]);
}
