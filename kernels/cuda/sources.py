"""Every CUDA source with its template instances, gathered from the wrappers that launch them: the one list
read by the emulator's build and by the NVRTC compile test (the GPU and the emulator load each wrapper's
Source as it is first launched) — and the options NVRTC compiles them with."""
import importlib.util
from pathlib import Path

from . import WRAPPERS
from .launch import DIRECTORY


def _cuda_header_options():
    """-I options for the CUDA headers of the nvidia-cuda-runtime-cu12 and nvidia-cuda-nvcc-cu12 wheels, where
    installed: NVRTC brings none, and wmma.cuh's <mma.h> (the runtime wheel's) includes crt/mma.h (the nvcc
    wheel's). Without them CuPy's own CUDA include path serves on a GPU machine."""
    found = []
    for package in ("nvidia.cuda_runtime", "nvidia.cuda_nvcc"):
        try:
            spec = importlib.util.find_spec(package)
        except ModuleNotFoundError:  # no nvidia wheel at all
            continue
        if spec is not None:
            found += [Path(location) / "include" for location in spec.submodule_search_locations]
    return tuple(f"-I{include}" for include in found if include.is_dir())


NVRTC_OPTIONS = ("-std=c++17", f"-I{DIRECTORY}", *_cuda_header_options())
SOURCES = {wrapper.SOURCE.module: wrapper.SOURCE for wrapper in WRAPPERS}
MODULES = {module: source.instances for module, source in SOURCES.items()}


def path(module):
    return SOURCES[module].path
