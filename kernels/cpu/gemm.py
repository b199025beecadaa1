"""The GEMM core: out[o] (+)= Σ a[i % Ba] @ b[i % Bb] over the batch indices i ≡ o (mod Bo), in Numba.

Goto/BLIS blocking: an MR×NR register tile (12 × two 512-bit vectors) is updated by a micro-kernel written
in LLVM IR, fed by A and B panels packed from arbitrary strided views (transposes and broadcasts read in
place, never copied whole). The two cores split the output batch, or else the larger output dimension.

The ladder, float32 GFLOP/s on the 2-core Zen 4 (1 core: CPU time of the calling thread, min of 5; 2 cores:
`python -m benchmarks.gemm`, median). Columns: 1024², 2048², 1×1 convs 96@28² / 192@13² / 192@6² (N=128).
  micro-kernel alone, np.zeros accumulator left to LLVM: 7 (1 core; the tile lived in memory, scalar FMAs)
  micro-kernel alone, LLVM IR with 24 zmm accumulators: 115 (1 core; 12×32 tile, k=256, data in L1/L2)
  1: blocked, tile stored to a buffer, scalar copy into out      1 core  56 at 1024²
  2: masked vector write-back straight into out                  1 core  82 at 1024²; 2 cores 151, 173
  3: vector-move packing (B packing 43 → 6.6 µs for 96×784)      1 core  93, 94 | 65, 67, 37
  4: loop order: A micro-panel in L1, B block streams past it    1 core 101, 105 | 77, 68, 38
  5: broadcast operand packed once per call, cheaper wrapper     1 core  96, 102 | 80, 68, 36
  6: one-vector tile for a thin last column panel                1 core  98, 103 | 81, 71, 42
  7: masked gathers for strided packing                          1 core  98, 103 | 81, 73, 47
Then on the small NiN's per-image batches, 1 core (CPU time, min of 3): conv 5×5 96→192 at 13², N=128 —
forward (1,192,2400)@(128,2400,169), input gradient (1,2400,192)ᵀ@(128,192,169), weight gradient
(128,192,169)@(128,169,2400)ᵀ → (1,192,2400) — and the 1×1 96@28² weight gradient:
  before 8                                                       78, 85, 67 | 65
  8: a broadcast A of several blocks packed once per call         92, 94, 63 | 65
  9: a transposed B packed by 16×16 register transposes            92, 94, 87 | 73
 10: a row-major A packed by register transposes too               95, 95, 92 | 87
numpy.matmul (OpenBLAS, SkylakeX kernel) on the same machine: about 100 per core, 200 on 2 cores.
"""
import math
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils, errors
from numba.extending import intrinsic
from numpy.lib.stride_tricks import as_strided

from ..gemm_operands import check_gemm_operands

MR = 12  # rows of the register tile
VECTOR_BYTES = 64  # one AVX-512 register
NR_VECTORS = 2  # columns of the register tile, in vectors: NR = 32 float32 or 16 float64
KC = 256  # depth of a packed block (the k extent shared by an A and a B panel)
MC = 144  # rows of a packed A block (a multiple of MR)
NC = 2048  # columns of a packed B block
ALIGN = 64  # byte alignment of each worker's packing buffers
SERIAL_FLOPS = 2_000_000  # below this much work one thread is faster than waking the others


def _vector_ops(context, builder, elem):
    """(vector type, fma, masked_load, masked_store, masked_gather) for one 512-bit register of elem."""
    width = VECTOR_BYTES // context.get_abi_sizeof(elem)
    vec = ir.VectorType(elem, width)
    mask = ir.VectorType(ir.IntType(1), width)
    name = f"v{width}f{8 * context.get_abi_sizeof(elem)}"
    ptr, i32 = ir.PointerType(elem), ir.IntType(32)

    def declare(intrinsic, result, *args):
        return cgutils.get_or_insert_function(builder.module, ir.FunctionType(result, args), intrinsic)
    return (vec,
            declare(f"llvm.fma.{name}", vec, vec, vec, vec),
            declare(f"llvm.masked.load.{name}.p0", vec, ptr, i32, mask, vec),
            declare(f"llvm.masked.store.{name}.p0", ir.VoidType(), vec, ptr, i32, mask),
            declare(f"llvm.masked.gather.{name}.v{width}p0", vec, ir.VectorType(ptr, width), i32, mask, vec))


