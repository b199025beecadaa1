"""ninx's GEMM core against numpy.matmul (OpenBLAS), float32 and float64: square sizes and NiN's 1×1 convs.

    python -m benchmarks.gemm [--threads 2] [--quick]   # prints the table, writes results/gemm-<date>-<machine>.json

Both sides get the same fixed number of threads (--threads, default 2), and each is timed in a child
process of its own, with its own environment:
- ninx runs with NUMBA_NUM_THREADS=threads and OPENBLAS_NUM_THREADS=1, compiled for the target of this
  process (NINX_CPU_TARGET, or `python -m benchmarks --target`). OpenBLAS's idle workers keep spinning
  for a while after every call (and after start-up), and on a 2-core machine they take a core from Numba's
  threads: timed in one process, the numbers would measure that fight, not the kernel.
- numpy runs with OPENBLAS_NUM_THREADS=threads and OPENBLAS_L2_SIZE removed. OPENBLAS_CORETYPE is removed
  too, so that OpenBLAS picks its own kernel for this CPU (a forced core type can be much slower) — except
  when ninx is held to a narrower target than the host's: then the fair reference is OpenBLAS held to the
  same vectors (`reference_coretype`: Haswell for AVX2), and OpenBLAS's own kernel is timed as well, as a
  second column. The JSON records threadpoolctl's view of each BLAS, kernel ("architecture") included.
Separate processes cannot be timed call by call alternately, as the rest of the suite is (see `timing`), so
they alternate in ROUNDS rounds instead — ninx, numpy; numpy, ninx; ninx, numpy; … — each child timing a
ROUNDS-th of the calls. A case's ratio is the median of its per-round ratios, so that a slow spell of a shared
machine, which lands on one child, moves one round's ratio and not the result; its GFLOP/s is the median of
all its calls. Five rounds, not three: on the 2-core Zen 3 one process's 2048² ran at 92–167 GFLOP/s from one
3-second spell to the next, and two suites of three rounds an hour apart, with the same float64 code, gave
its squares 1.03–1.28 and 0.78–0.92× OpenBLAS. The load averages before and after are recorded too.

A 1×1 convolution of a batch is Y[n] = W (C_out × C_in) @ X[n] (C_in × H·W): ninx runs it as one call with
W broadcast over the batch, numpy as np.matmul(W, X) with X of shape (N, C_in, H·W).

--quick is a smoke run: sizes 256² and 512², the 1×1 convs at batch 2, few repeats. Its numbers mean nothing.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from . import nin
from .machine import OPENBLAS_VARIABLES, machine_info, machine_slug, target_narrower_than_host
from .report import make_row
from .timing import measure

DTYPES = ("float32", "float64")
SQUARE = (256, 512, 1024, 2048, 4096)
QUICK_SQUARE = (256, 512)
QUICK_BATCH = 2
RESULTS = Path(__file__).resolve().parent / "results"
ROUNDS = 5  # alternating pairs of child processes (one in a --quick run)
CORETYPES = {32: "Haswell"}  # OpenBLAS's kernel for a target of that many vector bytes (AVX2 + FMA)


def cases(quick=False):
    """[(label, batch, m, n, k, a broadcast over the batch)]: square GEMMs, then NiN's distinct 1×1 convs."""
    out = [(f"{s}x{s}x{s}", 1, s, s, s, False) for s in (QUICK_SQUARE if quick else SQUARE)]
    seen = set()
    layers = nin.layers(QUICK_BATCH if quick else nin.BATCH)
    for layer in (layer for layer in layers if layer.kind == "conv" and layer.args[1] == 1):
        (batch, c_in, h, w), c_out = layer.input_shape, layer.args[0]
        if (c_in, c_out, h, w) not in seen:
            seen.add((c_in, c_out, h, w))
            out.append((f"1x1 conv {c_in}->{c_out} @{h}x{w} N={batch}", batch, c_out, h * w, c_in, True))
    return out


