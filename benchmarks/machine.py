"""What machine and software a benchmark ran on: one dict every benchmark's JSON carries as "machine"."""
import datetime
import importlib.metadata
import os
import platform
import re

import ninx_kernels  # noqa: F401  (fixes Numba's code generation before numba is imported)
import numba

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


def machine_info():
    """CPU, cores, threads, versions and Numba's code-generation target, as a JSON-ready dict."""
    cpu_name, cpu_features = numba_target()
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _threading_layer(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("ninx", "numpy", "numba", "llvmlite", "torch", "threadpoolctl")},
        "numba_cpu_name": cpu_name,
        "numba_cpu_features": cpu_features,
        "avx512": "+avx512f" in cpu_features,
        "ninx_codegen": os.environ.get("NINX_CODEGEN", "host, 512-bit preferred"),
        "openblas_env": {v: os.environ.get(v) for v in OPENBLAS_VARIABLES},
    }


def machine_slug(info):
    """A short file-name-safe label of the machine: CPU model and core count, e.g. 'amd-epyc-2c'."""
    model = re.sub(r"\((r|tm)\)|cpu|processor|@.*", "", info["cpu_model"].lower())
    return f"{re.sub(r'[^a-z0-9]+', '-', model).strip('-')}-{info['cores']}c"
