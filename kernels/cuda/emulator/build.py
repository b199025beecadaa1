"""Compiles the CUDA sources with the host C++ compiler into shared libraries the launcher loads.

Two kinds of library, each cached on disk under a hash of everything that goes into it (the sources and
headers of kernels/cuda, the compiler's version, the flags), so a process compiles only what changed:

    the runtime   runtime.cpp — the scheduler that plays a block's threads (one library per process)
    a module      one .cu file and an entry for each of its name expressions (module.h), like one
                  cupy.RawModule; the template instances are the name expressions themselves

The cache is NINX_CUDA_EMULATOR_CACHE, else ~/.cache/ninx/cuda-emulator. The compiler is $CXX, else g++.
"""
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

EMULATOR = Path(__file__).resolve().parent
CUDA_SOURCES = EMULATOR.parent
FLAGS = ["-std=c++20", "-O2", "-shared", "-fPIC", "-pthread", "-fdata-sections"]  # sections: see shared.ld


class EmulatorUnavailable(RuntimeError):
    """No C++ compiler, so the CUDA kernels cannot be built for the emulator."""


def compiler():
    """Path of the C++ compiler ($CXX, else g++); EmulatorUnavailable names what is missing."""
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise EmulatorUnavailable(f"the CUDA emulation layer (NINX_CUDA_EMULATE=1) compiles the CUDA kernels with "
                                  f"a host C++ compiler, and {name!r} was not found on PATH (set CXX to choose one)")
    return path


@functools.cache
def _fingerprint():
    """Hash of the compiler's version, the flags and every source and header of kernels/cuda."""
    digest = hashlib.sha256()
    digest.update(subprocess.run([compiler(), "--version"], capture_output=True, check=True).stdout)
    digest.update(" ".join(FLAGS).encode())
    for path in sorted(CUDA_SOURCES.rglob("*")):
        if path.suffix in (".cu", ".cuh", ".h", ".cpp", ".ld"):
            digest.update(path.relative_to(CUDA_SOURCES).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def cache_directory():
    return Path(os.environ.get("NINX_CUDA_EMULATOR_CACHE") or Path.home() / ".cache" / "ninx" / "cuda-emulator")


def _compile(name, text, flags, identity):
    """The library built from C++ `text`, compiled now unless the cache holds it; `identity` is what decides
    its content besides the sources of kernels/cuda, the compiler and the flags."""
    key = hashlib.sha256((_fingerprint() + " ".join(flags) + identity).encode()).hexdigest()[:20]
    library = cache_directory() / f"{name}-{key}.so"
    if library.exists():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as work:
        source, built = Path(work) / f"{name}.cpp", Path(work) / f"{name}.so"
        source.write_text(text)
        result = subprocess.run([compiler(), *FLAGS, *flags, "-o", str(built), str(source)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"compiling {name} for the CUDA emulator failed:\n{result.stderr}")
        os.replace(built, library)  # atomic: a process compiling the same library alongside sees all or nothing
    return library


def runtime_library():
    return _compile("runtime", (EMULATOR / "runtime.cpp").read_text(), [f"-I{EMULATOR}"], "runtime")


def module_library(source, name_expressions):
    """The library of the .cu file `source`, with one entry per name expression (e.g. 'relu<float>').

    A source outside kernels/cuda (a test's) is identified by its content, wherever it lies; headers it
    includes from beside it are not."""
    source = Path(source).resolve()
    entries = ",\n".join(f'    NINX_EMU_KERNEL("{name}", {name})' for name in name_expressions)
    text = (f'#include "{source}"\n#include "emulator/module.h"\n\n'
            f"const ninx_emu::Entry ninx_emu::entries[] = {{\n{entries}\n}};\n"
            f"const int ninx_emu::entry_count = {len(name_expressions)};\n")
    identity = hashlib.sha256(source.read_bytes()).hexdigest() + "\n" + "\n".join(name_expressions)
    return _compile(source.stem, text, [f"-I{CUDA_SOURCES}", f"-Wl,-T,{EMULATOR / 'shared.ld'}"], identity)
