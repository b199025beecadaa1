"""The GEMM core: out[o] (+)= Σ a[i % Ba] @ b[i % Bb] over the batch indices i ≡ o (mod Bo), in Numba.

Goto/BLIS blocking: an MR×NR register tile (`gemm_ir`: its size follows the target's vectors and registers)
is updated by a micro-kernel written in LLVM IR, fed by A and B panels packed from arbitrary strided views
(transposes and broadcasts read in place, never copied whole), from operands packed once ahead (`pack`), or
gathered through offset tables (`Gathered`, the convolution's windows). The block sizes come from the caches
(`blocking`). The cores split the output batch, or else the larger output dimension.

The ladder, float32 GFLOP/s (1024², 2048²; 1×1 convs 96@28² / 192@13² / 192@6², N=128); rungs 1–10 on the
2-core Zen 4 (AVX-512), the long log in benchmarks/results/gemm-ladder.md:
  micro-kernel alone, LLVM IR, 24 zmm accumulators: 115 (1 core; from 7 with a tile left to LLVM)
  1–3: blocked, masked vector write-back, vector-move packing    1 core 93, 94 | 65, 67, 37
  4–7: A micro-panel in L1, broadcast A packed once, thin panel,
       masked gathers                                            1 core 98, 103 | 81, 73, 47
  8–10: broadcast A of many blocks packed once, transposed B and
        row-major A packed by register transposes                (NiN 5×5 conv GEMMs 78–85 → 92–95)
 11: tile and blocks from the target (`gemm_ir`, `blocking`), on the 2-core Zen 5, 2 cores, ratio to OpenBLAS:
       AVX-512 (12×32)  410, 435 | 236, 295, 275   0.95, 0.97 | 1.17, 0.95, 1.11
       AVX2 (6×16, haswell target, vs OpenBLAS Haswell)
                        231, 239 | 159, 165, 184   0.95, 0.98 | 1.15, 0.84, 1.21
     (a Zen 3 with the fixed 12×32 tile, which spilled on AVX2: 38, 42 | 25, 32 at 0.27–0.31)
 12: operands packed ahead (`Packed`) and a B gathered through offset tables (`Gathered`: the convolution's
     windows, so no column matrix is built). 5×5 96→192 conv GEMM at 192 rows, 2 cores: B prepacked 376,
     gathered 293–328, packed by the core from a built matrix 322–365; the training step A/B 1.00: gathering
     costs about what im2col did (one cycle an element), 15–25% of a GEMM whose B serves only 192 rows.
 13: a row-major B read in place for products ≤ 2 A blocks tall; whole tiles written back with plain
     vector moves (AVX2's vmaskmov stores are slow on AMD). 1×1 96@28² / 192@13², same process A/B:
       AVX-512  198–211 → 254–267, 233–248 → 277–332;  float64 95–116 → 143–147
       AVX2     129–134 → 154–167, 137–141 → 174–183;  float64 64–78 → 81–92, 62–72 → 90–92
 14: the k×k convolutions leave this core for `direct.py`, an implicit GEMM on a micro-kernel of the same
     kind whose window operand is broadcast in place: NiN 5×5 layer forward 61–64 → 50–56 ms, input gradient
     65–70 → 57–59, weight gradient 66–70 → 48–53 (AVX-512, 2 cores)
 15: on the 2-core Zen 4 (32 KiB L1d): the A micro-panel takes 3/4 of L1d (kc 336 → 512 float32, 160 → 256
     float64: +2%, +4–9%); whole vectors packed with plain moves on targets without mask registers (haswell
     target, 1024² vs OpenBLAS Haswell 0.81 → 1.00); bias and ReLU in the tiles' write-back instead of a pass
     after the core (conv 1×1 + ReLU at 28², 13², 6²: 1.09, 1.14, 1.39× faster)
 16: on the 2-core Zen 3 (AVX2 only): register transposes with plain moves where there are no mask registers
     (A @ Bᵀ of the 1×1 weight gradient, 1 core, 61.5 → 30.7 ms, the speed of operands packed ahead)
 17: the B block, reread once per A micro-panel, in half of L2 and the A block in an eighth of L3 (they were
     the other way round), an A block packed once for all its B blocks, broadcast operands packed ahead.
     Zen 5, new/old: squares 1.00–1.07 (now 1.01–1.08× OpenBLAS up to 2048², 4096² a tie), float64 2048²
     1.03–1.09, 1×1 within noise; Zen 3 neutral; the Intel host's 2048² 0.66 → 0.77 of OpenBLAS
 18: the cost of a call, for tiny products: work below SERIAL_FLOPS runs in a serial build of the kernel on
     `borrowed` arrays (no thread pool resized, no reference counts), plain tuples across the dispatcher,
     a worker's packed blocks kept for its next task. Zen 5, µs a call, old → new (numpy): float32
     128×(10×10 @ 10×4) 36–37 → 22–24 (5.7), 32³ 16 → 8 (1.1), 8×64³ 31 → 25 (18);
     float64 8×64³ 44–48 → 36 (35)
 19: no division left in a product's path (ranges of run-time steps, `%`, an itemsize read at run time:
     ~10 a product), a narrow B read in place with masked loads, a partial tile stored without first
     loading what it overwrites. 128×(10×10 @ 10×4) 22–23 → 12 µs a call; ratio to OpenBLAS 0.24 → 0.45,
     1×1 192@6² 0.99 → 1.10, 192@13² 1.12 → 1.25
 20: less Python a call: the blocks and splits of a shape derived once (`_plan`), the operand checks in one
     test for the common case, C-contiguous layouts from the shape as plain tuples. µs a call 1×1×1 7.3 → 4.8,
     32³ 7.9 → 5.1, 128×(10×10 @ 10×4) 12.5 → 9.7 (numpy 5.5)
 21: on the 2-core Zen 4: narrow products of one A side by side in a panel (`_side_by_side`, runs moved by
     the narrowest masked vector, `move_runs`): 8 products of 10×10 @ 10×4 a 12×32 tile, not 1.
     µs a call, 128× 15–16 → 9.0–9.2 (numpy 8.6–9.1), 1280× 94–100 → 30–31 (numpy 77–88)
 23: one build of the kernels per dtype (every array they only read is read-only: the mixes of writeable
     and read-only bases were four builds of 7–20 s each); the operands' kinds in the cached `Plan`.
 24: narrow products in one register tile, their B rows loaded and C rows stored where they lie
     (`narrow_tile`: 1, 2 or 4 slots a vector): the panel and scratch-tile moves of rung 21 took more time
     than the FMAs. µs a call, 128×(10×10 @ 10×N), Zen 4: float64 N=4 9.9–10.3 → 8.3–8.7 (numpy
     8.6–9.0), N=8 13.3–17.8 → 10.8–11.0; float32 N=4, 8, 16 7.7–7.9 → 7.4–7.9, 9.6–10 → 8.4,
     13.5–14 → 10.6–11.5; float32 N=1, 2 (4 lanes a slot) 6.6–6.9 → 7.4–7.7, below numpy's 8.2–8.6
 25: on the 2-core Ice Lake-SP: the micro-kernel prefetches B PREFETCH_AHEAD rows early, one line a
     prefetch. Alternating processes, ratio to OpenBLAS, old → new: float64 1×1 96@28² 0.82–0.86 → 0.92–1.00,
     float32 2048² 0.97–0.99 → 1.02–1.05 (in-process probe); the rest within the host's noise
 27: on the 2-core Ice Lake-SP: the columns past a product's last whole tile (its `tail`: at 6×6 pixels, 32 + 4)
     share tiles with other products' tails, 2 or 4 a vector (`_side_by_side` on a column range). 1×1 conv
     192@6² product, ms, alternating processes: float32 2.1–2.2 → 1.38–1.44, float64 4.3–4.4 → 3.5–3.9,
     haswell target 2.2 → 1.85. Tails of one a vector (13², 28²: 9, 16 columns) ran slower shared: not shared
 28: kc from the A and one B micro-panel in all but one of L1d's ways (`blocking`, BLIS's analytical model):
     float64 2048² fell from 113–116 GFLOP/s at kc 224 to 100–102 at 240, on the model's edge. Ice Lake-SP,
     alternating processes: float64 1024², 2048², 4096² 58–96, 92–100, 92–101 → 98–120, 107–120, 105–120;
     float32 (kc 512 → 256) within noise. Not yet measured on AMD (Zen 4 gets 160 and 128)
 29: on the 2-core Ice Lake-SP, beside this core: the direct convolution's buffers start on a cache line
     (`memory.aligned_empty`; numpy's started 16 bytes past one), and its weight gradient takes per layer the
     tile of fewest cycles per useful FMA (`direct.gradient_tile`). Small NiN 5×5 layer, ms, one process
     alternating: forward 78 → 66, dx 82 → 69, dW 97–100 → 64–72; the training step 1.32 → 1.46× PyTorch
 30: on the 2-core Ice Lake-SP: the micro-kernel asks for its tile of C PREFETCH_TAIL k steps before the end
     of its k loop (C is swept from memory once a depth block; asked for at the start, or not at all below
     kc 256, its lines were not in L1 at the write-back). One process alternating, new/old: float64 1024²,
     2048², 4096² 1.03–1.05, 1.06–1.10, 1.05; float32 1.00–1.07; 1×1 shapes 0.96–1.06; haswell target
     float64 1.10, 1.16, float32 1.13, 1.05
 31: on the 2-core Ice Lake-SP: over a B read in place, the first A micro-panel asks for the next panel's
     rows, a tile ahead, not 8 rows down its own (B comes from memory there, in 96–192 strided streams).
     128×(96×96 @ 96×784), one process alternating, new/old: float32 1.08–1.26, haswell target 1.15;
     192@13², 192@6², float64 and squares 0.97–1.02
 32: on the 2-core Ice Lake-SP: a tile of 8 rows × 3 vectors on 32 registers, not 12 × 2 (11 loads a k step
     for 24 FMAs, not 14), a thin last panel in 1, 2 or 3 vectors. One process alternating, new/old: float64
     1024², 2048², 96@28², 192@13², 192@6² 1.05, 1.09–1.13, 1.23–1.53, 1.03–1.08, 1.04; float32 0.99–1.01,
     1.04–1.08, 0.92–1.03, 0.95–1.04, 0.70–0.74 (36 columns fill 3/4 of one 48-wide tile, where 32 + a shared
     tail of 4 did before); the training step about 0.94× (three alternating pairs)
 33: on the 2-core Zen 3: the rows whose B is read in place no longer follow kc (rung 28's kc of 320 there
     had put its 192-row 1×1 convolutions in place). One process alternating, 31 rounds, new/old: float32
     192@13² 1.15, float64 96@28² 1.14, the rest within noise; the training step within noise
"""
import functools
import math
import threading
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange
from numpy.lib.stride_tricks import as_strided

