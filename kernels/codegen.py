"""How ninx's kernels use the CPU, chosen deliberately and set before numba and numpy are imported.

Code generation: which CPU Numba compiles for, told to it through NUMBA_CPU_NAME / NUMBA_CPU_FEATURES (part
of Numba's on-disk cache key, so a kernel cached for one target is never loaded for another). In order:
- the user's own NUMBA_CPU_NAME / NUMBA_CPU_FEATURES win. A name given alone means that CPU with its own
  features (NUMBA_CPU_FEATURES="" is filled in, as Numba itself does for 'generic'); Numba would otherwise
  pair the name with the *host's* features, so NUMBA_CPU_NAME=haswell on an AVX-512 host would still emit
  AVX-512;
- NINX_CPU_TARGET=host (the default), or any CPU name LLVM knows: `haswell` (AVX2 + FMA, 16 ymm),
  `x86-64` (the 128-bit SSE2 baseline, no FMA), `x86-64-v3`, `znver3`, …;
- NINX_CODEGEN=numba-default leaves Numba's own default (the host, LLVM's tuning untouched).
For the host we pass its own features plus `-prefer-256-bit` where it has AVX-512: LLVM tunes AVX-512 CPUs
such as Zen 4 and Skylake-X to prefer 256-bit vectors, which halves every loop it vectorises (our explicit
IR kernels take their width from `target` either way).

Threads: ninx computes on Numba's threads and never on OpenBLAS's. OpenBLAS's idle workers keep spinning
after each numpy BLAS call (and after start-up), and on a 2-core machine they stall Numba's parallel loops by
4–20 ms a call; so unless the user set OPENBLAS_NUM_THREADS, numpy's BLAS gets one thread.
"""
import os
import sys

from .target import host_cpu


def chosen_target(environ):
    """(cpu_name, cpu_features) to give Numba, or None to leave it alone, from the variables above."""
    if "NUMBA_CPU_NAME" in environ or "NUMBA_CPU_FEATURES" in environ:
        name, features = environ.get("NUMBA_CPU_NAME"), environ.get("NUMBA_CPU_FEATURES")
        return (name or host_cpu()[0], "" if features is None else features)
    if environ.get("NINX_CODEGEN") == "numba-default":
        return None
    choice = environ.get("NINX_CPU_TARGET", "host")
    if choice != "host":
        return choice, ""
    name, features = host_cpu()
    if "+avx512f" in features:
        features += ",-prefer-256-bit"
    return name, features


def limit_blas_threads():
    """One OpenBLAS thread unless the user chose, so its spinning workers leave the cores to ninx."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def configure():
    """Set NUMBA_CPU_NAME/NUMBA_CPU_FEATURES as `chosen_target` says, unless numba is already loaded."""
    if "numba" in sys.modules:  # too late to steer code generation; numba keeps what it read
        return
    target = chosen_target(os.environ)
    if target:
        os.environ["NUMBA_CPU_NAME"], os.environ["NUMBA_CPU_FEATURES"] = target


configure()
limit_blas_threads()
