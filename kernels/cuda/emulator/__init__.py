"""The CUDA emulation layer: the .cu sources compiled by the host C++ compiler against a header that supplies
the CUDA execution model (cuda_emulator.h, runtime.cpp), launched like cupy's RawKernel on numpy arrays
(launcher.py) inside guard bands (guards.py). With NINX_CUDA_EMULATE=1 the cuda device runs on it."""
import numpy as np

from . import build
from .launcher import EmulatedModule, KernelFault  # noqa: F401


class EmulatedDevice:
    """The cuda device on the CPU: numpy arrays, kernels from the emulator. One block runs at a time, so it
    counts as one multiprocessor."""

    xp = np
    multiprocessors = 1

    def __init__(self):
        build.compiler()  # no compiler: EmulatorUnavailable, naming what is missing
        self.modules = {}

    def function(self, source, instance):
        """`instance` of the launch.Source `source`, built with all its instances on first use."""
        if source.module not in self.modules:
            self.modules[source.module] = EmulatedModule(source.path, source.instances)
        return self.modules[source.module].get_function(instance)