from ..gemm_operands import check_gemm_operands
from .borrowed import borrowed
from .gemm_ir import (MR, NR_VECTORS, PREFETCH_AHEAD, TARGET, VECTOR_BYTES, gather_padded, lanes, narrow_tile,
                      tile_columns, tile_update, transpose_into)
from .memory import ALIGN, aligned_empty

SERIAL_FLOPS = 2_000_000  # below this much work one thread is faster than waking the others
IN_PLACE_DEPTH = 512  # the A rows' depth in `in_place_rows`: float32's kc on every host when it was measured


class Layout(NamedTuple):
    """An operand (batch, rows, cols) in its flat base: element [i, r, c] is
    base[offset + i·batch_stride + r·row_stride + c·col_stride]; batch is its batch size (Ba or Bb)."""
    offset: int
    row_stride: int
    col_stride: int
    batch_stride: int
    batch: int


class Matrix(NamedTuple):
    """One matrix of an operand: element [row, col] is base[offset + row·row_stride + col·col_stride]."""
    offset: int
    row_stride: int
    col_stride: int


class Blocking(NamedTuple):
    """Extents of the packed blocks: kc (depth shared by A and B panels), mc (rows of A), nc (columns of B)."""
    kc: int
    mc: int
    nc: int


class Packed(NamedTuple):
    """An operand packed ahead of its products, so that the core never packs it again: not for each product
    of a batch, nor for each block of columns of one wide product (the convolution's W).

    side "a": block (k0, m0) of matrix i starts at panels[i, k0·m_pad + m0·kc], MR-row panels with element
    (k, r) at k·MR + r; side "b": block (k0, n0) at panels[i, k0·n_pad + n0·kc], NR-column panels with (k, j)
    at k·NR + j. Rows and columns past the matrix are zero; kc is the depth of every block but the last."""
    panels: np.ndarray  # (batch, m_pad·K) or (batch, K·n_pad), ALIGN-byte aligned
    side: str
    rows: int
    cols: int
    kc: int

    @property
    def shape(self):
        return (self.panels.shape[0], self.rows, self.cols)

    @property
    def dtype(self):
        return self.panels.dtype


