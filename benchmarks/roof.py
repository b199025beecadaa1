"""The roof: the CPU's measured FMA peak (GFLOP/s) and copy bandwidth (GB/s), at the suite's thread count.

Peak: each thread keeps CHAINS independent vector accumulators in flight, acc = fma(acc, m, c), one vector
register each (as wide as ninx's target: `ninx_kernels.target`), so the FMA units never wait on a latency.
The chain is written in LLVM IR, as the GEMM core's micro-kernel is, so nothing but the FMAs is measured;
`fma_asm` reads the compiled assembly back to show which instruction and register width actually ran.

Bandwidth: a parallel copy of an array much larger than the last-level cache, counting bytes read plus
bytes written.

Both figures come from the *best* of the repeated runs, not the median: a roof must bound every other
measurement from above, and a busy machine only ever makes a run slower.
"""
import collections
import re

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils, errors
from numba.np import numpy_support
from numba.extending import intrinsic

from ninx_kernels.cpu.gemm import TARGET

from .timing import measure

CHAINS = 12  # independent accumulators: ≥ FMA latency × FMA units (4 × 2 on Zen 4 and Skylake-X)
VECTOR_BYTES = TARGET.vector_bytes


@intrinsic
def _fma_chains(typingctx, steps, seed):
    """Run CHAINS vector FMA chains for `steps` (≥ 1) steps from `seed`; return the sum of all lanes."""
    if not isinstance(seed, types.Float):
        raise errors.TypingError("_fma_chains needs a float32 or float64 seed")

    def codegen(context, builder, sig, args):
        steps, seed = args
        elem = context.get_data_type(sig.args[1])
        size = context.get_abi_sizeof(elem)
        width = VECTOR_BYTES // size
        vec, i32, i64 = ir.VectorType(elem, width), ir.IntType(32), ir.IntType(64)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                             f"llvm.fmuladd.v{width}f{8 * size}")

        def splat(x):
            one = builder.insert_element(ir.Constant(vec, ir.Undefined), x, ir.Constant(i32, 0))
            return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(i32, width), [0] * width))

        # acc ← acc·(1 − seed·1e-6) + seed·1e-3 converges to 1000 and never overflows or goes subnormal
        start = splat(seed)
        scale = splat(builder.fsub(ir.Constant(elem, 1.0), builder.fmul(seed, ir.Constant(elem, 1e-6))))
        shift = splat(builder.fmul(seed, ir.Constant(elem, 1e-3)))
        entry = builder.block
        loop, done = builder.append_basic_block("fma_loop"), builder.append_basic_block("fma_done")
        builder.branch(loop)
        builder.position_at_end(loop)
        k = builder.phi(i64)
        acc = [builder.phi(vec) for _ in range(CHAINS)]
        new = [builder.call(fma, [a, scale, shift]) for a in acc]
        k_next = builder.add(k, ir.Constant(i64, 1))
        builder.cbranch(builder.icmp_signed("<", k_next, steps), loop, done)
        k.add_incoming(ir.Constant(i64, 0), entry)
        k.add_incoming(k_next, loop)
        for phi, value in zip(acc, new):
            phi.add_incoming(start, entry)
            phi.add_incoming(value, loop)
        builder.position_at_end(done)
        total = ir.Constant(elem, 0.0)
        for value in new:
            for lane in range(width):
                total = builder.fadd(total, builder.extract_element(value, ir.Constant(i32, lane)))
        return total

    return seed(types.int64, seed), codegen


@njit
def _chains(steps, seed):
    return _fma_chains(steps, seed)


@njit(parallel=True)
def _peak_kernel(steps, seeds, out):
    for w in prange(seeds.shape[0]):
        out[w] = _chains(steps, seeds[w])


@njit(parallel=True)
def _copy_kernel(src, dst):
    for i in prange(src.shape[0]):
        dst[i] = src[i]


def fma_asm(dtype):
    """{instruction: count} of the vfmadd instructions in the compiled chain, e.g. {'vfmadd213ps zmm': 96}."""
    _chains(1, np.dtype(dtype).type(0.5))
    signature = next(s for s in _chains.signatures if s[1] == numpy_support.from_dtype(np.dtype(dtype)))
    found = re.findall(r"\b(vfmadd\w+)\s+%?([xyz]mm)", _chains.inspect_asm(signature))
    return dict(collections.Counter(f"{op} {reg}" for op, reg in found))


def fma_peaks(threads, steps, warmup=1, repeats=5, dtypes=("float32", "float64")):
    """{dtype: measured FMA peak of `threads` threads in GFLOP/s (2 flops per lane per FMA), and the asm used},
    the dtypes' runs alternating, so that a slow spell of a shared machine cannot land on one dtype only."""
    runs = {}
    for name in dtypes:
        seeds = np.full(threads, 0.5, np.dtype(name))
        runs[name] = (lambda seeds=seeds, out=np.empty_like(seeds): _peak_kernel(steps, seeds, out))
    timings = measure(runs, warmup, repeats)
    peaks = {}
    for name in dtypes:
        flops = 2 * (VECTOR_BYTES // np.dtype(name).itemsize) * CHAINS * steps * threads
        peaks[name] = {"dtype": name, "threads": threads, "flops": flops, **timings[name].as_dict(),
                       "gflops": flops / timings[name].best / 1e9, "asm": fma_asm(np.dtype(name))}
    return peaks


def _last_level_cache_bytes():
    """Size of the largest CPU cache sysfs reports (the L3 on most machines), or 32 MiB if unknown."""
    sizes = []
    for index in range(8):
        try:
            with open(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size") as f:
                text = f.read().strip()
        except OSError:
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        sizes.append(int(text.rstrip("KMG")) * units.get(text[-1], 1))
    return max(sizes, default=32 << 20)


def copy_bandwidth(array_bytes=None, warmup=1, repeats=5):
    """GB/s of a parallel copy (bytes read + bytes written) of an array of `array_bytes` (default: 8 × LLC)."""
    cache = _last_level_cache_bytes()
    array_bytes = array_bytes or min(max(8 * cache, 256 << 20), 1 << 30)
    src = np.ones(array_bytes // 4, np.float32)
    dst = np.zeros_like(src)
    timing = measure({"copy": lambda: _copy_kernel(src, dst)}, warmup, repeats)["copy"]
    moved = 2 * src.nbytes
    return {"array_bytes": src.nbytes, "cache_bytes": cache, "bytes_moved": moved, **timing.as_dict(),
            "gbytes_per_s": moved / timing.best / 1e9}


def roof(threads, quick=False):
    """The peak (float32 and float64) and the copy bandwidth, as the "roof" section of the results."""
    # many short runs rather than a few long ones: the best of them catches the machine when it is free (seven
    # runs of 20 M steps once all landed in a spell with one core taken: 117 GFLOP/s of 230)
    steps, repeats = (200_000, 2) if quick else (4_000_000, 31)
    return {"vector_bytes": VECTOR_BYTES, "chains": CHAINS, "peak": fma_peaks(threads, steps, repeats=repeats),
            "copy": copy_bandwidth(16 << 20 if quick else None, repeats=2 if quick else 7)}