def operands(batch, m, n, k, broadcast, dtype):
    """Random a (1 or batch, m, k), b (batch, k, n) and an out (batch, m, n) of `dtype`."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1 if broadcast else batch, m, k)).astype(dtype)
    b = rng.standard_normal((batch, k, n)).astype(dtype)
    return a, b, np.empty((batch, m, n), dtype)


def schedule(flops, quick, rounds=1):
    """(warm-up calls, timed calls) of a case in one of `rounds` children: in all, about 2 s of work at
    100 GFLOP/s, between 6 and 100 calls."""
    return (1, 2) if quick else (2, -(-int(min(100, max(6, 2e11 / flops))) // rounds))


def time_side(side, quick, rounds=1):
    """{dtype: {label: timing dict with GFLOP/s}} of one side ('ninx' or 'numpy') over all cases."""
    if side == "ninx":
        from ninx_kernels.cpu.gemm import gemm

        def runner(a, b, out):
            return lambda: gemm(a, b, out)
    else:
        def runner(a, b, out):
            if len(a) == 1 and len(b) == 1:  # a plain matrix product, as numpy users would write it
                return lambda: np.matmul(a[0], b[0], out=out[0])
            return lambda: np.matmul(a[0] if len(a) == 1 else a, b, out=out)
    results = {}
    for dtype in DTYPES:
        results[dtype] = {}
        for label, batch, m, n, k, broadcast in cases(quick):
            flops = 2.0 * batch * m * n * k
            warmup, repeats = schedule(flops, quick, rounds)
            timing = measure({label: runner(*operands(batch, m, n, k, broadcast, dtype))}, warmup,
                             repeats)[label]
            results[dtype][label] = dict(timing.as_dict(), times=timing.times)
    return results


def blas_info():
    """threadpoolctl's description of the BLAS numpy uses (library, version, kernel, threads)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]


def child(side, quick, rounds):
    """Time one side in this process (one of `rounds` children) and print {machine or blas, results} as JSON."""
    report = {"results": time_side(side, quick, rounds)}
    if side == "ninx":
        report["machine"] = machine_info()
    else:
        report["blas"] = blas_info()
    print(json.dumps(report))


def reference_coretype():
    """OPENBLAS_CORETYPE of the fair reference: the kernel of ninx's target where that target is narrower
    than the host's (an AVX2 target on an AVX-512 host: Haswell), else None (OpenBLAS's own choice)."""
    from ninx_kernels.cpu.gemm import TARGET
    return CORETYPES.get(TARGET.vector_bytes) if target_narrower_than_host() else None


def side_env(side, threads, coretype=None):
    """({variable: value} set, variables removed) in the environment of the child timing `side`."""
    if side == "ninx":
        return {"NUMBA_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1"}, ()
    if coretype:
        return {"OPENBLAS_NUM_THREADS": str(threads), "OPENBLAS_CORETYPE": coretype}, ("OPENBLAS_L2_SIZE",)
    return {"OPENBLAS_NUM_THREADS": str(threads)}, OPENBLAS_VARIABLES