def _splat(builder, value, n):
    """<n x value>: value in every lane."""
    lanes = builder.insert_element(ir.Constant(ir.VectorType(value.type, n), None), value,
                                   ir.Constant(ir.IntType(64), 0))
    return builder.shuffle_vector(lanes, lanes, ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n))


@intrinsic
def _tile_update(typingctx, a_panel, a_start, b_panel, b_start, kc, c, c_start, ldc, rows, cols, accumulate,
                 vectors):
    """c[c_start + i·ldc + j] (+)= Σ_{k<kc} a_panel[a_start + k·MR + i] · b_panel[b_start + k·NR + j].

    For i < rows ≤ MR, j < cols ≤ vectors·(vector width); the sums stay in MR·vectors registers for the
    whole k loop. `vectors` (a literal, 1 or NR_VECTORS) narrows the tile for a last, thin panel."""
    if not isinstance(c, types.Array) or c.dtype not in (types.float32, types.float64):
        raise errors.TypingError("_tile_update needs float32 or float64 arrays")
    if not isinstance(vectors, types.IntegerLiteral):
        raise errors.RequireLiteralValue(vectors)
    used = vectors.literal_value

    def codegen(context, builder, sig, args):
        a_arr, a_start, b_arr, b_start, kc, c_arr, c_start, ldc, rows, cols, accumulate, _ = args
        elem = context.get_data_type(sig.args[5].dtype)
        size = context.get_abi_sizeof(elem)
        vec, fma, masked_load, masked_store, _ = _vector_ops(context, builder, elem)
        width = vec.count
        i64, i32 = ir.IntType(64), ir.IntType(32)

        def const(n):
            return ir.Constant(i64, n)

        def data(position, value):
            return context.make_array(sig.args[position])(context, builder, value).data

        def splat(value):
            return _splat(builder, value, width)

        a_ptr = builder.gep(data(0, a_arr), [a_start])
        b_ptr = builder.gep(data(2, b_arr), [b_start])
        zero = ir.Constant(vec, [ir.Constant(elem, 0.0)] * width)
        align = ir.Constant(i32, size)

        # the k loop: acc[i·used + v] += a[k, i] · b[k, v·width : (v+1)·width]
        entry = builder.block
        loop = builder.append_basic_block("tile_k_loop")
        done = builder.append_basic_block("tile_k_done")
        builder.cbranch(builder.icmp_signed(">", kc, const(0)), loop, done)
        builder.position_at_end(loop)
        k = builder.phi(i64)
        acc = [builder.phi(vec) for _ in range(MR * used)]
        b_row = builder.gep(b_ptr, [builder.mul(k, const(NR_VECTORS * width))])
        b_vecs = [builder.load(builder.gep(b_row, [const(v * width)]), typ=vec, align=size)
                  for v in range(used)]
        a_col = builder.gep(a_ptr, [builder.mul(k, const(MR))])
        new = []
        for i in range(MR):
            a_i = splat(builder.load(builder.gep(a_col, [const(i)]), typ=elem))
            new += [builder.call(fma, [a_i, b_vecs[v], acc[i * used + v]]) for v in range(used)]
        k_next = builder.add(k, const(1))
        builder.cbranch(builder.icmp_signed("<", k_next, kc), loop, done)
        k.add_incoming(const(0), entry)
        k.add_incoming(k_next, loop)
        for phi, value in zip(acc, new):
            phi.add_incoming(zero, entry)
            phi.add_incoming(value, loop)

        # write back rows i < rows; lanes past cols are masked off, old values read only if accumulating
        builder.position_at_end(done)
        sums = [builder.phi(vec) for _ in new]
        for phi, value in zip(sums, new):
            phi.add_incoming(zero, entry)
            phi.add_incoming(value, loop)
        lane = ir.Constant(ir.VectorType(i64, width), list(range(width)))
        masks = [builder.icmp_signed("<", lane, splat(builder.sub(cols, const(v * width))))
                 for v in range(used)]
        keep = splat(builder.icmp_unsigned("!=", accumulate, ir.Constant(accumulate.type, 0)))
        c_ptr = builder.gep(data(5, c_arr), [c_start])
        for i in range(MR):
            with builder.if_then(builder.icmp_signed("<", const(i), rows)):
                row = builder.gep(c_ptr, [builder.mul(const(i), ldc)])
                for v in range(used):
                    dst = builder.gep(row, [const(v * width)])
                    old = builder.call(masked_load, [dst, align, builder.and_(masks[v], keep), zero])
                    builder.call(masked_store, [builder.fadd(old, sums[i * used + v]), dst, align, masks[v]])
        return context.get_dummy_value()

    return types.none(a_panel, a_start, b_panel, b_start, kc, c, c_start, ldc, rows, cols, accumulate,
                      vectors), codegen


