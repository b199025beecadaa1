// nvcuda::wmma for the CUDA emulation layer: the TF32 tensor-core tiles of sm_80 and later (m16 n16 k8), with
// the semantics of warp-wide operations and the checks of this layer. Included by cuda_emulator.h.
//
// A fragment is one lane's share of a tile; CUDA leaves unspecified which elements a lane holds in x[]. Here
// lane l's x[i] is the tile's element number ((l·E + i)·K + O) mod N in row-major order (N elements, E per
// lane, K odd: a permutation), unlike any layout a kernel might guess — so a kernel that reads x[] as if it knew
// the layout computes wrong results. load_matrix_sync, store_matrix_sync and mma_sync are warp collectives: all
// 32 lanes of the warp call them together with the same arguments, or the launch fails (runtime.cpp checks at
// the warp barrier, then each lane does its own elements). fill_fragment and __float_to_tf32 are per lane.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "runtime.h"

namespace ninx_emu {

// A tile of Rows × Cols elements, Rows·Cols / 32 per lane, spread over the lanes by the permutation above.
template <int Rows, int Cols, int K, int O> struct Tile {
    static constexpr int cols = Cols, per_lane = Rows * Cols / 32;
    static constexpr int element(unsigned lane, int i) { return ((lane * per_lane + i) * K + O) % (Rows * Cols); }
};
struct TileA : Tile<16, 8, 77, 29> { static constexpr const char* name = "matrix_a"; };       // M × K
struct TileB : Tile<8, 16, 45, 102> { static constexpr const char* name = "matrix_b"; };      // K × N
struct TileC : Tile<16, 16, 93, 171> { static constexpr const char* name = "accumulator"; };  // M × N

// One lane's share of a tile: all of a fragment a kernel may touch. Layout: 0 row-major, 1 column-major (a and
// b hold it in their type), -1 for the accumulator (its loads and stores name one).
template <class T, int Layout> struct Fragment {
    enum { num_elements = T::per_lane };
    float x[num_elements];
};

// TF32 is a float's sign, exponent and top 10 mantissa bits: a float whose low 13 bits are zero. v becomes one
// by adding `half` to its bits, then clearing the low 13: 0x1000 rounds to nearest with ties away from zero (the
// magnitude rounds half up; a carry into the exponent is right), 0 truncates. NaN and infinity stay as they are.
inline float tf32(float v, uint32_t half) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    if ((bits & 0x7F800000u) == 0x7F800000u) return v;
    bits = (bits + half) & ~0x1FFFu;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}

// Where element (r, c) of a tile stored at p lies: rows are ldm apart in row-major memory, columns in
// column-major.
inline size_t at(int r, int c, unsigned ldm, int layout) {
    return layout == 0 ? size_t(r) * ldm + c : size_t(c) * ldm + r;
}

// CUDA's rule for the memory a load or store names: a 256-bit aligned pointer, ldm a multiple of 16 bytes.
inline void check_memory(const ninx_emu_collective& call) {
    char why[256];
    if (reinterpret_cast<uintptr_t>(call.pointer) % 32)
        std::snprintf(why, sizeof why, "%s: pointer %p is not 32-byte aligned", call.call, call.pointer);
    else if (call.ldm % 4)
        std::snprintf(why, sizeof why, "%s: ldm %u is not a multiple of 4 floats (16 bytes)", call.call, call.ldm);
    else
        return;
    ninx_emu_fail(why);
}

// Each lane loads or stores its own elements of the tile, and leaves as soon as it has: a lane that then reads
// what the others stored, with no __syncwarp() between (CUDA requires one), reads what was there before.
template <class T, int L> void load(Fragment<T, L>& f, const float* p, unsigned ldm, int layout) {
    ninx_emu_collective call{"wmma::load_matrix_sync", T::name, p, ldm, layout, nullptr};
    ninx_emu_warp_collective(&call);
    check_memory(call);
    for (int i = 0; i < T::per_lane; ++i) {
        const int e = T::element(call.lane, i);
        f.x[i] = p[at(e / T::cols, e % T::cols, ldm, layout)];
    }
}

inline void store(float* p, const Fragment<TileC, -1>& f, unsigned ldm, int layout) {
    ninx_emu_collective call{"wmma::store_matrix_sync", TileC::name, p, ldm, layout, nullptr};
    ninx_emu_warp_collective(&call);
    check_memory(call);
    for (int i = 0; i < TileC::per_lane; ++i) {
        const int e = TileC::element(call.lane, i);
        p[at(e / TileC::cols, e % TileC::cols, ldm, layout)] = f.x[i];
    }
}