def run_child(side, threads, quick, rounds, coretype=None):
    """Run this module with --side `side` in a child process with that side's environment; its JSON report."""
    changes, removed = side_env(side, threads, coretype)
    env = dict({k: v for k, v in os.environ.items() if k not in removed}, **changes)
    command = [sys.executable, "-m", f"{__package__}.gemm", "--side", side, "--rounds", str(rounds)]
    done = subprocess.run(command + (["--quick"] if quick else []), env=env, check=True, stdout=subprocess.PIPE,
                          text=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _merged(reports):
    """One report from the same side's reports of several rounds: each case's calls of every round, their
    median, and each round's median ("round_medians", in round order)."""
    merged = dict(reports[0], results={})
    for dtype, cases_ in reports[0]["results"].items():
        merged["results"][dtype] = {}
        for label in cases_:
            rounds = [report["results"][dtype][label] for report in reports]
            times = [t for timing in rounds for t in timing["times"]]
            merged["results"][dtype][label] = {"median_s": statistics.median(times), "best_s": min(times),
                                               "repeats": len(times),
                                               "round_medians": [timing["median_s"] for timing in rounds]}
    return merged


def compare(threads=2, quick=False):
    """(ninx's report, numpy's report, numpy's report with its own kernel or None), each merged from ROUNDS
    child processes that alternate with the other side's (see `child`, `_merged`). The last is timed only
    where the reference kernel was forced."""
    coretype = reference_coretype()
    rounds = 1 if quick else ROUNDS
    sides = [("ninx", None), ("numpy", coretype)] + ([("numpy", None)] if coretype else [])
    reports = {index: [] for index in range(len(sides))}
    for round_ in range(rounds):  # ninx first in even rounds, last in odd ones
        order = range(len(sides)) if round_ % 2 == 0 else reversed(range(len(sides)))
        for index in order:
            side, kernel = sides[index]
            reports[index].append(run_child(side, threads, quick, rounds, kernel))
    merged = [_merged(reports[index]) for index in range(len(sides))]
    return merged[0], merged[1], merged[2] if coretype else None


def _ratio(reference, ninx):
    """Median over the rounds of reference time ÷ ninx time, each round's from its own pair of children."""
    return statistics.median(r / n for r, n in zip(reference["round_medians"], ninx["round_medians"]))


def rows(ninx, numpy, quick=False, numpy_own=None):
    """Result rows (see `report.make_row`) of every dtype and case, from the children's reports; with
    numpy_own, each row also holds OpenBLAS's own kernel as "reference_own" and "speed_ratio_own"."""
    out = []
    for dtype in DTYPES:
        size = np.dtype(dtype).itemsize
        for label, batch, m, n, k, broadcast in cases(quick):
            flops = 2 * batch * m * n * k
            traffic = size * ((1 if broadcast else batch) * m * k + batch * k * n + batch * m * n)
            ours, theirs = ninx["results"][dtype][label], numpy["results"][dtype][label]
            row = make_row("gemm", label, f"{batch}×({m}×{k} @ {k}×{n})", "", dtype, flops, traffic,
                           {"ninx": ours, "numpy": theirs})
            row["speed_ratio"] = _ratio(theirs, ours)
            if numpy_own:
                own = numpy_own["results"][dtype][label]
                row["reference_own"] = dict(own, name="numpy", gflops=flops / own["median_s"] / 1e9)
                row["speed_ratio_own"] = _ratio(own, ours)
            out.append(row)
    return out


def print_table(result_rows):
    """ninx's and numpy's GFLOP/s and their ratio, one line per dtype and case (and OpenBLAS's own kernel)."""
    own = any("reference_own" in row for row in result_rows)
    print(f"{'dtype':<9}{'shape':<34}{'ninx GFLOP/s':>14}{'numpy GFLOP/s':>15}{'ratio':>8}"
          + (f"{'own kernel':>12}{'ratio':>8}" if own else ""))
    for row in result_rows:
        ours, theirs = row["ninx"]["gflops"], row["reference"]["gflops"]
        line = f"{row['dtype']:<9}{row['name']:<34}{ours:>14.1f}{theirs:>15.1f}{row['speed_ratio']:>8.2f}"
        if own:
            line += f"{row['reference_own']['gflops']:>12.1f}{row['speed_ratio_own']:>8.2f}"
        print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}.gemm", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads of each side (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, few repeats")
    parser.add_argument("--side", choices=("ninx", "numpy"), help="internal: time one side in this process")
    parser.add_argument("--rounds", type=int, default=1, help="internal: the child's share of the calls is 1/rounds")
    args = parser.parse_args(argv)
    if args.side:
        return child(args.side, args.quick, args.rounds)
    load_before = os.getloadavg()  # other work on the machine shows up as slow, noisy timings
    ninx, numpy, numpy_own = compare(args.threads, args.quick)
    result_rows = rows(ninx, numpy, args.quick, numpy_own)
    print_table(result_rows)
    machine = ninx["machine"]
    coretype = reference_coretype()
    report = {"benchmark": "gemm", "dtypes": list(DTYPES), "threads": args.threads, "quick": args.quick,
              "machine": machine, "numpy_blas": numpy["blas"], "numpy_blas_own": numpy_own and numpy_own["blas"],
              "env": {side: dict(zip(("set", "removed"), side_env(side, args.threads, coretype)))
                      for side in ("ninx", "numpy")},
              "load_average_before": load_before, "load_average_after": os.getloadavg(), "rows": result_rows}
    RESULTS.mkdir(exist_ok=True)
    stem = f"gemm-{datetime.date.today().isoformat()}-{machine_slug(machine)}" + ("-quick" if args.quick else "")
    path = RESULTS / f"{stem}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
