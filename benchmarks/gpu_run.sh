#!/usr/bin/env bash
# The one-shot hardware run, for a briefly lent GPU (about 8 minutes in all): a gate that fails loudly unless
# CuPy sees the GPU and a small GEMM is right; the conformance suite on the real cuda device
# (NINX_EXPECT_CUDA=1: a device that cannot load fails, never skips); the GPU benchmark section; and
# compute-sanitizer memcheck and racecheck on a program that calls every kernel once. Everything goes under
# $OUT (the device tool's output folder) or benchmarks/results/gpu-DATE; the last lines printed summarise.
#
#     bash benchmarks/gpu_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu-$(date +%F)}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
# ninx without an install: the kernels/ and benchmarks/ folders under their package names
SHIM=$(mktemp -d)
ln -s "$PWD/kernels" "$SHIM/ninx_kernels"
ln -s "$PWD/benchmarks" "$SHIM/ninx_benchmarks"
export PYTHONPATH="$SHIM:$PWD${PYTHONPATH:+:$PYTHONPATH}" NINX_EXPECT_CUDA=1 CUPY_CACHE_DIR="$OUT/cupy-cache"
unset NINX_CUDA_EMULATE
summary=()

step() {  # step NAME SECONDS COMMAND...: run it with a limit, log to $OUT/NAME.log, remember its exit code
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit}s)"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 4 "$OUT/$name.log"
    summary+=("$name: exit $rc")
    return $rc
}

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
step gate 90 "$PY" -c '
import numpy as np, cupy, ninx
from ninx.backend import get_backend
print(cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), "cupy", cupy.__version__)
a, b = (np.random.default_rng(s).standard_normal((1, 300, 200)).astype(np.float32) for s in (0, 1))
b = b.transpose(0, 2, 1).copy()
out = get_backend("cuda").gemm(cupy.asarray(a), cupy.asarray(b), cupy.empty((1, 300, 300), np.float32)).get()
error = np.linalg.norm(out - a.astype(np.float64) @ b) / np.linalg.norm(a.astype(np.float64) @ b)
assert error < 1e-5, f"the GEMM on the GPU is wrong: relative error {error:.2e}"
print(f"gate: GEMM relative error {error:.2e}")' || { echo "gate failed: no usable GPU; see $OUT/gate.log"; exit 1; }
step conformance 240 "$PY" -m pytest -q -p no:cacheprovider tests -k "cuda or implicit_gemm"
step benchmark 200 "$PY" -m benchmarks --sections gpu --out "$OUT"
if command -v compute-sanitizer > /dev/null; then
    step memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 3 "$PY" benchmarks/gpu_kernels_once.py
    step racecheck 120 compute-sanitizer --tool racecheck --error-exitcode 3 "$PY" benchmarks/gpu_kernels_once.py
else
    summary+=("sanitizer: compute-sanitizer not on PATH")
fi
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
! grep -qv ": exit 0$" "$OUT/summary.txt"
