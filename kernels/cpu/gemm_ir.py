"""The GEMM core's code in LLVM IR: the register-tile micro-kernel and the vector moves that pack its panels.
The direct convolution's tile (`window_tile`) and the depthwise kernels' row moves (`gather_padded`,
`copy_run`) live here too, beside the helpers they share.

Each is a Numba `@intrinsic`, so it inlines into the Numba loops of `gemm` and runs on the registers of the
target Numba compiles for (`ninx_kernels.target`). The tile is MR rows × NR_VECTORS vectors: its MR·NR_VECTORS
accumulators stay in registers for a whole k loop, beside the NR_VECTORS vectors of B and the broadcast A
element they are updated with. We give the accumulators three quarters of the register file, which leaves
room for those and for a product register where the target has no FMA:
  32 registers (AVX-512 zmm, AArch64):  8 × 3 vectors (OpenBLAS's Skylake-X and BLIS's Zen 4 dgemm: 8 × 24)
  16 registers (AVX2 ymm, SSE xmm):     6 × 2 vectors (BLIS's Haswell/Zen kernel: 6 × 16 float32)
The width of a vector is the target's, so a float32 tile is 8×48 on AVX-512, 6×16 on AVX2, 6×8 on SSE.

Products use llvm.fmuladd: one FMA instruction where the target has FMA, a multiply and an add where not
(llvm.fma there would become a call to fmaf per lane).

Numba's on-disk cache checks only the file of a cached function (`gemm`'s kernel), not this one; after
editing this file, delete kernels/cpu/__pycache__ so that the kernel is compiled again.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils, errors
from numba.extending import intrinsic, overload

from ..target import current



def register_tile(target):
    """(MR rows, NR_VECTORS vectors) of the register tile for `target`: accumulators take 3/4 of its registers,
    in 3 vectors where that leaves at least 8 rows, else in 2. A k step loads the tile's B vectors and
    broadcasts one A element a row: 8 × 3 makes 11 loads for 24 FMAs where 12 × 2 made 14, and on the 2-core
    Ice Lake-SP its micro-kernel ran 1.15–1.20× faster in float64, 1.06–1.08× in float32 (B in L1 or L2).
    16 registers keep BLIS's Haswell shape, 6 × 2 (3 vectors would leave 4 rows)."""
    accumulators = 3 * target.vector_registers // 4
    vectors = 3 if accumulators // 3 >= 8 else 2
    return accumulators // vectors, vectors


TARGET = current()
VECTOR_BYTES = TARGET.vector_bytes
PREFETCH_TAIL = 48  # k steps before the end of its k loop at which the micro-kernel asks for its tile of c
PREFETCH_AHEAD = 8  # rows of B ahead of the one in use that the micro-kernel asks for (see tile_update)
LINE_BYTES = 64  # a cache line on x86 and most ARM cores; where lines are 128 bytes, every other prefetch is redundant
MR, NR_VECTORS = register_tile(TARGET)  # rows, and columns in vectors, of the register tile
# AVX-512 masks a vector move for free; elsewhere a whole vector moves with a plain load or store, since
# AVX2's vmaskmov is slow on AMD (packing a 1024² B for the haswell target on Zen 4: 0.95 -> 0.79 ms, the
# NiN's 1x1 192@13² B 10.1 -> 3.6 ms; on AVX-512 the test for whole vectors cost 15-25%)
MASK_REGISTERS = VECTOR_BYTES >= 64


def lanes(array):
    """Elements of array's dtype in one target vector, in jitted code a compile-time constant (an array's
    itemsize is read at run time there, and dividing by it cost tiny products a division at each use)."""
    return VECTOR_BYTES // array.itemsize


@overload(lanes, inline="always")
def _lanes(array):
    count = VECTOR_BYTES // (array.dtype.bitwidth // 8)
    return lambda array: count


def tile_columns(itemsize):
    """Columns of the register tile for elements of `itemsize` bytes."""
    return NR_VECTORS * VECTOR_BYTES // itemsize


def _vector_ops(context, builder, elem, width=None):
    """(vector type, fmuladd, masked_load, masked_store, masked_gather) for one target vector of elem, or for
    a vector of `width` elements."""
    width = width or VECTOR_BYTES // context.get_abi_sizeof(elem)
    vec = ir.VectorType(elem, width)
    mask = ir.VectorType(ir.IntType(1), width)
    name = f"v{width}f{8 * context.get_abi_sizeof(elem)}"
    ptr, i32 = ir.PointerType(elem), ir.IntType(32)

    def declare(intrinsic, result, *args):
        return cgutils.get_or_insert_function(builder.module, ir.FunctionType(result, args), intrinsic)
    return (vec,
            declare(f"llvm.fmuladd.{name}", vec, vec, vec, vec),
            declare(f"llvm.masked.load.{name}.p0", vec, ptr, i32, mask, vec),
            declare(f"llvm.masked.store.{name}.p0", ir.VoidType(), vec, ptr, i32, mask),
            declare(f"llvm.masked.gather.{name}.v{width}p0", vec, ir.VectorType(ptr, width), i32, mask, vec))


