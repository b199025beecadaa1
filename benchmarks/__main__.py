"""The CPU speed suite: `python -m benchmarks` (also `ninx bench`).

Sections, in order: roof (FMA peak, copy bandwidth), gemm (the GEMM core against numpy.matmul, float32 and
float64), ops (each op of the small NiN, forward and backward, against PyTorch when importable) and train
(the whole training step in images/s); `--sections gpu` (asked for by name) times the CUDA kernels
(benchmarks/gpu.py). Prints a table and writes JSON, Markdown and a roofline PNG to --out,
named with the date, the machine and the target. --quick is a smoke run: batch 2, small GEMMs, few repeats —
its numbers mean nothing.

--target NAME (or NINX_CPU_TARGET) compiles ninx for another CPU than the host, e.g. `haswell` for the AVX2
path on an AVX-512 machine: the suite then runs again in a child process whose Numba targets NAME, since
code generation is fixed when numba is first imported. See `ninx_kernels.codegen`.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

SECTIONS = ("roof", "gemm", "ops", "train")
GPU_SECTIONS = ("gpu",)  # only when asked for: benchmarks/gpu.py, ninx's CUDA kernels against cuBLAS and cuDNN
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv, prog="python -m benchmarks"):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny batch, few repeats")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for ninx, the roof, numpy.matmul and PyTorch (default 2)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference even if importable")
    parser.add_argument("--out", default=str(RESULTS), help=f"folder for the result files (default {RESULTS})")
    parser.add_argument("--target", help="CPU to compile ninx for: host, haswell, x86-64 or any LLVM CPU name "
                                         "(default: NINX_CPU_TARGET, else host)")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS + GPU_SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS + GPU_SECTIONS)}")
    return args


def gemm_rows(threads, quick):
    """(rows of float32 and float64, the reference BLAS, OpenBLAS's own kernel or None) of benchmarks.gemm:
    each side in a child process."""
    from . import gemm
    ninx, numpy, numpy_own = gemm.compare(threads, quick)
    return gemm.rows(ninx, numpy, quick, numpy_own), numpy["blas"], numpy_own and numpy_own["blas"]


def retarget(argv, target):
    """Run the suite with `argv` in a child process compiled for `target`; its exit status, or None where
    this process already compiles for it."""
    from ninx_kernels.codegen import chosen_target
    name, features = chosen_target({"NINX_CPU_TARGET": target})
    if (os.environ.get("NUMBA_CPU_NAME"), os.environ.get("NUMBA_CPU_FEATURES")) == (name, features):
        return None
    env = dict(os.environ, NINX_CPU_TARGET=target, NUMBA_CPU_NAME=name, NUMBA_CPU_FEATURES=features)
    return subprocess.run([sys.executable, "-m", __package__, *argv], env=env,
                          cwd=Path(__file__).resolve().parents[1]).returncode


def _log(message):
    print(message, file=sys.stderr, flush=True)


def run(args):
    """Run the chosen sections; the results dict (config, roof, blas, rows, machine)."""
    import numba

    from . import nin, ops, train_step
    from .machine import machine_info
    from .report import add_roof_fractions
    from .roof import roof
    from .torch_nin import load_torch

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    torch = None if args.no_torch or not {"ops", "train"} & set(args.sections) else load_torch(args.threads)
    batch, warmup, repeats = (2, 1, 2) if args.quick else (nin.BATCH, 2, 7)
    results = {"config": {"sections": args.sections, "quick": args.quick, "threads": args.threads,
                          "batch": batch, "warmup": warmup, "repeats": repeats, "torch": torch is not None},
               "rows": []}
    if "roof" in args.sections:
        _log("roof: FMA peak and copy bandwidth")
        results["roof"] = roof(args.threads, args.quick)
    if "gemm" in args.sections:
        _log("gemm: the GEMM core against numpy.matmul, float32 and float64 (child processes)")
        rows, results["blas"], results["blas_own"] = gemm_rows(args.threads, args.quick)
        results["rows"] += rows
    if "ops" in args.sections:
        _log(f"ops: the small NiN's layers at batch {batch}")
        results["rows"] += ops.run(batch, torch, warmup, repeats)
    if "train" in args.sections:
        _log(f"train: the small NiN's training step at batch {batch}")
        results["rows"] += train_step.run(batch, torch, warmup, repeats)
    if "gpu" in args.sections:
        from . import gpu
        _log("gpu: ninx's CUDA kernels against cuBLAS and cuDNN (or, emulated, against the host)")
        rows, results["gpu"] = gpu.run(args.quick)
        results["rows"] += rows
    results["machine"] = machine_info()
    if "roof" in results:
        add_roof_fractions(results["rows"], results["roof"])
    return results


def main(argv=None, prog="python -m benchmarks"):
    """Entry point of `python -m benchmarks` and `ninx bench`; returns the exit status."""
    from .report import terminal_table, write
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv, prog)
    status = retarget(argv, args.target) if args.target else None
    if status is not None:
        return status
    results = run(args)
    print(terminal_table(results))
    for path in write(results, args.out).values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