struct MmaOperands { const float* a; const float* b; };

// D = A·B + C over the warp: D[m][n] = C[m][n] + Σₖ A[m][k]·B[k][n], k = 0…7 in order, summed in float. Only the
// top 19 bits of each A and B element are read (TF32, as the hardware does with an unconverted float), so each
// product is exact. Each lane gathers A and B from every lane's fragments, then computes its own elements of D.
template <int LA, int LB>
void mma(Fragment<TileC, -1>& d, const Fragment<TileA, LA>& a, const Fragment<TileB, LB>& b,
         const Fragment<TileC, -1>& c) {
    const MmaOperands mine{a.x, b.x};
    ninx_emu_collective call{"wmma::mma_sync", nullptr, nullptr, 0, -1, &mine};
    ninx_emu_warp_collective(&call);
    float A[16 * 8], B[8 * 16];
    for (unsigned lane = 0; lane < 32; ++lane) {
        const MmaOperands& theirs = *static_cast<const MmaOperands*>(call.warp[lane]->operands);
        for (int i = 0; i < TileA::per_lane; ++i) A[TileA::element(lane, i)] = tf32(theirs.a[i], 0);
        for (int i = 0; i < TileB::per_lane; ++i) B[TileB::element(lane, i)] = tf32(theirs.b[i], 0);
    }
    for (int i = 0; i < TileC::per_lane; ++i) {
        const int e = TileC::element(call.lane, i), m = e / 16, n = e % 16;
        float sum = c.x[i];  // read before d.x[i] is written: d may be c
        for (int k = 0; k < 8; ++k) sum += A[m * 8 + k] * B[k * 16 + n];
        d.x[i] = sum;
    }
    ninx_emu_syncwarp();  // no lane changes its a or b before every lane has read them
}

}  // namespace ninx_emu

namespace nvcuda::wmma {

struct row_major;
struct col_major;
struct matrix_a;
struct matrix_b;
struct accumulator;
namespace precision {
struct tf32;
}
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int m, int n, int k, typename T, typename Layout = void> class fragment;
template <>
class fragment<matrix_a, 16, 16, 8, precision::tf32, row_major> : public ninx_emu::Fragment<ninx_emu::TileA, 0> {};
template <>
class fragment<matrix_a, 16, 16, 8, precision::tf32, col_major> : public ninx_emu::Fragment<ninx_emu::TileA, 1> {};
template <>
class fragment<matrix_b, 16, 16, 8, precision::tf32, row_major> : public ninx_emu::Fragment<ninx_emu::TileB, 0> {};
template <>
class fragment<matrix_b, 16, 16, 8, precision::tf32, col_major> : public ninx_emu::Fragment<ninx_emu::TileB, 1> {};
template <>
class fragment<accumulator, 16, 16, 8, float> : public ninx_emu::Fragment<ninx_emu::TileC, -1> {};

// the TF32 nearest to `in`, ties away from zero (PTX cvt.rna.tf32.f32)
inline float __float_to_tf32(float in) { return ninx_emu::tf32(in, 0x1000); }

template <class T, int L> void fill_fragment(ninx_emu::Fragment<T, L>& f, float v) {
    for (float& e : f.x) e = v;
}

// matrix_a and matrix_b: laid out in memory as their type says
template <class T, int L>
    requires(L >= 0)
void load_matrix_sync(ninx_emu::Fragment<T, L>& f, const float* p, unsigned ldm) {
    ninx_emu::load(f, p, ldm, L);
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 8, float>& f, const float* p, unsigned ldm,
                             layout_t layout) {
    ninx_emu::load(f, p, ldm, layout);
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 8, float>& f, unsigned ldm,
                              layout_t layout) {
    ninx_emu::store(p, f, ldm, layout);
}

template <int LA, int LB>
void mma_sync(fragment<accumulator, 16, 16, 8, float>& d, const ninx_emu::Fragment<ninx_emu::TileA, LA>& a,
              const ninx_emu::Fragment<ninx_emu::TileB, LB>& b, const fragment<accumulator, 16, 16, 8, float>& c) {
    ninx_emu::mma(d, a, b, c);
}

}  // namespace nvcuda::wmma
