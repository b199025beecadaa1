"""How ninx's kernels use the CPU, chosen deliberately and set before numba and numpy are imported.

Code generation:

LLVM tunes AVX-512 CPUs such as Zen 4 and Skylake-X to *prefer 256-bit vectors*, which halves the width of
every vectorised FMA in our GEMM core (on this project's 2-core Zen 4 machines: a perfect kernel caps at about
172 GFLOP/s instead of about 333). We therefore compile for the host CPU with its own features plus
`-prefer-256-bit`, so that loops vectorise to 512-bit registers where the CPU has them.

A user who sets NUMBA_CPU_NAME or NUMBA_CPU_FEATURES keeps their choice; NINX_CODEGEN=numba-default skips
it. The chosen target is part of Numba's on-disk cache key, so `cache=True` stays valid.

Threads: ninx computes on Numba's threads and never on OpenBLAS's. OpenBLAS's idle workers keep spinning
after each numpy BLAS call (and after start-up), and on a 2-core machine they stall Numba's parallel loops by
4–20 ms a call; so unless the user set OPENBLAS_NUM_THREADS, numpy's BLAS gets one thread.
"""
import os
import sys


def _host_target():
    """(cpu_name, features) for the host CPU with LLVM's 256-bit preference switched off."""
    import llvmlite.binding as llvm
    try:
        llvm.initialize_native_target()
    except RuntimeError:  # llvmlite versions that initialise on import
        pass
    name = llvm.get_host_cpu_name()
    features = llvm.get_host_cpu_features().flatten()
    if "+avx512f" in features:
        features += ",-prefer-256-bit"
    return name, features


def limit_blas_threads():
    """One OpenBLAS thread unless the user chose, so its spinning workers leave the cores to ninx."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def configure():
    """Set NUMBA_CPU_NAME/NUMBA_CPU_FEATURES for the host unless the user chose or numba is loaded."""
    if os.environ.get("NINX_CODEGEN") == "numba-default":
        return
    if "NUMBA_CPU_NAME" in os.environ or "NUMBA_CPU_FEATURES" in os.environ:
        return
    if "numba" in sys.modules:  # too late to steer code generation; numba keeps its own default
        return
    name, features = _host_target()
    os.environ["NUMBA_CPU_NAME"] = name
    os.environ["NUMBA_CPU_FEATURES"] = features


configure()
limit_blas_threads()
