// Kernels for tests/test_wmma_emulator.py: one warp's TF32 tensor-core product through nvcuda::wmma, and uses of
// wmma that are wrong on a GPU, which the emulator must expose.
#include "ninx_cuda.cuh"
#include "wmma.cuh"

using namespace nvcuda;

// y[i] = x[i] rounded to TF32
__global__ void to_tf32(const float* x, int n, float* y) {
    for (long long i = first_index(); i < n; i += grid_stride()) y[i] = wmma::__float_to_tf32(x[i]);
}

// D = A·B + C by each warp, for A 16×8 and B 8×16 in the layouts of the fragment types with leading dimensions
// lda and ldb; C (zero when c is null) and D are 16×16, leading dimension ldc, column-major if col_major. With
// `convert`, A and B are rounded to TF32 first; without, mma_sync reads their top 19 bits.
template <typename LayoutA, typename LayoutB>
__global__ void tile_product(const float* a, int lda, const float* b, int ldb, const float* c, int ldc, int col_major,
                             int convert, float* d) {
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, LayoutA> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, LayoutB> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
    const wmma::layout_t layout = col_major ? wmma::mem_col_major : wmma::mem_row_major;
    wmma::load_matrix_sync(fa, a, lda);
    wmma::load_matrix_sync(fb, b, ldb);
    if (convert) {
        for (int i = 0; i < fa.num_elements; ++i) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
        for (int i = 0; i < fb.num_elements; ++i) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
    }
    if (c)
        wmma::load_matrix_sync(acc, c, ldc, layout);
    else
        wmma::fill_fragment(acc, 0.0f);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(d, acc, ldc, layout);
}

// D = A·B + (2A)·B for A the left half of a's top 16 rows, B a's top 8 rows (a is 16×16, row-major): A's
// fragment doubles in place, element-wise as CUDA allows, as soon as the first mma_sync returns.
__global__ void product_then_doubled(const float* a, float* d) {
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, a, 16);
    wmma::fill_fragment(acc, 0.0f);
    wmma::mma_sync(acc, fa, fb, acc);
    for (int i = 0; i < fa.num_elements; ++i) fa.x[i] *= 2.0f;
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

// ---- planted bugs, each wrong on a GPU (undefined, or a wrong answer); a is 32×16, row-major ------------------

// Lanes 16 to 31 skip the mma_sync, then the whole warp stores: a collective that half the warp makes.
__global__ void mma_by_half_a_warp(const float* a, float* d) {
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, a, 16);
    wmma::fill_fragment(acc, 0.0f);
    if (threadIdx.x % 32 < 16) wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

// Lanes 16 to 31 return before the load the others make.
__global__ void load_by_half_a_warp(const float* a, float* d) {
    if (threadIdx.x % 32 >= 16) return;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
    wmma::load_matrix_sync(acc, a, 16, wmma::mem_row_major);
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

// Odd lanes load the 16×16 tile below the even lanes' one: lanes of one warp pass different pointers.
__global__ void lanes_load_different_tiles(const float* a, float* d) {
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
    wmma::load_matrix_sync(acc, a + 256 * (threadIdx.x % 2), 16, wmma::mem_row_major);
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

// D = A·B for A the left half of a's top 16 rows and B the 8×16 identity (B[k][n] = 1 where k = n), built as if
// lane l's x[i] were B's element 4l + i in row-major order. CUDA leaves that layout unspecified, so D need not be
// A with 8 zero columns beside it.
__global__ void identity_by_index(const float* a, float* d) {
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
    wmma::load_matrix_sync(fa, a, 16);
    for (int i = 0; i < fb.num_elements; ++i) {
        const int e = threadIdx.x % 32 * fb.num_elements + i;
        fb.x[i] = e / 16 == e % 16 ? 1.0f : 0.0f;
    }
    wmma::fill_fragment(acc, 0.0f);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}
