"""Max pooling's window maxima in LLVM IR: a target vector of neighbouring outputs over all their taps.

Written as Numba code, the update `take = v > best or v is NaN or no tap yet; best, where = v, at if take`
compiles to branches (LLVM's x86 back end turns selects in loops back into jumps), and on random data every
comparison is a coin toss for the branch predictor: 24 ms for the small NiN's first pool (128×96×28×28,
3×3/2) on the 2-core Zen 5. Here the maxima and their indices stay in vector registers over every tap of
the windows and are stored once; a tap per call would store and reload them, and a masked store does not
forward to the next load (12 ms).
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils, errors
from numba.extending import intrinsic

from .gemm_ir import _check_float_array, _counted_loop, _either, _lane_pointers, _splat, _vector_ops


@intrinsic
def window_maxima(typingctx, source, plane, tap_row, tap_shift, first_tap, taps, column, step, width, best, where,
                  start, count, in_stride, out_stride, unmasked, planes):
    """For `planes` planes at once (a literal; plane p at source[plane + p·in_stride], its outputs at
    start + p·out_stride), four independent chains of selects where one would wait on each select's latency.

    For lanes l < count (outputs start + l, whose windows begin at input column column + l·step): over
    the taps t = first_tap … first_tap + taps − 1, in order, at input column c = column + l·step +
    tap_shift[t] of the row at offset tap_row[t] of the plane at source[plane] (`width` columns wide),
    skipping columns outside [0, width), the maximum and its index in the plane (tap_row[t] + c): a later tap
    takes over where it is larger or NaN, so ties keep the first tap. Windows with no tap inside get (0, −1).
    Stored to best[start + l], where[start + l]. Whole arrays and offsets: slicing per call would cost two
    reference counts per array.

    With `unmasked` the caller vouches that every vector the taps span lies inside source: the loads are
    then plain ones. Masked loads that miss the cache are not overlapped on the 2-core Zen 5 (163 cycles a
    call with the planes in cache, 744 streaming through 16 MB)."""
    _check_float_array("window_maxima", best)
    if not isinstance(planes, types.IntegerLiteral):
        raise errors.RequireLiteralValue(planes)
    plane_count = planes.literal_value

    def codegen(context, builder, sig, args):
        (src_arr, plane, rows_arr, shifts_arr, first_tap, taps, column, step, width, best_arr, where_arr, start,
         count, in_stride, out_stride, unmasked) = args[:16]
        elem = context.get_data_type(sig.args[9].dtype)
        size = context.get_abi_sizeof(elem)
        vec, _, masked_load, masked_store, masked_gather = _vector_ops(context, builder, elem)
        lanes_n = vec.count
        i64, i32 = ir.IntType(64), ir.IntType(32)
        ints, wide = ir.VectorType(i32, lanes_n), ir.VectorType(i64, lanes_n)
        mask_type = ir.VectorType(ir.IntType(1), lanes_n)
        store_index = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), (wide, ir.PointerType(i64), i32, mask_type)),
            f"llvm.masked.store.v{lanes_n}i64.p0")

        def data(position, value):
            return context.make_array(sig.args[position])(context, builder, value).data

        def splat(value):
            return _splat(builder, value, lanes_n)

        def narrow(value):  # plane-relative positions fit 32 bits
            return builder.trunc(value, i32)

        src_ptr = builder.gep(data(0, src_arr), [plane])
        rows_ptr = builder.gep(data(2, rows_arr), [first_tap])
        shifts_ptr = builder.gep(data(3, shifts_arr), [first_tap])
        lanes = ir.Constant(ints, list(range(lanes_n)))
        inside = builder.icmp_signed("<", lanes, splat(narrow(count)))
        lane_steps = builder.mul(lanes, splat(narrow(step)))
        # the step-2 path loads the span's elements e = half·W + lane, those before 2·count
        spans = [builder.add(lanes, ir.Constant(ints, [half * lanes_n] * lanes_n)) for half in range(2)]
        in_span = [builder.icmp_signed("<", e, splat(narrow(builder.mul(count, step)))) for e in spans]
        columns_wide = splat(narrow(width))
        zero = ir.Constant(vec, [ir.Constant(elem, 0.0)] * lanes_n)
        align = ir.Constant(i32, size)
        is_unit = builder.icmp_signed("==", step, ir.Constant(i64, 1))
        is_pair = builder.icmp_signed("==", step, ir.Constant(i64, 2))

        plain_loads = builder.icmp_unsigned("!=", unmasked, ir.Constant(unmasked.type, 0))

        def load(at, mask):
            """A vector at `at`: a plain load where the caller vouched for the memory, else masked."""
            return _either(builder, plain_loads,
                           lambda: builder.load(builder.bitcast(at, ir.PointerType(vec)), align=size),
                           lambda: builder.call(masked_load, [at, align, mask, zero]))

        def pair(row_ptr, first):
            """Step 2: the span's two halves (each element masked by its own column), even lanes together."""
            halves = []
            for half in range(2):
                ok = builder.and_(in_span[half], builder.icmp_unsigned(
                    "<", builder.add(splat(narrow(first)), spans[half]), columns_wide))
                halves.append(load(builder.gep(row_ptr, [builder.add(first, ir.Constant(i64, half * lanes_n))]), ok))
            return builder.shuffle_vector(halves[0], halves[1], ir.Constant(ints, list(range(0, 2 * lanes_n, 2))))

        def load_tap(row_ptr, first, columns, valid):
            """The tap's elements for the lanes: a masked load for step 1, two loads and a shuffle for step 2
            (most pools), a gather for other steps."""
            def gather():
                pointers = _lane_pointers(builder, row_ptr, builder.sext(columns, wide), elem, size)
                return builder.call(masked_gather, [pointers, align, valid, zero])

            return _either(builder, is_unit, lambda: load(builder.gep(row_ptr, [first]), valid),
                           lambda: _either(builder, is_pair, lambda: pair(row_ptr, first), gather))

        def tap(t, values):
            """values: 'seen' (a lane has had a tap inside), then each plane's maxima, then their indices."""
            seen, bests, wheres = values[0], values[1:1 + plane_count], values[1 + plane_count:]
            row = builder.load(builder.gep(rows_ptr, [t]))
            first = builder.add(column, builder.load(builder.gep(shifts_ptr, [t])))  # the column of lane 0
            columns = builder.add(splat(narrow(first)), lane_steps)
            valid = builder.and_(inside, builder.icmp_unsigned("<", columns, columns_wide))  # 0 ≤ column < width
            positions = builder.add(splat(narrow(row)), columns)
            # strict '>' keeps the first maximum in tap order; NaN wins; a lane's first tap inside always takes
            new_bests, new_wheres = [], []
            for p in range(plane_count):
                v = load_tap(builder.gep(src_ptr, [builder.add(row, builder.mul(ir.Constant(i64, p), in_stride))]),
                             first, columns, valid)
                wins = builder.or_(builder.or_(builder.fcmp_ordered(">", v, bests[p]),
                                               builder.fcmp_unordered("uno", v, v)), builder.not_(seen))
                take = builder.and_(valid, wins)
                new_bests.append(builder.select(take, v, bests[p]))
                new_wheres.append(builder.select(take, positions, wheres[p]))
            return [builder.or_(seen, valid)] + new_bests + new_wheres

        initial = ([ir.Constant(mask_type, [0] * lanes_n)] + [zero] * plane_count +
                   [ir.Constant(ints, [-1] * lanes_n)] * plane_count)
        finals = _counted_loop(builder, taps, initial, tap, "taps")
        for p in range(plane_count):
            at = builder.add(start, builder.mul(ir.Constant(i64, p), out_stride))
            builder.call(masked_store, [finals[1 + p], builder.gep(data(9, best_arr), [at]), align, inside])
            builder.call(store_index, [builder.sext(finals[1 + plane_count + p], wide),
                                       builder.gep(data(10, where_arr), [at]), ir.Constant(i32, 8), inside])
        return context.get_dummy_value()

    return types.none(source, plane, tap_row, tap_shift, first_tap, taps, column, step, width, best, where, start,
                      count, in_stride, out_stride, unmasked, planes), codegen