def _shifted_and_clamped(builder, value, shift, low, cap):
    """value + shift, then ≤ low → low and > cap → cap (vectors alike; NaN passes both): the convolution's
    bias and ReLU/ReLU6 in a tile's write-back."""
    value = builder.fadd(value, shift)
    value = builder.select(builder.fcmp_ordered(">", value, cap), cap, value)
    return builder.select(builder.fcmp_ordered("<=", value, low), low, value)


def _once_a_tile(builder, flag, write_back):
    """write_back(True) where the i1-or-wider `flag` is set, else write_back(False): the finish flag is tested
    once a tile, not once a stored vector, by emitting the write-back twice (a branch per stored vector cost
    the haswell target's short-k 1x1 tiles up to 20% with no epilogue asked for)."""
    with builder.if_else(builder.icmp_unsigned("!=", flag, ir.Constant(flag.type, 0))) as (finishing, ongoing):
        with finishing:
            write_back(True)
        with ongoing:
            write_back(False)


def _splat(builder, value, n):
    """<n x value>: value in every lane."""
    lanes = builder.insert_element(ir.Constant(ir.VectorType(value.type, n), None), value,
                                   ir.Constant(ir.IntType(64), 0))
    return builder.shuffle_vector(lanes, lanes, ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n))


def _whole(builder, count, first, lanes):
    """Whether elements first … first + lanes − 1 all lie below count (i64 values)."""
    return builder.icmp_signed(">=", builder.sub(count, first), ir.Constant(count.type, lanes))


def _either_values(builder, condition, then, otherwise):
    """then() where condition holds, else otherwise(): each builds a list of values in a branch of its own;
    the values that were built."""
    with builder.if_else(condition) as (yes, no):
        with yes:
            first = then()
            from_yes = builder.block
        with no:
            second = otherwise()
            from_no = builder.block
    values = []
    for a, b in zip(first, second):
        values.append(builder.phi(a.type))
        values[-1].add_incoming(a, from_yes)
        values[-1].add_incoming(b, from_no)
    return values


def _either(builder, condition, then, otherwise):
    """then() where condition holds, else otherwise(): each builds its value in a branch of its own; the
    value that was built."""
    return _either_values(builder, condition, lambda: [then()], lambda: [otherwise()])[0]


def _lane_pointers(builder, pointer, offsets, elem, size):
    """The vector of pointers pointer + offsets[l] (i64 offsets in elements of `size` bytes), for a gather."""
    i64 = ir.IntType(64)
    count = offsets.type.count
    address = builder.add(_splat(builder, builder.ptrtoint(pointer, i64), count),
                          builder.mul(offsets, _splat(builder, ir.Constant(i64, size), count)))
    return builder.inttoptr(address, ir.VectorType(ir.PointerType(elem), count))


def _counted_loop(builder, count, initial, body, name):
    """Run `body(index, values) -> new values` for index = 0 … count − 1 with the values carried in
    registers from `initial` (phi nodes); return their last values (`initial` when count ≤ 0), the builder
    placed after the loop."""
    i64 = ir.IntType(64)
    entry = builder.block
    loop = builder.append_basic_block(f"{name}_loop")
    done = builder.append_basic_block(f"{name}_done")
    builder.cbranch(builder.icmp_signed(">", count, ir.Constant(i64, 0)), loop, done)
    builder.position_at_end(loop)
    index = builder.phi(i64)
    values = [builder.phi(value.type) for value in initial]
    new = body(index, values)
    following = builder.add(index, ir.Constant(i64, 1))
    tail = builder.block  # the body may have added blocks of its own
    builder.cbranch(builder.icmp_signed("<", following, count), loop, done)
    index.add_incoming(ir.Constant(i64, 0), entry)
    index.add_incoming(following, tail)
    builder.position_at_end(done)
    finals = [builder.phi(value.type) for value in initial]
    for phi, final, start, value in zip(values, finals, initial, new):
        for node in (phi, final):
            node.add_incoming(start, entry)
            node.add_incoming(value, tail)
    return finals


def _check_float_array(name, array):
    if not isinstance(array, types.Array) or array.dtype not in (types.float32, types.float64):
        raise errors.TypingError(f"{name} needs float32 or float64 arrays")