class Gathered(NamedTuple):
    """A B operand read through offset tables instead of strides: element [i, k, j] is
    base[rows[i, k] + cols[j]]. The convolution's windows are such a matrix (`windows.py`): the core gathers
    each B block straight from the input into the worker's panel, and no column matrix is ever built."""
    base: np.ndarray  # 1-D
    rows: np.ndarray  # (batch, K) int64
    cols: np.ndarray  # (N,) int64

    @property
    def shape(self):
        return (self.rows.shape[0], self.rows.shape[1], self.cols.size)

    @property
    def dtype(self):
        return self.base.dtype


def blocking(itemsize, target=TARGET):
    """The largest Blocking for elements of `itemsize` bytes, sized from the target's caches:
    - the A micro-panel (MR × kc) stays in L1 while B micro-panels stream past it, and between two reads of
      any of its lines one B micro-panel (kc × NR) goes by: under LRU it stays when the two fill at most
      W − 1 of L1d's W ways, the last way for C's tile (BLIS's analytical model, Low et al. 2016). On the
      2-core Ice Lake-SP (48 KiB, 12 ways) float64 2048² ran at 117–129 GFLOP/s with kc 192 against 98–105
      at 384, where A alone had 3/4 of L1d (the rule before; 224 fits nearly and ran as 192, 240 as 384);
      float32 ran alike at 240 and 512;
    - the B block (kc × nc) those micro-panels come from stays in L2: it takes half of it;
    - the A block (mc × kc), packed once and read once per B block, takes an eighth of L3 (a share of a
      cache other cores and machines use too).
    kc is a multiple of 16 (whole register transposes) within [16, 512], mc of MR, nc of NR."""
    nr = tile_columns(itemsize)
    room = target.l1d * (target.l1d_ways - 1) // target.l1d_ways
    kc = min(512, max(16, room // ((MR + nr) * itemsize) // 16 * 16))
    mc = max(MR, target.l3 // 8 // (kc * itemsize) // MR * MR)
    nc = max(nr, target.l2 // 2 // (kc * itemsize) // nr * nr)
    return Blocking(kc, mc, nc)


def in_place_rows(itemsize, target=TARGET):
    """The most rows of a product whose row-major B is read where it lies instead of packed: as many as half
    of L2 holds IN_PLACE_DEPTH-deep A rows of. Each of the product's M/MR micro-panels rereads the B block, and
    a B read in place has rows a whole row of B apart (a 2048-wide B: 8 KiB, which maps them onto few cache
    sets), so only a short product gains from skipping the pass that packs it (on the 2-core Zen 5, 1×1 conv
    96@28² 0.74 → 0.83 of OpenBLAS, float64 0.84 → 1.16; squares read in place fell from 0.92 to 0.61–0.86).
    The depth is fixed, not kc: when kc fell to 320 on the Zen 3 (rung 28), its 192-row products went in
    place, as did float64's 96-row ones, and ran 0.83–0.90× as fast as packed (rung 33)."""
    return max(MR, target.l2 // 2 // (IN_PLACE_DEPTH * itemsize) // MR * MR)


def _balanced(extent, most, step):
    """The block size, a multiple of step and at most `most`, that cuts `extent` into the fewest blocks of
    near-equal size: k = 2048 with kc ≤ 272 gives 8 blocks of 256, not 7 of 272 and one of 144."""
    pieces = max(1, -(-extent // most))
    per_piece = -(-extent // pieces)
    return min(most, -(-per_piece // step) * step)


def _padded(extent, itemsize, side):
    """Rows (side "a", to a multiple of MR) or columns (side "b", to a multiple of NR) of a Packed operand."""
    step = MR if side == "a" else tile_columns(itemsize)
    return -(-extent // step) * step


@njit(inline="always")
def _pack_a(base, a, m0, mc, k0, kc, panel):
    """panel[(r·kc + k)·MR + i] = A[m0 + r·MR + i, k0 + k], zero for rows past m0 + mc (a: a Matrix).

    A row-major A (col_stride 1) goes W columns of k at a time through register transposes (W ≥ MR rows
    loaded, MR stored); the rest, and any other A, column by column."""
    width = lanes(panel)
    row_major = a.col_stride == 1 and a.row_stride != 1 and width >= MR
    for r in range((mc + MR - 1) // MR):
        rows = min(MR, mc - r * MR)
        k = 0
        if row_major:
            for k in range(0, kc - width + 1, width):
                src = a.offset + (m0 + r * MR) * a.row_stride + k0 + k
                transpose_into(base, src, a.row_stride, rows, panel, (r * kc + k) * MR, MR, MR)
            k = kc - kc % width
        for k in range(k, kc):
            src = a.offset + (m0 + r * MR) * a.row_stride + (k0 + k) * a.col_stride
            gather_padded(base, src, a.row_stride, rows, panel, (r * kc + k) * MR, MR)


@njit(inline="always")
def _pack_b(base, b, k0, kc, n0, nc, nr, panel):
    """panel[(c·kc + k)·nr + j] = B[k0 + k, n0 + c·nr + j], zero for columns past n0 + nc (b: a Matrix).

    A transposed B (row_stride 1) goes W rows of k at a time through register transposes, W columns per
    transpose; the rest, and any other B, row by row."""
    width = nr // NR_VECTORS
    transposed = b.row_stride == 1 and b.col_stride != 1
    for c in range((nc + nr - 1) // nr):
        cols = min(nr, nc - c * nr)
        k = 0
        if transposed:
            for k in range(0, kc - width + 1, width):
                for v in range(0, nr, width):
                    src = b.offset + k0 + k + (n0 + c * nr + v) * b.col_stride
                    transpose_into(base, src, b.col_stride, cols - v, panel, (c * kc + k) * nr + v, nr, width)
            k = kc - kc % width
        for k in range(k, kc):
            src = b.offset + (k0 + k) * b.row_stride + (n0 + c * nr) * b.col_stride
            gather_padded(base, src, b.col_stride, cols, panel, (c * kc + k) * nr, nr)


@njit(inline="always")
def _gather_b(base, rows, cols, run_start, run_length, panel_runs, k0, kc, n0, nc, nr, panel):
    """panel[(c·kc + k)·nr + j] = base[rows[k0 + k] + cols[n0 + c·nr + j]], zero for columns past n0 + nc: the
    B block of a `Gathered` operand, in `_pack_b`'s layout. Every row moves each run of consecutive offsets
    (`_runs`: a window's row of pixels, or of taps) with masked vector loads and stores."""
    for c in range((nc + nr - 1) // nr):
        q = (n0 + c * nr) // nr  # blocks start at multiples of nr, so this is the panel's global index
        width = min(nr, nc - c * nr)
        for k in range(kc):
            row, dst = rows[k0 + k], (c * kc + k) * nr
            for r in range(panel_runs[q], panel_runs[q + 1]):
                j = run_start[r] - q * nr
                gather_padded(base, row + cols[run_start[r]], 1, run_length[r], panel, dst + j, run_length[r])
            if width < nr:
                gather_padded(base, 0, 1, 0, panel, dst + width, nr - width)  # zeros past the last column


def _runs(cols, nr):
    """The columns of a Gathered operand cut into runs of consecutive offsets, never across a panel of nr:
    (each run's first column, its length, panel_runs), panel q's runs being panel_runs[q] … [q + 1] − 1."""
    column = np.arange(cols.size)
    new_run = np.ones(cols.size, bool)
    new_run[1:] = (np.diff(cols) != 1) | (column[1:] % nr == 0)
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(starts, cols.size))
    return starts, lengths, np.searchsorted(starts, np.arange(-(-cols.size // nr) + 1) * nr)


@njit(inline="always")
def _block_product(a_panel, b_panel, kc, nr, out, o, m0, mc, n0, nc, accumulate, b_base, b_origin, b_ld, in_place,
                   finish, shift, low, cap):
    """out[o, m0:m0+mc, n0:n0+nc] (+)= packed A block @ B block, one register tile at a time; with `finish`,
    then + shift[m] and clamped to [low, cap] (`tile_update`). The B block's first `in_place` panels are read
    where they lie, from b_base[b_origin + c·nr] with rows b_ld apart (a row-major B); the others are packed
    in b_panel, panel c at (c − in_place)·kc·nr."""
    m_size, n_size = out.shape[1], out.shape[2]
    for r in range((mc + MR - 1) // MR):  # an A micro-panel stays in L1 while the B block streams past it
        rows = min(MR, mc - r * MR)
        for c in range((nc + nr - 1) // nr):
            cols = min(nr, nc - c * nr)
            # out[o, m, n] is element (o·M + m)·N + n of the C-contiguous out
            start = (o * m_size + m0 + r * MR) * n_size + n0 + c * nr
            from_source = c < in_place
            b_start, ldb = (b_origin + c * nr, b_ld) if from_source else ((c - in_place) * kc * nr, nr)
            # the first A micro-panel meets a B read in place coming from memory, kc rows a whole row of B apart
            # (more streams than the hardware prefetchers follow): it asks for the next panel's rows, a tile ahead;
            # the others find B in L2 and ask for rows PREFETCH_AHEAD steps down their own panel
            ahead = nr if from_source and r == 0 else PREFETCH_AHEAD * ldb
            # a thin last panel takes the fewest vectors that hold its columns: 1, 2 or all of the tile's
            if NR_VECTORS > 2 and cols * NR_VECTORS > 2 * nr:
                tile_update(a_panel, r * kc * MR, b_panel, b_base, from_source, b_start, ldb, ahead, kc, out, start,
                            n_size, rows, cols, accumulate, finish, shift, m0 + r * MR, low, cap, NR_VECTORS)
            elif cols * NR_VECTORS > nr:
                tile_update(a_panel, r * kc * MR, b_panel, b_base, from_source, b_start, ldb, ahead, kc, out, start,
                            n_size, rows, cols, accumulate, finish, shift, m0 + r * MR, low, cap, 2)
            else:
                tile_update(a_panel, r * kc * MR, b_panel, b_base, from_source, b_start, ldb, ahead, kc, out, start,
                            n_size, rows, cols, accumulate, finish, shift, m0 + r * MR, low, cap, 1)


@njit(inline="always")
def _task(a_base, a, b_base, b, out, o, batch, m_lo, m_hi, n_lo, n_hi, k_size, accumulate, blocks, a_panel,
          b_panel, packed, a_all, b_all, b_rows, b_cols, b_run_start, b_run_length, b_panel_runs, b_in_place,
          epilogue, shift, low, cap):
    """out[o][m_lo:m_hi, n_lo:n_hi] (+)= Σ over batch indices i ≡ o (mod Bo) of the i-th product; with
    `epilogue`, the last update of each tile adds shift[m] and clamps to [low, cap]. Returns `packed`, the
    (offset, k0, m0) of the A block in a_panel and the (offset, k0, n0) of the B block in b_panel, which the
    worker's next task starts from: a broadcast operand of one block is packed once per worker, not per task.

    A non-empty a_all (b_all) holds that operand's matrices packed (`Packed`), read in place of packing; a
    non-empty b_cols makes B the `Gathered` matrix of base b_base and offset tables b_rows, b_cols (and
    their runs, `_runs`); b_in_place reads a row-major B's whole panels where they lie."""
    kc_max, mc_max, nc_max = blocks
    nr = NR_VECTORS * lanes(out)
    m_pad = (out.shape[1] + MR - 1) // MR * MR
    n_pad = (out.shape[2] + nr - 1) // nr * nr
    a_packed, b_packed = packed[:3], packed[3:]
    # the loops step with `while`: a range of a step not known at compile time divides to count its steps,
    # and the ~10 divisions a product were most of a tiny product's time
    i = o
    while i < batch:
        # the i-th product reads A at offset + (i mod Ba)·batch_stride; B likewise
        a_at, b_at = _wrapped(i, a.batch), _wrapped(i, b.batch)
        a_i = Matrix(a.offset + a_at * a.batch_stride, a.row_stride, a.col_stride)
        b_i = Matrix(b.offset + b_at * b.batch_stride, b.row_stride, b.col_stride)
        k0 = 0
        while k0 < k_size:
            kc = min(kc_max, k_size - k0)
            add = accumulate or i != o or k0 > 0
            finish = epilogue and i + out.shape[0] >= batch and k0 + kc >= k_size  # the sum's last term
            m0 = m_lo
            while m0 < m_hi:  # the A block, packed once for all its B blocks
                mc = min(mc_max, m_hi - m0)
                if a_all.size:
                    a_panel = a_all[a_at * m_pad * k_size + k0 * m_pad + m0 * kc:]
                elif a_packed != (a_i.offset, k0, m0):
                    _pack_a(a_base, a_i, m0, mc, k0, kc, a_panel)
                    a_packed = (a_i.offset, k0, m0)
                n0 = n_lo
                while n0 < n_hi:
                    nc = min(nc_max, n_hi - n0)
                    in_place = -(-nc // nr) if b_in_place else 0  # panels read where they lie
                    if b_all.size:
                        b_panel = b_all[b_at * k_size * n_pad + k0 * n_pad + n0 * kc:]
                    elif b_packed != (b_i.offset, k0, n0):  # a broadcast B of one block: packed once
                        if b_cols.size:
                            _gather_b(b_base, b_rows[b_at], b_cols, b_run_start, b_run_length, b_panel_runs,
                                      k0, kc, n0, nc, nr, b_panel)
                        elif in_place * nr < nc:
                            _pack_b(b_base, b_i, k0, kc, n0 + in_place * nr, nc - in_place * nr, nr, b_panel)
                        b_packed = (b_i.offset, k0, n0)
                    b_origin = b_i.offset + k0 * b_i.row_stride + n0
                    _block_product(a_panel, b_panel, kc, nr, out, o, m0, mc, n0, nc, add, b_base, b_origin,
                                   b_i.row_stride, in_place, finish, shift, low, cap)
                    n0 += nc_max
                m0 += mc_max
            k0 += kc_max
        i += out.shape[0]
    return a_packed + b_packed


@njit  # a function of its own, not inlined: its unrolled tiles leave the worker's other paths as they were
def _side_by_side(a_panel, b_base, b, out, i_lo, i_hi, k_size, n0, n_cols, per, accumulate, epilogue, shift, low,
                  cap):
    """out[i][:, n0:n0+n_cols] (+)= A @ B[i][:, n0:n0+n_cols] for i_lo ≤ i < i_hi, those columns at most a
    vector wide: `per` products side by side in one register tile (`narrow_tile`), read from B and written to
    out where they lie (a 1×1 convolution at 2×2 pixels used 4 of a tile's 32 columns, one at 6×6 pixels
    filled 32 and then 4 of 16). a_panel holds A packed whole (one depth block); B's rows are contiguous and
    its batch 1 or the product's."""
    m_size, n_size = out.shape[1], out.shape[2]
    b_batch_stride = b.batch_stride if b.batch > 1 else 0
    g = i_lo
    while g < i_hi:
        count = min(per, i_hi - g)
        for r in range((m_size + MR - 1) // MR):
            rows = min(MR, m_size - r * MR)
            # out[i, m, j] is element (i·M + m)·N + j of the C-contiguous out
            a_at, b_at = r * k_size * MR, b.offset + g * b_batch_stride + n0
            c_at = (g * m_size + r * MR) * n_size + n0
            if per == 4 * NR_VECTORS:  # the products a vector holds: a literal, so each is a kernel of its own
                narrow_tile(a_panel, a_at, b_base, b_at, b.row_stride, b_batch_stride, out, c_at, n_size,
                            m_size * n_size, k_size, rows, count, n_cols, accumulate, epilogue, shift, r * MR, low,
                            cap, 4)
            elif per == 2 * NR_VECTORS:
                narrow_tile(a_panel, a_at, b_base, b_at, b.row_stride, b_batch_stride, out, c_at, n_size,
                            m_size * n_size, k_size, rows, count, n_cols, accumulate, epilogue, shift, r * MR, low,
                            cap, 2)
            else:
                narrow_tile(a_panel, a_at, b_base, b_at, b.row_stride, b_batch_stride, out, c_at, n_size,
                            m_size * n_size, k_size, rows, count, n_cols, accumulate, epilogue, shift, r * MR, low,
                            cap, 1)
        g += per


@njit(inline="always")
def _wrapped(i, n):
    """i mod n for i ≥ 0, n ≥ 1, dividing only where it must (n is 1 or above i for most operands)."""
    if n == 1:
        return 0
    return i if i < n else i % n


@njit(inline="always")
def _split(extent, step, parts, s):
    """Start of the s-th of `parts` near-equal pieces of range(extent), cut at multiples of step."""
    tiles = (extent + step - 1) // step
    return min(extent, (tiles * s // parts) * step)


@njit(parallel=True, cache=True)
def _pack_kernel(base, x, m_size, k_size, n_size, kc_max, side_b, panels):
    """Pack the x.batch matrices of `x` (a Layout in base, as a plain tuple) whole into panels (batch, size), a
    block (kc_max deep, MR rows or NR columns wide) per parallel piece, in the layout of `Packed`."""
    x = Layout(*x)
    nr = NR_VECTORS * lanes(panels)
    step = nr if side_b else MR
    wide = n_size if side_b else m_size
    pad = (wide + step - 1) // step * step
    depth_blocks = (k_size + kc_max - 1) // kc_max
    for t in prange(x.batch * depth_blocks * (pad // step)):
        i, rest = t // (depth_blocks * (pad // step)), t % (depth_blocks * (pad // step))
        k0, w0 = rest // (pad // step) * kc_max, rest % (pad // step) * step
        kc = min(kc_max, k_size - k0)
        matrix = Matrix(x.offset + i * x.batch_stride, x.row_stride, x.col_stride)
        dst = panels[i, k0 * pad + w0 * kc:]
        if side_b:
            _pack_b(base, matrix, k0, kc, w0, min(step, wide - w0), nr, dst)
        else:
            _pack_a(base, matrix, w0, min(step, wide - w0), k0, kc, dst)


@njit(inline="always")
def _worker(w, workers, work, a, b, blocks, job):
    """Worker w of `workers`, in its packing buffers `work`: its share of the Bo·splits tasks (output matrix o,
    piece s of its rows or columns) of the product `gemm` passes (a flat tuple `job`, and plain tuples for
    the NamedTuples: both cross the dispatcher 4× faster than NamedTuples, and a parallel loop takes no
    nested tuple).

    a, b: the Layout of each operand in its base; blocks: the Blocking. A non-empty a_all or b_all holds
    that operand packed (`Packed`, flattened), read in place of packing it; a non-empty b_cols makes B a
    `Gathered` one with the offset tables b_rows, b_cols (and their runs, `_runs`); side_by_side > 1 puts
    that many narrow products in one register tile (`_side_by_side`), with a tail > 0 only their last `tail`
    columns, after the worker's whole tiles; with `epilogue`, each output ends
    + shift[m], clamped to [low, cap]."""
    (a_base, b_base, out, batch, k_size, accumulate, splits, split_rows, a_all, b_all, b_rows, b_cols, b_run_start,
     b_run_length, b_panel_runs, b_in_place, side_by_side, tail, epilogue, shift, low, cap) = job
    a, b, blocks = Layout(*a), Layout(*b), Blocking(*blocks)
    m_size, n_size = out.shape[1], out.shape[2]
    nr = NR_VECTORS * lanes(out)
    tasks = out.shape[0] * splits
    a_panel, b_panel = work[:blocks.mc * blocks.kc], work[blocks.mc * blocks.kc:]
    if side_by_side and not tail:  # products of `side_by_side` per tile: a worker takes a share of the tiles
        tiles = (batch + side_by_side - 1) // side_by_side
        i_lo, i_hi = tiles * w // workers * side_by_side, tiles * (w + 1) // workers * side_by_side
        _pack_a(a_base, Matrix(a.offset, a.row_stride, a.col_stride), 0, m_size, 0, k_size, a_panel)
        _side_by_side(a_panel, b_base, b, out, i_lo, min(i_hi, batch), k_size, 0, n_size, side_by_side, accumulate,
                      epilogue, shift, low, cap)
        return
    packed = (-1, -1, -1, -1, -1, -1)  # nothing in the panels yet
    t_lo, t_hi = tasks * w // workers, tasks * (w + 1) // workers
    for t in range(t_lo, t_hi):
        o, s = (t, 0) if splits == 1 else divmod(t, splits)
        m_lo, m_hi, n_lo, n_hi = 0, m_size, 0, n_size - tail
        if splits > 1 and split_rows:
            m_lo, m_hi = _split(m_size, MR, splits, s), _split(m_size, MR, splits, s + 1)
        elif splits > 1:
            n_lo, n_hi = _split(n_size, nr, splits, s), _split(n_size, nr, splits, s + 1)
        packed = _task(a_base, a, b_base, b, out, o, batch, m_lo, m_hi, n_lo, n_hi, k_size, accumulate, blocks,
                       a_panel, b_panel, packed, a_all, b_all, b_rows, b_cols, b_run_start, b_run_length,
                       b_panel_runs, b_in_place, epilogue, shift, low, cap)
    if tail:  # the last `tail` columns of this worker's products (one a task), `side_by_side` of them a tile
        if a_all.size:
            a_panel = a_all
        elif packed[:3] != (a.offset, 0, 0):
            _pack_a(a_base, Matrix(a.offset, a.row_stride, a.col_stride), 0, m_size, 0, k_size, a_panel)
        _side_by_side(a_panel, b_base, b, out, t_lo, t_hi, k_size, n_size - tail, tail, side_by_side, accumulate,
                      epilogue, shift, low, cap)


@njit(parallel=True, cache=True)
def _gemm_kernel(work, a, b, blocks, job):
    """Run the product on len(work) workers, one per row of packing buffers (`_worker`)."""
    for w in prange(work.shape[0]):
        _worker(w, work.shape[0], work[w], a, b, blocks, job)


@njit(cache=True)
def _gemm_serial(work, a, b, blocks, job):
    """Run the product on the calling thread alone: no thread pool is woken or resized (3 µs a call)."""
    # arrays that count no references (`borrowed`): gemm's caller holds them for the whole call
    _worker(0, 1, borrowed(work[0]), a, b, blocks, borrowed(job))


def _flat(name, x, batch):
    """(base, layout) with x[i, m, k] at base[offset + i·batch_stride + m·row_stride + k·col_stride], the
    layout a plain tuple in Layout's order (building the NamedTuple costs a tiny product 0.2 µs).

    base is a read-only 1-D view from x's lowest to its highest element (`_read_only`)."""
    if x.flags.c_contiguous:  # the common case, and a cheap one: a flat view, strides from the shape
        return _read_only(x.ravel()), _contiguous(x.shape[1], x.shape[2], batch)
    itemsize = x.itemsize
    if any(s % itemsize for s in x.strides):
        raise ValueError(f"gemm: {name} {x.shape} has strides {x.strides}, not multiples of its item size")
    strides = [s // itemsize for s in x.strides]
    # the element at the lowest address has index n-1 along every axis with a negative stride
    offset = sum((n - 1) * -s for n, s in zip(x.shape, strides) if s < 0)
    lowest = x[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in strides)]
    span = 1 + sum((n - 1) * abs(s) for n, s in zip(x.shape, strides))
    base = as_strided(lowest, shape=(span,), strides=(itemsize,), writeable=False)
    return base, (offset, strides[1], strides[2], strides[0], batch)


def _contiguous(rows, cols, batch):
    """The layout (a plain tuple) of a C-contiguous operand of `batch` matrices of rows × cols."""
    return 0, cols, 1, rows * cols, batch


def _read_only(x):
    """x (a view of its own) made read-only. The kernels take every array they only read as read-only, so that
    an operand's writeability never makes Numba build them again: each type of the GEMM kernels' arguments is
    a compile of 7–20 s, and the four mixes of writeable and read-only bases were four of them."""
    x.setflags(write=False)
    return x


_workspaces = {}


def _workspace(dtype, blocks, workers):
    """Per-worker packing buffers (A block, B block), ALIGN-byte aligned, kept across calls of this thread."""
    key = (dtype, workers, threading.get_ident())
    if key not in _workspaces:
        row = blocks.mc * blocks.kc + blocks.kc * blocks.nc
        row += -row % (ALIGN // dtype.itemsize)
        _workspaces[key] = aligned_empty((workers, row), dtype)
    return _workspaces[key]


def _pack(x, side, room=None):
    """x (B, M, K) for side "a", (B, K, N) for side "b", packed whole as a `Packed` (in `room` when given)."""
    rows, cols = x.shape[1:]
    wide, depth = (rows, cols) if side == "a" else (cols, rows)
    size = _padded(wide, x.itemsize, side) * depth
    room = aligned_empty(x.shape[0] * size, x.dtype) if room is None else room
    packed = Packed(room[:x.shape[0] * size].reshape(x.shape[0], size), side, rows, cols,
                    _balanced(depth, _blockings[x.dtype].kc, 16))
    base, layout = _flat(side, x, x.shape[0])
    _pack_kernel(base, layout, rows if side == "a" else 0, depth, cols if side == "b" else 0, packed.kc, side == "b",
                 packed.panels)
    return packed


def pack(x, side):
    """x (B, M, K) as the A (side "a") or (B, K, N) as the B (side "b") of products to come, packed once:
    pass the `Packed` to `gemm` in its place. Its depth blocks are the core's for this depth."""
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"pack: x must be a 3-D float32 or float64 numpy array, got {getattr(x, 'shape', x)!r}")
    if side not in ("a", "b"):
        raise ValueError(f"pack: side must be 'a' or 'b', got {side!r}")
    return _pack(x, side)


_rooms = {}


def _room(dtype, side, size):
    """Room for a whole packed operand of `size` elements, ALIGN-byte aligned, kept for this thread and side."""
    key = (dtype, side, threading.get_ident())
    if key not in _rooms or _rooms[key].size < size:
        _rooms[key] = aligned_empty(size, dtype)
    return _rooms[key]


def _stand_in(x):
    """x itself, or for a Packed or Gathered operand an array of its shape and dtype that occupies no memory
    (for the checks, which read only those)."""
    return as_strided(np.zeros(1, x.dtype), x.shape, (0, 0, 0)) if isinstance(x, (Packed, Gathered)) else x


def _kind(x):
    """What a checked operand is: "contiguous" (a C-contiguous array), "rows" (an array whose rows are
    contiguous), "strided" (any other array), "packed" (`Packed`) or "gathered" (`Gathered`)."""
    if isinstance(x, np.ndarray):
        return "contiguous" if x.flags.c_contiguous else ("rows" if x.strides[2] == x.itemsize else "strided")
    return "packed" if isinstance(x, Packed) else "gathered"


def _operand(name, x, kind, batch, layout):
    """(base, layout, panels) of an operand of that `_kind` (the layout a plain tuple in Layout's order): a
    strided view, a Packed one's flat panels, or a Gathered one's base (batch stride 1: each of its matrices
    has an offset of its own). A contiguous operand's layout is given (the Plan's)."""
    if kind == "contiguous":
        return _read_only(x.ravel()), layout, _nothing[x.dtype]
    if kind == "packed":
        if x.side != name:
            raise ValueError(f"gemm: {name} is packed as side {x.side!r} of a product")
        flat = x.panels.reshape(-1)
        return _read_only(flat.view()), (0, 0, 0, 0, x.panels.shape[0]), flat
    if kind == "gathered":
        if name != "b":
            raise ValueError("gemm: only b may be a Gathered operand")
        return _read_only(x.base.view()), (0, 0, 0, 1, x.rows.shape[0]), _nothing[x.dtype]
    base, layout = _flat(name, x, batch)
    return base, layout, _nothing[x.dtype]


_nothing = {np.dtype(t): np.empty(0, t) for t in (np.float32, np.float64)}  # no packed panels, no shift
_unclamped = {np.dtype(t): (t(-np.inf), t(np.inf)) for t in (np.float32, np.float64)}  # (low, cap)
_NOT_GATHERED = (np.empty((1, 0), np.int64),) + (np.empty(0, np.int64),) * 4  # a B without offset tables
_blockings = {np.dtype(t): blocking(np.dtype(t).itemsize) for t in (np.float32, np.float64)}
_in_place_rows = {np.dtype(t): in_place_rows(np.dtype(t).itemsize) for t in (np.float32, np.float64)}


class Plan(NamedTuple):
    """How `gemm` runs a product of given extents and operand kinds (`_plan`)."""
    blocks: tuple  # the Blocking, as a plain tuple
    splits: int  # pieces each output matrix is cut into, along its rows or its columns
    split_rows: bool
    side_by_side: int  # products that share a register tile (`_side_by_side`); 0: none
    tail: int  # with side_by_side, only each product's last `tail` columns share tiles (the rest, tiles of NR)
    b_in_place: bool  # a row-major B of a short product is read where it lies (`in_place_rows`), never packed
    pack_a: bool  # an operand broadcast over the products is packed once, before the tasks (`_pack`)
    pack_b: bool
    a_layout: tuple  # of a contiguous A (else None); b_layout likewise
    b_layout: tuple


@functools.lru_cache(maxsize=1024)
def _plan(dtype, m, n, k, ba, bb, bo, a_kind, b_kind, packed_kc, workers):
    """The Plan of a product of these extents and operand kinds on `workers` threads. A pure function of its
    arguments, kept: a tiny product's call would spend µs deriving it again."""
    nr = tile_columns(dtype.itemsize)
    largest = _blockings[dtype]
    kc = packed_kc or _balanced(k, largest.kc, 16)
    # a shallower B block is wider: it keeps the largest one's share of L2
    blocks = (kc, _balanced(m, largest.mc, MR), largest.kc * largest.nc // kc // nr * nr)
    split_rows = -(-m // MR) > -(-n // nr)
    tiles = -(-m // MR) if split_rows else -(-n // nr)
    splits = min(tiles, workers // math.gcd(bo, workers))
    batch = max(ba, bb, bo)
    b_rows = b_kind in ("contiguous", "rows")
    width = VECTOR_BYTES // dtype.itemsize
    # side by side: one A of one block for all, B[i]'s rows contiguous (`narrow_tile` loads them as slots of
    # vectors), each output one product's (no sum over the batch), and either each B[i] at most a vector wide
    # (a 1×1 convolution's at a few pixels) or only the columns past B[i]'s last whole tile (its tail), the
    # products one a task
    narrow = ba == 1 and bo == batch > 1 and b_rows and k <= kc and m <= largest.mc
    whole = narrow and bb in (1, batch) and n <= width and not packed_kc
    tail = n % nr if narrow and not whole and bb == batch and splits == 1 and n % nr <= width // 2 else 0
    # products per tile: NR_VECTORS times the most that share a vector (1, 2 or 4), each in a slot ≥ its lanes
    pieces = max(p for p in (1, 2, 4) if p <= width and width // p >= (tail or n)) if whole or tail else 0
    b_in_place = b_rows and m <= _in_place_rows[dtype]
    # a broadcast operand would be packed again by every task: packed once instead, unless the work is too
    # small to wake a second thread (a separate packing call costs ~5 µs)
    once = not whole and batch > 1 and workers > 1
    arrays = ("contiguous", "rows", "strided")
    return Plan(blocks, splits, split_rows, NR_VECTORS * pieces, tail, b_in_place,
                once and ba == 1 and a_kind in arrays, once and bb == 1 and b_kind in arrays and not b_in_place,
                _contiguous(m, k, ba) if a_kind == "contiguous" else None,
                _contiguous(k, n, bb) if b_kind == "contiguous" else None)


def gemm(a, b, out, accumulate=False, bias=None, relu_cap=None):
    """out[i % Bo] (+)= a[i % Ba] @ b[i % Bb] for i < max(Ba, Bb, Bo), summed over i, then + bias[m] and
    clamped to [0, relu_cap] when given (a convolution's bias and ReLU/ReLU6, in the tiles' write-back);
    returns out.

    a (Ba, M, K) and b (Bb, K, N) may be any strided views, or `Packed` by `pack` (or a producer of
    panels); out (Bo, M, N) is C-contiguous and must not overlap them. accumulate=False overwrites out with
    the sum, accumulate=True adds the sum to out."""
    check_gemm_operands(np.ndarray, _stand_in(a), _stand_in(b), out, bias)
    (ba, m, k), (bb, _, n), bo = a.shape, b.shape, out.shape[0]
    batch = max(ba, bb, bo)
    dtype = out.dtype
    epilogue = bias is not None or relu_cap is not None
    # shift is writeable like _nothing: a copy of the bias (it may be read-only, as a memory-mapped one is)
    shift = _nothing[dtype] if not epilogue else (np.zeros(m, dtype) if bias is None else np.array(bias, dtype))
    low, cap = (dtype.type(0), dtype.type(relu_cap)) if relu_cap is not None else _unclamped[dtype]
    if m == 0 or n == 0:
        return out
    if k == 0:  # no tile runs: the epilogue on the sum of nothing (or on out when accumulating)
        if not accumulate:
            out.fill(0)
        if epilogue:
            np.minimum(np.maximum(out + shift[:, None], low, out=out), cap, out=out)  # NaN passes both
        return out
    a_kind, b_kind = _kind(a), _kind(b)
    if a_kind == b_kind == "packed" and a.kc != b.kc:
        raise ValueError(f"gemm: a and b are packed with different depth blocks {sorted((a.kc, b.kc))}")
    packed_kc = a.kc if a_kind == "packed" else (b.kc if b_kind == "packed" else 0)
    workers = 1 if 2 * batch * m * n * k < SERIAL_FLOPS else numba.get_num_threads()
    plan = _plan(dtype, m, n, k, ba, bb, bo, a_kind, b_kind, packed_kc, workers)
    if plan.pack_a:
        a, a_kind = _pack(a, "a", _room(dtype, "a", _padded(m, dtype.itemsize, "a") * k)), "packed"
    if plan.pack_b:
        b, b_kind = _pack(b, "b", _room(dtype, "b", _padded(n, dtype.itemsize, "b") * k)), "packed"
    a_base, a_layout, a_all = _operand("a", a, a_kind, ba, plan.a_layout)
    b_base, b_layout, b_all = _operand("b", b, b_kind, bb, plan.b_layout)
    tables = _NOT_GATHERED
    if b_kind == "gathered":
        tables = (b.rows, b.cols) + _runs(b.cols, tile_columns(dtype.itemsize))
    job = (a_base, b_base, out, batch, k, bool(accumulate), plan.splits, plan.split_rows, a_all, b_all, *tables,
           plan.b_in_place, plan.side_by_side, plan.tail, epilogue, shift, low, cap)
    kernel = _gemm_serial if workers == 1 else _gemm_kernel
    kernel(_workspace(dtype, _blockings[dtype], workers), a_layout, b_layout, plan.blocks, job)
    return out