@intrinsic
def _gather_padded(typingctx, src, src_start, step, count, dst, dst_start, width):
    """dst[dst_start + j] = src[src_start + j·step] if j < count else 0, for j < width ≤ NR.

    Vector moves: a masked load where step is 1, a masked gather otherwise."""
    if not isinstance(dst, types.Array) or dst.dtype not in (types.float32, types.float64):
        raise errors.TypingError("_gather_padded needs float32 or float64 arrays")

    def codegen(context, builder, sig, args):
        src_arr, src_start, step, count, dst_arr, dst_start, width = args
        elem = context.get_data_type(sig.args[4].dtype)
        size = context.get_abi_sizeof(elem)
        vec, _, masked_load, masked_store, masked_gather = _vector_ops(context, builder, elem)
        i64, i32 = ir.IntType(64), ir.IntType(32)
        lanes = ir.Constant(ir.VectorType(i64, vec.count), list(range(vec.count)))
        src_ptr = builder.gep(context.make_array(sig.args[0])(context, builder, src_arr).data, [src_start])
        dst_ptr = builder.gep(context.make_array(sig.args[4])(context, builder, dst_arr).data, [dst_start])
        zero = ir.Constant(vec, [ir.Constant(elem, 0.0)] * vec.count)
        align = ir.Constant(i32, size)
        # byte address of src element j = src_ptr + j·step·size, for the lanes j of each vector
        lane_bytes = builder.mul(lanes, _splat(builder, builder.mul(step, ir.Constant(i64, size)), vec.count))
        src_address = _splat(builder, builder.ptrtoint(src_ptr, i64), vec.count)
        for v in range(NR_VECTORS):
            first = ir.Constant(i64, v * vec.count)
            load_mask = builder.icmp_signed("<", lanes, _splat(builder, builder.sub(count, first), vec.count))
            store_mask = builder.icmp_signed("<", lanes, _splat(builder, builder.sub(width, first), vec.count))
            with builder.if_else(builder.icmp_signed("==", step, ir.Constant(i64, 1))) as (unit, strided):
                with unit:
                    loaded = builder.call(masked_load, [builder.gep(src_ptr, [first]), align, load_mask, zero])
                    from_unit = builder.block
                with strided:
                    first_bytes = builder.mul(first, builder.mul(step, ir.Constant(i64, size)))
                    address = builder.add(builder.add(src_address, lane_bytes),
                                          _splat(builder, first_bytes, vec.count))
                    pointers = builder.inttoptr(address, ir.VectorType(ir.PointerType(elem), vec.count))
                    gathered = builder.call(masked_gather, [pointers, align, load_mask, zero])
                    from_strided = builder.block
            x = builder.phi(vec)
            x.add_incoming(loaded, from_unit)
            x.add_incoming(gathered, from_strided)
            builder.call(masked_store, [x, builder.gep(dst_ptr, [first]), align, store_mask])
        return context.get_dummy_value()

    return types.none(src, src_start, step, count, dst, dst_start, width), codegen


