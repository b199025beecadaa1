"""Shared test setup: hypothesis profiles and the `device` parameter every conformance test runs over.

Profiles: `ci` (default; fast, derandomised so CI is reproducible) and `nightly` (deep); choose with
NINX_HYPOTHESIS_PROFILE=nightly. Devices: always `cpu`; `cuda` too when a GPU is present or the CUDA
emulation layer is switched on (NINX_CUDA_EMULATE=1, as CI does), and always when NINX_EXPECT_CUDA=1.
"""
import os
import sys

import ninx_kernels  # noqa: F401  (fixes Numba's code generation before any test imports numba)
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("nightly", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("NINX_HYPOTHESIS_PROFILE", "ci"))


def cuda_expected():
    """NINX_EXPECT_CUDA=1 (the one-shot GPU script sets it): a cuda device that cannot load fails every cuda
    test with the reason, instead of dropping them from the run."""
    return os.environ.get("NINX_EXPECT_CUDA") == "1"


def available_devices():
    """['cpu'] plus 'cuda' where the CUDA backend can run (a GPU, or the emulation layer), or is expected to."""
    from ninx_kernels import cuda
    return ["cpu", "cuda"] if cuda_expected() or cuda.available() else ["cpu"]


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", available_devices())


def pytest_collection_finish(session):
    """Start the per-target conformance children of the collected test_conformance_on_target tests now, on a
    background thread, so that their cold compiles use the core the main suite leaves idle."""
    choices = [item.callspec.params["choice"] for item in session.items
               if getattr(item, "originalname", None) == "test_conformance_on_target"]
    if choices:
        import target_children
        target_children.start(choices)


def pytest_sessionfinish(session):
    if "target_children" in sys.modules:
        sys.modules["target_children"].stop()
