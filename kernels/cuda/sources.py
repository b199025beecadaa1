"""Every CUDA source with its template instances, gathered from the wrappers that launch them: the one list
read by the emulator's build and by the NVRTC compile test (the GPU and the emulator load each wrapper's
Source as it is first launched)."""
from . import WRAPPERS
from .launch import DIRECTORY

NVRTC_OPTIONS = ("-std=c++17", f"-I{DIRECTORY}")
SOURCES = {wrapper.SOURCE.module: wrapper.SOURCE for wrapper in WRAPPERS}
MODULES = {module: source.instances for module, source in SOURCES.items()}


def path(module):
    return SOURCES[module].path