@intrinsic
def _transpose_into(typingctx, src, src_start, ld, count, dst, dst_start, dst_step, stored):
    """dst[dst_start + k·dst_step + j] = src[src_start + j·ld + k] if j < count else 0, for k < W, j < stored.

    W is the vector width (16 float32, 8 float64): W rows of W contiguous elements are loaded (rows past
    count are zero), transposed in registers, and stored as W vectors. The transpose swaps one bit of the row
    index with the same bit of the lane index per stage, for the bits d = 1, 2, 4, …: rows a and a + d
    (bit d of a clear) become
        row a:     lane l ← row a lane l       if bit d of l is clear, else row a + d lane l − d
        row a + d: lane l ← row a lane l + d   if bit d of l is clear, else row a + d lane l
    so log2(W) stages of W shuffles each; packing a transposed operand this way beats W-lane gathers."""
    if not isinstance(dst, types.Array) or dst.dtype not in (types.float32, types.float64):
        raise errors.TypingError("_transpose_into needs float32 or float64 arrays")

    def codegen(context, builder, sig, args):
        src_arr, src_start, ld, count, dst_arr, dst_start, dst_step, stored = args
        elem = context.get_data_type(sig.args[4].dtype)
        size = context.get_abi_sizeof(elem)
        vec, _, masked_load, masked_store, _ = _vector_ops(context, builder, elem)
        width = vec.count
        i64, i32 = ir.IntType(64), ir.IntType(32)
        src_ptr = builder.gep(context.make_array(sig.args[0])(context, builder, src_arr).data, [src_start])
        dst_ptr = builder.gep(context.make_array(sig.args[4])(context, builder, dst_arr).data, [dst_start])
        zero = ir.Constant(vec, [ir.Constant(elem, 0.0)] * width)
        align = ir.Constant(i32, size)
        rows = []
        for j in range(width):
            inside = _splat(builder, builder.icmp_signed("<", ir.Constant(i64, j), count), width)
            row = builder.gep(src_ptr, [builder.mul(ir.Constant(i64, j), ld)])
            rows.append(builder.call(masked_load, [row, align, inside, zero]))
        d = 1
        while d < width:
            for a in range(width):
                if a & d:
                    continue
                low = [l if not l & d else width + l - d for l in range(width)]
                high = [l + d if not l & d else width + l for l in range(width)]
                rows[a], rows[a + d] = (
                    builder.shuffle_vector(rows[a], rows[a + d], ir.Constant(ir.VectorType(i32, width), low)),
                    builder.shuffle_vector(rows[a], rows[a + d], ir.Constant(ir.VectorType(i32, width), high)))
            d *= 2
        lanes = ir.Constant(ir.VectorType(i64, width), list(range(width)))
        store_mask = builder.icmp_signed("<", lanes, _splat(builder, stored, width))
        for k in range(width):
            dst = builder.gep(dst_ptr, [builder.mul(ir.Constant(i64, k), dst_step)])
            builder.call(masked_store, [rows[k], dst, align, store_mask])
        return context.get_dummy_value()

    return types.none(src, src_start, ld, count, dst, dst_start, dst_step, stored), codegen