@intrinsic
def tile_update(typingctx, a_panel, a_start, b_panel, b_source, from_source, b_start, ldb, b_ahead, kc, c, c_start,
                ldc, rows, cols, accumulate, finish, shift, shift_start, low, cap, vectors):
    """c[c_start + i·ldc + j] (+)= Σ_{k<kc} a_panel[a_start + k·MR + i] · B[b_start + k·ldb + j], B being
    b_source where from_source is true (a row-major B read in place), else b_panel (packed, ldb = NR); where
    `finish` (the tile's last update), then + shift[shift_start + i] and clamped to [low, cap] — the
    convolution's bias and ReLU in the write-back (NaN passes). While it reads B's row k, the tile asks for
    the lines at B[b_start + k·ldb + b_ahead + j] (the caller's choice: rows further down, or the next panel).

    For i < rows ≤ MR, j < cols ≤ vectors·(vector width); the sums stay in MR·vectors registers for the
    whole k loop. `vectors` (a literal, 1 … NR_VECTORS) narrows the tile for a last, thin panel."""
    _check_float_array("tile_update", c)
    if not isinstance(vectors, types.IntegerLiteral):
        raise errors.RequireLiteralValue(vectors)
    used = vectors.literal_value

    def codegen(context, builder, sig, args):
        (a_arr, a_start, b_arr, b_src, from_source, b_start, ldb, b_ahead, kc, c_arr, c_start, ldc, rows, cols,
         accumulate, finish, shift_arr, shift_start, low, cap, _) = args
        elem = context.get_data_type(sig.args[9].dtype)
        size = context.get_abi_sizeof(elem)
        vec, fmuladd, masked_load, masked_store, _ = _vector_ops(context, builder, elem)
        width = vec.count
        i64, i32 = ir.IntType(64), ir.IntType(32)

        def const(n):
            return ir.Constant(i64, n)

        def data(position, value):
            return context.make_array(sig.args[position])(context, builder, value).data

        def splat(value):
            return _splat(builder, value, width)

        a_ptr = builder.gep(data(0, a_arr), [a_start])
        in_place = builder.icmp_unsigned("!=", from_source, ir.Constant(from_source.type, 0))
        b_ptr = builder.select(in_place, builder.gep(data(3, b_src), [b_start]), builder.gep(data(2, b_arr), [b_start]))
        zero = ir.Constant(vec, [ir.Constant(elem, 0.0)] * width)
        align = ir.Constant(i32, size)
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ir.PointerType(ir.IntType(8)), i32, i32, i32]),
            "llvm.prefetch.p0")
        c_first = builder.gep(data(9, c_arr), [c_start])

        def ask_for_c():
            # the tile's rows of c, swept once a depth block and so in L3 or memory, are asked for while the
            # last PREFETCH_TAIL k steps run: the write-back then finds them in L1 (asked for at the start of
            # the loop, they were pushed out again by the B streaming past); a prefetch never faults, so rows
            # past `rows` may be asked for
            for i in range(MR):
                row = builder.gep(c_first, [builder.mul(const(i), ldc)])
                for at in (0, used * width - 1):
                    address = builder.bitcast(builder.gep(row, [const(at)]), ir.PointerType(ir.IntType(8)))
                    builder.call(prefetch, [address, ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])

        # lanes j < cols of each of the tile's vectors: those written back, and those of a B read in place
        lane = ir.Constant(ir.VectorType(i64, width), list(range(width)))
        masks = [builder.icmp_signed("<", lane, splat(builder.sub(cols, const(v * width))))
                 for v in range(used)]

        # B streams past the tile from L2 while the A micro-panel is reused from L1; its lines b_ahead further on
        # are asked for a step early, one prefetch a cache line, as BLIS and OpenBLAS do (PREFETCH_AHEAD rows
        # down, Ice Lake-SP 2048² float32: 0.97-0.99 -> 1.02-1.05 of OpenBLAS); a prefetch never faults, so
        # rows past kc and columns past B's may be asked for
        def ask_ahead(b_row):
            later = builder.gep(b_row, [b_ahead])
            for at in range(0, used * width, max(1, LINE_BYTES // size)):
                address = builder.bitcast(builder.gep(later, [const(at)]), ir.PointerType(ir.IntType(8)))
                builder.call(prefetch, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])

        # the k loop: acc[i·used + v] += a[k, i] · b[k, v·width : (v+1)·width]
        def k_loop(masked):
            def k_step(k, acc):
                b_row = builder.gep(b_ptr, [builder.mul(k, ldb)])
                if not masked:  # a masked B is a tiny product's, read in place and short
                    ask_ahead(b_row)
                b_vecs = [builder.call(masked_load, [builder.gep(b_row, [const(v * width)]), align, masks[v], zero])
                          if masked else builder.load(builder.gep(b_row, [const(v * width)]), typ=vec, align=size)
                          for v in range(used)]
                a_col = builder.gep(a_ptr, [builder.mul(k, const(MR))])
                new = []
                for i in range(MR):
                    a_i = splat(builder.load(builder.gep(a_col, [const(i)]), typ=elem))
                    new += [builder.call(fmuladd, [a_i, b_vecs[v], acc[i * used + v]]) for v in range(used)]
                return new
            if masked:
                return _counted_loop(builder, kc, [zero] * (MR * used), k_step, "tile_k")
            long_loop = builder.icmp_signed(">", kc, const(PREFETCH_TAIL))
            head = builder.select(long_loop, builder.sub(kc, const(PREFETCH_TAIL)), const(0))
            acc = _counted_loop(builder, head, [zero] * (MR * used), k_step, "tile_k")
            with builder.if_then(long_loop):
                ask_for_c()
            return _counted_loop(builder, builder.sub(kc, head), acc, lambda k, acc: k_step(builder.add(k, head), acc),
                                 "tile_tail")

        # a B read in place past its last column (a tiny product's, narrower than the tile) loads only its
        # columns: the lanes past them lie beyond B's row, perhaps beyond its memory
        partial = builder.and_(in_place, builder.icmp_signed("<", cols, const(used * width)))
        sums = _either_values(builder, partial, lambda: k_loop(True), lambda: k_loop(False))

        # write back rows i < rows; lanes past cols are masked off, old values read only if accumulating
        c_ptr = builder.gep(data(9, c_arr), [c_start])
        shift_ptr = builder.gep(data(16, shift_arr), [shift_start])
        low_vec, cap_vec = splat(low), splat(cap)

        def finished(value, i, epilogue):
            # value + shift[i], then ≤ low → low and > cap → cap, in the copy of the write-back that finishes
            if not epilogue:
                return value
            return _shifted_and_clamped(builder, value, splat(builder.load(builder.gep(shift_ptr, [const(i)]))),
                                        low_vec, cap_vec)

        # a tile of whole vectors (most of them) is written with plain moves: AVX2's masked ones (vmaskmov)
        # are slow on AMD cores; the last, partial tiles keep the masks
        whole = builder.icmp_signed(">=", cols, const(used * width))
        adding = builder.icmp_unsigned("!=", accumulate, ir.Constant(accumulate.type, 0))

        def write_back(epilogue):
            with builder.if_else(whole) as (plain, masked):
                with plain:
                    for i in range(MR):
                        with builder.if_then(builder.icmp_signed("<", const(i), rows)):
                            row = builder.gep(c_ptr, [builder.mul(const(i), ldc)])
                            for v in range(used):
                                dst = builder.bitcast(builder.gep(row, [const(v * width)]), ir.PointerType(vec))
                                total = sums[i * used + v]
                                with builder.if_then(adding):
                                    builder.store(finished(builder.fadd(builder.load(dst, align=size), total), i,
                                                           epilogue), dst, align=size)
                                with builder.if_then(builder.not_(adding)):
                                    builder.store(finished(total, i, epilogue), dst, align=size)
                with masked:
                    # old values are loaded only when adding: a masked load overlapping the masked store of
                    # the row before (a narrow tile's rows lie closer than a vector) waits for that store
                    for add in (True, False):
                        with builder.if_then(adding if add else builder.not_(adding)):
                            for i in range(MR):
                                with builder.if_then(builder.icmp_signed("<", const(i), rows)):
                                    row = builder.gep(c_ptr, [builder.mul(const(i), ldc)])
                                    for v in range(used):
                                        dst = builder.gep(row, [const(v * width)])
                                        total = sums[i * used + v]
                                        if add:
                                            total = builder.fadd(builder.call(masked_load, [dst, align, masks[v],
                                                                                            zero]), total)
                                        builder.call(masked_store, [finished(total, i, epilogue), dst, align,
                                                                    masks[v]])

        _once_a_tile(builder, finish, write_back)
        return context.get_dummy_value()

    return types.none(a_panel, a_start, b_panel, b_source, from_source, b_start, ldb, b_ahead, kc, c, c_start, ldc,
                      rows, cols, accumulate, finish, shift, shift_start, low, cap, vectors), codegen


@intrinsic
def window_tile(typingctx, a, a_start, a_table, lda, b, b_start, ldb, steps, c, c_start, ldr, ldc, rows, cols,
                accumulate, finish, shift, shift_start, low, cap, tile_rows, tile_cols, vectors):
    """c[c_start + r·ldr + i·ldc + j] (+)= Σ_{s<steps} a[a_start + a_table[s] + r·lda + i] ·
    b[b_start + s·ldb + j] for r < tile_rows, i < tile_cols, j < vectors·(vector width), stored where
    r < rows and i < cols; where `finish` (the tile's last update), then + shift[shift_start + j] and clamped
    to [low, cap] — the forward's bias and ReLU in the write-back, as in `tile_update` (NaN passes).

    The direct convolution's register tile (`direct.py`): its broadcast operand is read in place, R rows
    of KW consecutive elements at a step's offset from a table (output pixels for the forward, taps for the
    weight gradient), each element broadcast once for its `vectors` FMAs; B is a row of vectors (packed
    weights, or the transposed output gradient). tile_rows, tile_cols and vectors are literals. (Loading
    the element again for each FMA, so that it folds into them as an AVX-512 embedded broadcast, was
    slower: 180 against 202 GFLOP/s on one Zen 5 core.)"""
    _check_float_array("window_tile", c)
    for literal in (tile_rows, tile_cols, vectors):
        if not isinstance(literal, types.IntegerLiteral):
            raise errors.RequireLiteralValue(literal)
    r_count, i_count, used = tile_rows.literal_value, tile_cols.literal_value, vectors.literal_value

    def codegen(context, builder, sig, args):
        (a_arr, a_start, table_arr, lda, b_arr, b_start, ldb, steps, c_arr, c_start, ldr, ldc, rows, cols,
         accumulate, finish, shift_arr, shift_start, low, cap) = args[:20]
        elem = context.get_data_type(sig.args[8].dtype)
        size = context.get_abi_sizeof(elem)
        vec, fmuladd, _, _, _ = _vector_ops(context, builder, elem)
        width = vec.count
        i64 = ir.IntType(64)

        def const(n):
            return ir.Constant(i64, n)

        def data(position, value):
            return context.make_array(sig.args[position])(context, builder, value).data

        a_ptr = builder.gep(data(0, a_arr), [a_start])
        table = data(2, table_arr)
        b_ptr = builder.gep(data(4, b_arr), [b_start])
        row_steps = [builder.mul(const(r), lda) for r in range(r_count)]
        zero = ir.Constant(vec, [ir.Constant(elem, 0.0)] * width)

        # the step loop: acc[(r·KW + i)·used + v] += a[table[s] + r·lda + i] · b[s, v·width : (v+1)·width]
        def step(s, acc):
            b_row = builder.gep(b_ptr, [builder.mul(s, ldb)])
            b_vecs = [builder.load(builder.gep(b_row, [const(v * width)]), typ=vec, align=size)
                      for v in range(used)]
            at = builder.gep(a_ptr, [builder.load(builder.gep(table, [s]))])
            new = []
            for r in range(r_count):
                row = builder.gep(at, [row_steps[r]])
                for i in range(i_count):
                    a_ri = _splat(builder, builder.load(builder.gep(row, [const(i)]), typ=elem), width)
                    new += [builder.call(fmuladd, [a_ri, b_vecs[v], acc[(r * i_count + i) * used + v]])
                            for v in range(used)]
            return new

        sums = _counted_loop(builder, steps, [zero] * (r_count * i_count * used), step, "window")
        c_ptr = builder.gep(data(8, c_arr), [c_start])
        adding = builder.icmp_unsigned("!=", accumulate, ir.Constant(accumulate.type, 0))
        shift_ptr = builder.gep(data(16, shift_arr), [shift_start])

        def write_back(epilogue):
            if epilogue:  # the shift of channel j, in lane j of its vector
                shifts = [builder.load(builder.bitcast(builder.gep(shift_ptr, [const(v * width)]),
                                                       ir.PointerType(vec)), align=size) for v in range(used)]
                low_vec, cap_vec = _splat(builder, low, width), _splat(builder, cap, width)
            for r in range(r_count):
                for i in range(i_count):
                    inside = builder.and_(builder.icmp_signed("<", const(r), rows),
                                          builder.icmp_signed("<", const(i), cols))
                    with builder.if_then(inside):
                        start = builder.add(builder.mul(const(r), ldr), builder.mul(const(i), ldc))
                        for v in range(used):
                            dst = builder.bitcast(builder.gep(c_ptr, [builder.add(start, const(v * width))]),
                                                  ir.PointerType(vec))
                            total = sums[(r * i_count + i) * used + v]
                            def store(value):
                                if epilogue:
                                    value = _shifted_and_clamped(builder, value, shifts[v], low_vec, cap_vec)
                                builder.store(value, dst, align=size)

                            with builder.if_else(adding) as (add, overwrite):
                                with add:
                                    store(builder.fadd(builder.load(dst, align=size), total))
                                with overwrite:
                                    store(total)

        _once_a_tile(builder, finish, write_back)
        return context.get_dummy_value()

    return types.none(a, a_start, a_table, lda, b, b_start, ldb, steps, c, c_start, ldr, ldc, rows, cols,
                      accumulate, finish, shift, shift_start, low, cap, tile_rows, tile_cols, vectors), codegen


@intrinsic
def gather_padded(typingctx, src, src_start, step, count, dst, dst_start, width):
    """dst[dst_start + j] = src[src_start + j·step] if j < count else 0, for j < width ≤ max(MR, NR).

    Vector moves: a masked load where step is 1; where it is 2 (a stride-2 depthwise convolution's outputs,
    taken from its stride-1 grid), two masked loads of the span and a shuffle of their even lanes, a third
    of a gather's time; a masked gather otherwise."""
    _check_float_array("gather_padded", dst)

    def codegen(context, builder, sig, args):
        src_arr, src_start, step, count, dst_arr, dst_start, width = args
        elem = context.get_data_type(sig.args[4].dtype)
        size = context.get_abi_sizeof(elem)
        vec, _, masked_load, masked_store, masked_gather = _vector_ops(context, builder, elem)
        lanes_n = vec.count
        i64, i32 = ir.IntType(64), ir.IntType(32)
        lanes = ir.Constant(ir.VectorType(i64, lanes_n), list(range(lanes_n)))
        src_ptr = builder.gep(context.make_array(sig.args[0])(context, builder, src_arr).data, [src_start])
        dst_ptr = builder.gep(context.make_array(sig.args[4])(context, builder, dst_arr).data, [dst_start])
        zero = ir.Constant(vec, [ir.Constant(elem, 0.0)] * lanes_n)
        align = ir.Constant(i32, size)
        offsets = builder.mul(lanes, _splat(builder, step, lanes_n))  # src element j at src_ptr + j·step
        def one_vector(v):  # lanes v·L … v·L + L − 1 of the run
            first = ir.Constant(i64, v * lanes_n)
            load_mask = builder.icmp_signed("<", lanes, _splat(builder, builder.sub(count, first), lanes_n))
            store_mask = builder.icmp_signed("<", lanes, _splat(builder, builder.sub(width, first), lanes_n))
            source, target = builder.gep(src_ptr, [first]), builder.gep(dst_ptr, [first])

            def contiguous():
                if MASK_REGISTERS:
                    return builder.call(masked_load, [source, align, load_mask, zero])
                return _either(builder, _whole(builder, count, first, lanes_n),
                               lambda: builder.load(builder.bitcast(source, vec.as_pointer()), align=size),
                               lambda: builder.call(masked_load, [source, align, load_mask, zero]))
            def every_other():  # src elements 2·first … 2·first + 2·lanes − 2, no further than the last wanted
                span = builder.gep(src_ptr, [builder.mul(first, ir.Constant(i64, 2))])
                wanted = builder.sub(builder.mul(builder.sub(count, first), ir.Constant(i64, 2)), ir.Constant(i64, 1))
                halves = [builder.call(masked_load, [builder.gep(span, [ir.Constant(i64, h * lanes_n)]), align,
                                                     builder.icmp_signed("<", lanes, _splat(builder, builder.sub(
                                                         wanted, ir.Constant(i64, h * lanes_n)), lanes_n)), zero])
                          for h in (0, 1)]
                return builder.shuffle_vector(*halves, ir.Constant(ir.VectorType(i32, lanes_n),
                                                                   list(range(0, 2 * lanes_n, 2))))

            def strided():
                return _either(builder, builder.icmp_signed("==", step, ir.Constant(i64, 2)), every_other,
                               lambda: builder.call(masked_gather, [
                                   _lane_pointers(builder, builder.gep(src_ptr, [builder.mul(first, step)]), offsets,
                                                  elem, size), align, load_mask, zero]))
            x = _either(builder, builder.icmp_signed("==", step, ir.Constant(i64, 1)), contiguous, strided)
            if MASK_REGISTERS:
                builder.call(masked_store, [x, target, align, store_mask])
                return
            with builder.if_else(_whole(builder, width, first, lanes_n)) as (whole, part):
                with whole:
                    builder.store(x, builder.bitcast(target, vec.as_pointer()), align=size)
                with part:
                    builder.call(masked_store, [x, target, align, store_mask])

        # enough vectors for a B row (NR) or an A column (MR, more than NR lanes on narrow float64 targets), of
        # which only those that store something run: a float32 A column of 12 needs one of two, a 7×7 plane's row
        for v in range(-(-max(MR, NR_VECTORS * lanes_n) // lanes_n)):
            if v == 0:
                one_vector(v)
                continue
            with builder.if_then(builder.icmp_signed(">", width, ir.Constant(i64, v * lanes_n)), likely=True):
                one_vector(v)
        return context.get_dummy_value()

    return types.none(src, src_start, step, count, dst, dst_start, width), codegen


@intrinsic
def copy_run(typingctx, src, src_start, count, dst, dst_start):
    """dst[dst_start + j] = src[src_start + j] for j < count, with plain vector moves only: whole vectors,
    then the rest as one whole vector ending at count, or, in a run shorter than a vector, as two moves of
    the widest power-of-two part of a vector that fits, overlapping (memcpy's trick for short copies). A
    depthwise plane's rows go in and out of its frames this way: with masked moves (AVX2's vmaskmov on the
    Zen 3) 7×7 planes spent 3/4 of the layer's time in the copies. count ≥ 0; the two runs must not overlap."""
    _check_float_array("copy_run", dst)
    if not isinstance(src, types.Array) or src.dtype != dst.dtype:
        raise errors.TypingError("copy_run copies between arrays of one dtype")

    def codegen(context, builder, sig, args):
        src_arr, src_start, count, dst_arr, dst_start = args
        elem = context.get_data_type(sig.args[3].dtype)
        size = context.get_abi_sizeof(elem)
        lanes_n = VECTOR_BYTES // size
        i64 = ir.IntType(64)
        src_ptr = builder.gep(context.make_array(sig.args[0])(context, builder, src_arr).data, [src_start])
        dst_ptr = builder.gep(context.make_array(sig.args[3])(context, builder, dst_arr).data, [dst_start])

        def move(at, width):  # elements at … at + width − 1, as one vector (one element where width is 1)
            kind = elem if width == 1 else ir.VectorType(elem, width)
            source, target = (builder.bitcast(builder.gep(p, [at]), kind.as_pointer()) for p in (src_ptr, dst_ptr))
            builder.store(builder.load(source, align=size), target, align=size)

        def whole_vector(v, _):
            move(builder.mul(v, ir.Constant(i64, lanes_n)), lanes_n)
            return []

        def short(width):  # 0 < count < 2·width: two moves of width elements, overlapping, or a narrower pair
            if width == 1:
                move(ir.Constant(i64, 0), 1)
                return
            with builder.if_else(builder.icmp_signed(">=", count, ir.Constant(i64, width))) as (fits, narrower):
                with fits:
                    move(ir.Constant(i64, 0), width)
                    move(builder.sub(count, ir.Constant(i64, width)), width)
                with narrower:
                    short(width // 2)

        _counted_loop(builder, builder.lshr(count, ir.Constant(i64, lanes_n.bit_length() - 1)), [], whole_vector,
                      "copy")
        rest = builder.and_(count, ir.Constant(i64, lanes_n - 1))
        with builder.if_then(builder.icmp_signed(">", rest, ir.Constant(i64, 0))):
            with builder.if_else(builder.icmp_signed(">=", count, ir.Constant(i64, lanes_n))) as (long, shorter):
                with long:
                    move(builder.sub(count, ir.Constant(i64, lanes_n)), lanes_n)
                with shorter:
                    short(lanes_n // 2)
        return context.get_dummy_value()

    return types.none(src, src_start, count, dst, dst_start), codegen


@intrinsic
def narrow_tile(typingctx, a_panel, a_start, b, b_start, b_row, b_run, c, c_start, c_row, c_run, kc, rows, runs, n,
                accumulate, finish, shift, shift_start, low, cap, pieces):
    """c[c_start + i·c_row + t·c_run + q] (+)= Σ_{k<kc} a_panel[a_start + k·MR + i] · B_t[k, q], where
    B_t[k, q] = b[b_start + k·b_row + t·b_run + q], for i < rows, t < runs, q < n: `runs` narrow products of
    one A in one register tile, product t in lanes t·slot … t·slot + n − 1 of its rows. Their B rows are
    loaded and their C rows stored where they lie: no panel and no scratch tile, whose moves cost more than
    the tile's FMAs. `pieces` (a literal: 1, 2 or 4) products share a vector, each in a slot of (vector
    width) / pieces ≥ n lanes, so the tile holds NR_VECTORS·pieces of them. Where `finish`, + shift[shift_start
    + i], clamped to [low, cap]. Lanes past n and products past `runs` are never stored; a product past
    `runs` loads the last one's B again (never memory past it)."""
    _check_float_array("narrow_tile", c)
    if not isinstance(pieces, types.IntegerLiteral):
        raise errors.RequireLiteralValue(pieces)
    requested = pieces.literal_value

    def codegen(context, builder, sig, args):
        (a_arr, a_start, b_arr, b_start, b_row, b_run, c_arr, c_start, c_row, c_run, kc, rows, runs, n, accumulate,
         finish, shift_arr, shift_start, low, cap, _) = args
        elem = context.get_data_type(sig.args[6].dtype)
        size = context.get_abi_sizeof(elem)
        vec, fmuladd, _, _, _ = _vector_ops(context, builder, elem)
        width, i64, i32 = vec.count, ir.IntType(64), ir.IntType(32)
        per_vector = min(requested, width)  # a variant wider than the target's vectors is never run
        width_of_slot = width // per_vector
        piece, _, masked_load, masked_store, _ = _vector_ops(context, builder, elem, width_of_slot)
        align = ir.Constant(i32, size)

        def const(value):
            return ir.Constant(i64, value)

        def data(position, value):
            return context.make_array(sig.args[position])(context, builder, value).data

        a_ptr = builder.gep(data(0, a_arr), [a_start])
        c_ptr = builder.gep(data(6, c_arr), [c_start])
        zero = ir.Constant(piece, [ir.Constant(elem, 0.0)] * width_of_slot)
        mask = builder.icmp_signed("<", ir.Constant(ir.VectorType(i64, width_of_slot), list(range(width_of_slot))),
                                   _splat(builder, n, width_of_slot))
        # product t's B rows start at b_start + min(t, runs − 1)·b_run
        last = builder.sub(runs, const(1))
        b_first = []
        for t in range(NR_VECTORS * per_vector):
            clamped = builder.select(builder.icmp_signed("<", const(t), runs), const(t), last)
            b_first.append(builder.gep(data(2, b_arr), [builder.add(b_start, builder.mul(clamped, b_run))]))

        def load(pointer, masked):
            if masked:
                return builder.call(masked_load, [pointer, align, mask, zero])
            return builder.load(builder.bitcast(pointer, ir.PointerType(piece)), align=size)

        def store(value, pointer, masked):
            if masked:
                builder.call(masked_store, [value, pointer, align, mask])
            else:
                builder.store(value, builder.bitcast(pointer, ir.PointerType(piece)), align=size)

        def joined(slots):  # one vector of the slots side by side, joined pairwise
            while len(slots) > 1:
                count = 2 * slots[0].type.count
                slots = [builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(i32, count), list(range(count))))
                         for x, y in zip(slots[::2], slots[1::2])]
            return slots[0]

        def k_loop(masked):
            def k_step(k, acc):
                row = builder.mul(k, b_row)
                b_vecs = [joined([load(builder.gep(b_first[v * per_vector + p], [row]), masked)
                                  for p in range(per_vector)]) for v in range(NR_VECTORS)]
                a_col = builder.gep(a_ptr, [builder.mul(k, const(MR))])
                new = []
                for i in range(MR):
                    a_i = _splat(builder, builder.load(builder.gep(a_col, [const(i)]), typ=elem), width)
                    new += [builder.call(fmuladd, [a_i, b_vecs[v], acc[i * NR_VECTORS + v]]) for v in range(NR_VECTORS)]
                return new
            zeros = ir.Constant(vec, [ir.Constant(elem, 0.0)] * width)
            return _counted_loop(builder, kc, [zeros] * (MR * NR_VECTORS), k_step, "narrow_k")

        whole = builder.icmp_signed("==", n, const(width_of_slot))
        # AVX-512 masks a move for free; elsewhere products whose N fills the slot move with plain loads/stores
        masked_only = MASK_REGISTERS
        sums = k_loop(True) if masked_only else _either_values(builder, whole, lambda: k_loop(False),
                                                               lambda: k_loop(True))
        shift_ptr = builder.gep(data(16, shift_arr), [shift_start])
        low_vec, cap_vec = _splat(builder, low, width_of_slot), _splat(builder, cap, width_of_slot)
        adding = builder.icmp_unsigned("!=", accumulate, ir.Constant(accumulate.type, 0))

        # the rows are stored last to first: the next tile's first loads of B then follow stores at other
        # offsets. Where out lay a few hundred bytes past B modulo 4 KiB, those loads waited on the stores
        # they seemed to alias (128×(10×10 @ 10×N) on Zen 4, B and out 64 KiB + Δ apart: float32 N=4 at 10
        # of 22 offsets Δ took 8.6–11.3 µs instead of 7.2, N=8 at 7 of 22; stored in reverse, 0–3 of 22)
        def write_back(epilogue, masked, add):
            for i in reversed(range(MR)):
                with builder.if_then(builder.icmp_signed("<", const(i), rows)):
                    row = builder.gep(c_ptr, [builder.mul(const(i), c_row)])
                    for t in range(NR_VECTORS * per_vector):
                        with builder.if_then(builder.icmp_signed("<", const(t), runs)):
                            v, p = divmod(t, per_vector)
                            lanes = list(range(p * width_of_slot, (p + 1) * width_of_slot))
                            total = sums[i * NR_VECTORS + v]
                            value = builder.shuffle_vector(total, total, ir.Constant(ir.VectorType(i32, width_of_slot),
                                                                                     lanes))
                            dst = builder.gep(row, [builder.mul(const(t), c_run)])
                            if add:
                                value = builder.fadd(load(dst, masked), value)
                            if epilogue:
                                shifts = _splat(builder, builder.load(builder.gep(shift_ptr, [const(i)])),
                                                width_of_slot)
                                value = _shifted_and_clamped(builder, value, shifts, low_vec, cap_vec)
                            store(value, dst, masked)

        def write_backs(epilogue, masked):
            with builder.if_else(adding) as (yes, no):
                with yes:
                    write_back(epilogue, masked, True)
                with no:
                    write_back(epilogue, masked, False)

        def either_mask(epilogue):
            if masked_only:
                write_backs(epilogue, True)
                return
            with builder.if_else(whole) as (plain, partial):
                with plain:
                    write_backs(epilogue, False)
                with partial:
                    write_backs(epilogue, True)

        _once_a_tile(builder, finish, either_mask)
        return context.get_dummy_value()

    return types.none(a_panel, a_start, b, b_start, b_row, b_run, c, c_start, c_row, c_run, kc, rows, runs, n,
                      accumulate, finish, shift, shift_start, low, cap, pieces), codegen


@intrinsic
def transpose_into(typingctx, src, src_start, ld, count, dst, dst_start, dst_step, stored):
    """dst[dst_start + k·dst_step + j] = src[src_start + j·ld + k] if j < count else 0, for k < W, j < stored.

    W is the target's vector width in elements (16 float32 on AVX-512, 8 on AVX2, 4 on SSE): W rows of W
    contiguous elements are loaded (rows past count are zero), transposed in registers, and stored as W
    vectors. The transpose swaps one bit of the row index with the same bit of the lane index per stage, for
    the bits d = 1, 2, 4, …: rows a and a + d (bit d of a clear) become
        row a:     lane l ← row a lane l       if bit d of l is clear, else row a + d lane l − d
        row a + d: lane l ← row a lane l + d   if bit d of l is clear, else row a + d lane l
    so log2(W) stages of W shuffles each; packing a transposed operand this way beats W-lane gathers."""
    _check_float_array("transpose_into", dst)

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
            inside = builder.icmp_signed("<", ir.Constant(i64, j), count)
            row = builder.gep(src_ptr, [builder.mul(ir.Constant(i64, j), ld)])
            if MASK_REGISTERS:
                rows.append(builder.call(masked_load, [row, align, _splat(builder, inside, width), zero]))
            else:  # a whole row or none
                rows.append(_either(builder, inside, lambda: builder.load(builder.bitcast(row, vec.as_pointer()),
                                                                          align=size), lambda: zero))
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
        targets = [builder.gep(dst_ptr, [builder.mul(ir.Constant(i64, k), dst_step)]) for k in range(width)]

        def store(k, whole):
            if whole:
                builder.store(rows[k], builder.bitcast(targets[k], vec.as_pointer()), align=size)
            else:
                builder.call(masked_store, [rows[k], targets[k], align, store_mask])

        if MASK_REGISTERS:
            for k in range(width):
                store(k, False)
            return context.get_dummy_value()
        # whole rows where they fit; also where rows abut (dst_step = stored ≥ W/2, an A panel of MR rows):
        # row k's W − stored extra lanes then land where row k + 1 is stored next, and only the last row is
        # masked
        whole_width = builder.icmp_signed("==", stored, ir.Constant(i64, width))
        abutting = builder.and_(builder.icmp_signed("==", dst_step, stored),
                                builder.icmp_signed(">=", stored, ir.Constant(i64, -(-width // 2))))
        with builder.if_else(whole_width) as (whole, part):
            with whole:
                for k in range(width):
                    store(k, True)
            with part:
                with builder.if_else(abutting) as (overlapped, masked):
                    with overlapped:
                        for k in range(width):
                            store(k, k < width - 1)
                    with masked:
                        for k in range(width):
                            store(k, False)
        return context.get_dummy_value()

    return types.none(src, src_start, ld, count, dst, dst_start, dst_step, stored), codegen
