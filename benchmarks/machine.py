"""What machine and software a benchmark ran on: one dict every benchmark's JSON carries as "machine".

It names the CPU model, its microarchitecture as LLVM calls it (znver3, znver4, znver5, skylake-avx512, …),
the target ninx compiled for and the GEMM register tile that target gives, so that results from different
machines or targets are never confused; `machine_slug` puts the same facts in the result files' names.
"""
import datetime
import importlib.metadata
import os
import platform
import re

import ninx_kernels  # noqa: F401  (fixes Numba's code generation before numba is imported)
import numba
import numpy as np
from ninx_kernels.cpu.gemm import MR, NR_VECTORS, TARGET, blocking, tile_columns
from ninx_kernels.codegen import chosen_target
from ninx_kernels.target import host_cpu, target_for

OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def numba_target():
    """(cpu name, features) Numba compiles for: ninx's codegen choice, or the host's own."""
    import llvmlite.binding as llvm
    name = numba.config.CPU_NAME or llvm.get_host_cpu_name()
    features = numba.config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    return name, features


def _threading_layer():
    """Numba's threading layer (omp, tbb, workqueue); known only once a parallel kernel has run."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def target_narrower_than_host():
    """True where ninx compiles for narrower vectors than the host's own target has (haswell on AVX-512)."""
    return TARGET.vector_bytes < target_for(*chosen_target({})).vector_bytes


def gemm_tile():
    """The target ninx compiled for and its GEMM tile and blocks, as a JSON-ready dict."""
    dtypes = ("float32", "float64")
    return {"target": TARGET._asdict(), "tile_vectors": f"{MR}×{NR_VECTORS}",
            "tile": {d: f"{MR}×{tile_columns(np.dtype(d).itemsize)}" for d in dtypes},
            "blocking": {d: blocking(np.dtype(d).itemsize)._asdict() for d in dtypes}}


def machine_info():
    """CPU, cores, threads, versions, Numba's code-generation target and ninx's GEMM tile, as a JSON-ready dict."""
    cpu_name, cpu_features = numba_target()
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "microarchitecture": host_cpu()[0],
        "cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _threading_layer(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("ninx", "numpy", "numba", "llvmlite", "torch", "threadpoolctl")},
        "numba_cpu_name": cpu_name,
        "numba_cpu_features": cpu_features,
        "avx512": "+avx512f" in cpu_features,
        "ninx_cpu_target": os.environ.get("NINX_CPU_TARGET", "host"),
        "ninx_codegen": os.environ.get("NINX_CODEGEN", "host, 512-bit preferred"),
        "gemm": gemm_tile(),
        "openblas_env": {v: os.environ.get(v) for v in OPENBLAS_VARIABLES},
    }


def machine_slug(info):
    """A short file-name-safe label of the machine and target: CPU model, microarchitecture, core count, and
    the target where it is not the host's, e.g. 'amd-epyc-znver5-2c' or 'amd-epyc-znver5-2c-haswell'."""
    model = re.sub(r"\((r|tm)\)|cpu|processor|@.*", "", info["cpu_model"].lower())
    target = info["gemm"]["target"]["cpu_name"]
    words = [model, info["microarchitecture"], f"{info['cores']}c"]
    words += [target] if target != info["microarchitecture"] else []
    return "-".join(re.sub(r"[^a-z0-9.]+", "-", w.lower()).strip("-") for w in words)