@njit(inline="always")
def _pack_a(base, a, m0, mc, k0, kc, panel):
    """panel[(r·kc + k)·MR + i] = A[m0 + r·MR + i, k0 + k], zero for rows past m0 + mc.

    A[m, k] is base[a[0] + m·a[1] + k·a[2]] (a = offset, row stride, column stride in elements). A
    row-major A (a[2] = 1) goes W columns of k at a time through register transposes (W ≥ MR rows loaded, MR
    stored); the rest, and any other A, column by column."""
    width = VECTOR_BYTES // panel.itemsize
    row_major = a[2] == 1 and a[1] != 1 and width >= MR
    for r in range((mc + MR - 1) // MR):
        rows = min(MR, mc - r * MR)
        k = 0
        if row_major:
            for k in range(0, kc - width + 1, width):
                src = a[0] + (m0 + r * MR) * a[1] + k0 + k
                _transpose_into(base, src, a[1], rows, panel, (r * kc + k) * MR, MR, MR)
            k = kc - kc % width
        for k in range(k, kc):
            src = a[0] + (m0 + r * MR) * a[1] + (k0 + k) * a[2]
            _gather_padded(base, src, a[1], rows, panel, (r * kc + k) * MR, MR)


@njit(inline="always")
def _pack_b(base, b, k0, kc, n0, nc, nr, panel):
    """panel[(c·kc + k)·nr + j] = B[k0 + k, n0 + c·nr + j], zero for columns past n0 + nc.

    B[k, n] is base[b[0] + k·b[1] + n·b[2]]. A transposed B (b[1] = 1) goes W rows of k at a time through
    register transposes, W columns per transpose; the rest, and any other B, row by row."""
    width = VECTOR_BYTES // panel.itemsize
    transposed = b[1] == 1 and b[2] != 1
    for c in range((nc + nr - 1) // nr):
        cols = min(nr, nc - c * nr)
        k = 0
        if transposed:
            for k in range(0, kc - width + 1, width):
                for v in range(0, nr, width):
                    src = b[0] + k0 + k + (n0 + c * nr + v) * b[2]
                    _transpose_into(base, src, b[2], cols - v, panel, (c * kc + k) * nr + v, nr, width)
            k = kc - kc % width
        for k in range(k, kc):
            src = b[0] + (k0 + k) * b[1] + (n0 + c * nr) * b[2]
            _gather_padded(base, src, b[2], cols, panel, (c * kc + k) * nr, nr)


@njit(inline="always")
def _block_product(a_panel, b_panel, kc, nr, out, o, m0, mc, n0, nc, accumulate):
    """out[o, m0:m0+mc, n0:n0+nc] (+)= packed A block @ packed B block, one register tile at a time."""
    m_size, n_size = out.shape[1], out.shape[2]
    for r in range((mc + MR - 1) // MR):  # an A micro-panel stays in L1 while the B block streams past it
        rows = min(MR, mc - r * MR)
        for c in range((nc + nr - 1) // nr):
            cols = min(nr, nc - c * nr)
            # out[o, m, n] is element (o·M + m)·N + n of the C-contiguous out
            start = (o * m_size + m0 + r * MR) * n_size + n0 + c * nr
            if cols * NR_VECTORS > nr:
                _tile_update(a_panel, r * kc * MR, b_panel, c * kc * nr, kc, out, start, n_size, rows, cols,
                             accumulate, NR_VECTORS)
            else:  # a thin last panel: one vector wide
                _tile_update(a_panel, r * kc * MR, b_panel, c * kc * nr, kc, out, start, n_size, rows, cols,
                             accumulate, 1)


@njit(inline="always")
def _task(a_base, a, b_base, b, out, o, batch, m_lo, m_hi, n_lo, n_hi, k_size, accumulate, work, a_all, m_pad):
    """out[o][m_lo:m_hi, n_lo:n_hi] (+)= Σ over batch indices i ≡ o (mod Bo) of the i-th product.

    A non-empty a_all holds the one (broadcast) A packed whole: the block at (k0, m0) starts at
    k0·m_pad + m0·kc (`_pack_whole_a`)."""
    a_ba, b_bb, bo = a[4], b[4], out.shape[0]
    nr = NR_VECTORS * VECTOR_BYTES // out.itemsize
    a_panel = work[:MC * KC]
    b_panel = work[MC * KC:]
    a_packed = b_packed = (-1, -1, -1)  # (offset, k0, m0 or n0) of the block each panel holds
    for i in range(o, batch, bo):
        # the i-th product reads A at offset a[0] + (i mod Ba)·(batch stride a[3]); B likewise
        a_i = (a[0] + (i % a_ba) * a[3], a[1], a[2])
        b_i = (b[0] + (i % b_bb) * b[3], b[1], b[2])
        for k0 in range(0, k_size, KC):
            kc = min(KC, k_size - k0)
            add = accumulate or i != o or k0 > 0
            for n0 in range(n_lo, n_hi, NC):
                nc = min(NC, n_hi - n0)
                if b_packed != (b_i[0], k0, n0):  # a broadcast B is packed once for all products
                    _pack_b(b_base, b_i, k0, kc, n0, nc, nr, b_panel)
                    b_packed = (b_i[0], k0, n0)
                for m0 in range(m_lo, m_hi, MC):
                    mc = min(MC, m_hi - m0)
                    if a_all.size:
                        a_panel = a_all[k0 * m_pad + m0 * kc:]
                    elif a_packed != (a_i[0], k0, m0):
                        _pack_a(a_base, a_i, m0, mc, k0, kc, a_panel)
                        a_packed = (a_i[0], k0, m0)
                    _block_product(a_panel, b_panel, kc, nr, out, o, m0, mc, n0, nc, add)


@njit(inline="always")
def _split(extent, step, parts, s):
    """Start of the s-th of `parts` near-equal pieces of range(extent), cut at multiples of step."""
    tiles = (extent + step - 1) // step
    return min(extent, (tiles * s // parts) * step)


@njit(inline="always")
def _pack_whole_a(a_base, a, m_size, k_size, a_all):
    """Pack the first A whole, MC rows × KC columns per parallel piece, in the layout of `_pack_a`'s panels
    for all rows at once: the block of k columns from k0 (kc of them) holds m_pad·kc elements from k0·m_pad."""
    m_pad = (m_size + MR - 1) // MR * MR
    row_blocks = (m_size + MC - 1) // MC
    for t in prange(row_blocks * ((k_size + KC - 1) // KC)):
        m0, k0 = (t % row_blocks) * MC, (t // row_blocks) * KC
        kc = min(KC, k_size - k0)
        _pack_a(a_base, (a[0], a[1], a[2]), m0, min(MC, m_size - m0), k0, kc, a_all[k0 * m_pad + m0 * kc:])


@njit(parallel=True, cache=True)
def _gemm_kernel(a_base, a, b_base, b, out, batch, k_size, accumulate, splits, split_rows, work, a_all):
    """Run the Bo·splits tasks (output matrix o, piece s of its rows or columns) on len(work) workers.

    a, b = (offset, row stride, column stride, batch stride, batch size) of each operand in its base.
    A non-empty a_all (room for the one A of a broadcast, packed) has it packed once for all tasks."""
    m_size, n_size = out.shape[1], out.shape[2]
    nr = NR_VECTORS * VECTOR_BYTES // out.itemsize
    tasks = out.shape[0] * splits
    workers = work.shape[0]
    m_pad = (m_size + MR - 1) // MR * MR
    if a_all.size:
        _pack_whole_a(a_base, a, m_size, k_size, a_all)
    for w in prange(workers):
        for t in range(tasks * w // workers, tasks * (w + 1) // workers):
            o, s = divmod(t, splits)
            m_lo, m_hi, n_lo, n_hi = 0, m_size, 0, n_size
            if split_rows:
                m_lo, m_hi = _split(m_size, MR, splits, s), _split(m_size, MR, splits, s + 1)
            else:
                n_lo, n_hi = _split(n_size, nr, splits, s), _split(n_size, nr, splits, s + 1)
            _task(a_base, a, b_base, b, out, o, batch, m_lo, m_hi, n_lo, n_hi, k_size, accumulate, work[w], a_all,
                  m_pad)


def _flat(name, x, batch):
    """(base, layout) with x[i, m, k] == base[layout[0] + i·layout[3] + m·layout[1] + k·layout[2]].

    base is a read-only 1-D view from x's lowest to its highest element; layout[4] = batch."""
    itemsize = x.itemsize
    if any(s % itemsize for s in x.strides):
        raise ValueError(f"gemm: {name} {x.shape} has strides {x.strides}, not multiples of its item size")
    strides = [s // itemsize for s in x.strides]
    if x.flags.c_contiguous:  # the common case, and a cheap one: a flat view
        base = x.reshape(-1)
        base.flags.writeable = False
        return base, (0, strides[1], strides[2], strides[0], batch)
    # the element at the lowest address has index n-1 along every axis with a negative stride
    offset = sum((n - 1) * -s for n, s in zip(x.shape, strides) if s < 0)
    lowest = x[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in strides)]
    span = 1 + sum((n - 1) * abs(s) for n, s in zip(x.shape, strides))
    base = as_strided(lowest, shape=(span,), strides=(itemsize,), writeable=False)
    return base, (offset, strides[1], strides[2], strides[0], batch)


_workspaces = {}
_packed_as = {}


def _workspace(dtype, workers):
    """Per-worker packing buffers (A block, B block), 64-byte aligned, kept across calls of this thread."""
    key = (np.dtype(dtype), workers, threading.get_ident())
    if key not in _workspaces:
        itemsize = key[0].itemsize
        row = MC * KC + KC * NC
        row += -row % (ALIGN // itemsize)
        raw = np.empty(workers * row + ALIGN // itemsize, key[0])
        start = (-raw.ctypes.data % ALIGN) // itemsize
        _workspaces[key] = raw[start:start + workers * row].reshape(workers, row)
    return _workspaces[key]


def _packed_a(dtype, m, k):
    """Room for a whole packed A (m rows padded to MR, k columns), 64-byte aligned, kept for this thread."""
    key = (np.dtype(dtype), threading.get_ident())
    size = (m + MR - 1) // MR * MR * k
    if key not in _packed_as or _packed_as[key].size < size:
        raw = np.empty(size + ALIGN // key[0].itemsize, key[0])
        start = (-raw.ctypes.data % ALIGN) // key[0].itemsize
        _packed_as[key] = raw[start:start + size]
    return _packed_as[key][:size]


def gemm(a, b, out, accumulate=False):
    """out[i % Bo] (+)= a[i % Ba] @ b[i % Bb] for i < max(Ba, Bb, Bo), summed over i; returns out.

    a (Ba, M, K) and b (Bb, K, N) may be any strided views; out (Bo, M, N) is C-contiguous and must not
    overlap them. accumulate=False overwrites out with the sum, accumulate=True adds the sum to out."""
    check_gemm_operands(np.ndarray, a, b, out)
    (ba, m, k), (bb, _, n), bo = a.shape, b.shape, out.shape[0]
    batch = max(ba, bb, bo)
    if m == 0 or n == 0:
        return out
    if k == 0:
        if not accumulate:
            out.fill(0)
        return out
    a_base, a_layout = _flat("a", a, ba)
    b_base, b_layout = _flat("b", b, bb)
    threads = numba.get_num_threads()
    workers = 1 if 2 * batch * m * n * k < SERIAL_FLOPS else threads
    work = _workspace(a.dtype, workers)
    nr = NR_VECTORS * VECTOR_BYTES // a.itemsize
    split_rows = -(-m // MR) > -(-n // nr)
    tiles = -(-m // MR) if split_rows else -(-n // nr)
    splits = min(tiles, workers // math.gcd(bo, workers))
    # a broadcast A of more than one block would be packed again for every product: pack it once instead
    whole_a = ba == 1 and batch > 1 and (m > MC or k > KC)
    a_all = _packed_a(a.dtype, m, k) if whole_a else np.empty(0, a.dtype)
    numba.set_num_threads(workers)  # one worker runs on the calling thread and wakes no other
    try:
        _gemm_kernel(a_base, a_layout, b_base, b_layout, out, batch, k, bool(accumulate), splits, split_rows, work,
                     a_all)
    finally:
        numba.set_num_threads(threads)
    return out
