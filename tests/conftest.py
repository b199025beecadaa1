"""Shared test setup: hypothesis profiles and the `device` parameter every conformance test runs over.

Profiles: `ci` (default; fast, derandomised so CI is reproducible) and `nightly` (deep); choose with
NINX_HYPOTHESIS_PROFILE=nightly. Devices: always `cpu`; `cuda` too when a GPU is present or the CUDA
emulation layer is switched on (NINX_CUDA_EMULATE=1, as CI does).
"""
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("nightly", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("NINX_HYPOTHESIS_PROFILE", "ci"))


def available_devices():
    """['cpu'] plus 'cuda' where the CUDA backend can run (a GPU, or the emulation layer)."""
    devices = ["cpu"]
    try:
        from ninx_kernels import cuda
    except ImportError:
        return devices
    if getattr(cuda, "available", lambda: False)():  # kernels/cuda may still be an empty folder
        devices.append("cuda")
    return devices


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", available_devices())
