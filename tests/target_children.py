"""The conformance runs of tests/test_targets.py: for each code-generation target, a probe that the override
alone compiles for it, then the GEMM and convolution tests in a child process compiled for it.

Each run is mostly Numba compiling every kernel cold for its target (about 4 min on a 2-core Zen 3), while
the main suite uses about one core. So conftest starts the runs as soon as collection has chosen them, one
after the other on a background thread, and each test only waits for its run's outcome.
"""
import os
import platform
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import NamedTuple

from ninx_kernels import codegen
from ninx_kernels.target import host_cpu

REPO = Path(__file__).resolve().parents[1]
X86 = platform.machine().lower() in ("x86_64", "amd64")
# (NINX_CPU_TARGET, vector bytes it must give, host features it needs)
TARGETS = [("haswell", 32, ("+avx2", "+fma")), ("x86-64", 16, ()), ("host", None, ())]
CONFORMANCE = ["tests/test_gemm.py", "tests/test_conv2d.py", "tests/test_pointwise_conv.py",
               "tests/test_direct_conv.py"]
TIMEOUT = 900  # seconds for one child's conformance run


def missing_features(needed):
    """The features of `needed` the host lacks, or ['x86-64'] if it is no x86 machine at all."""
    if needed and not X86:
        return ["x86-64"]
    features = host_cpu()[1].split(",")
    return [f for f in needed if f not in features]


def child_env(choice):
    """The environment of a child compiled for NINX_CPU_TARGET=choice: Numba's variables set as codegen would
    (so that it holds whatever imports numba first), no CUDA emulation (these runs check the CPU kernels)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NINX_CODEGEN", "NINX_CUDA_EMULATE")}
    env["NINX_CPU_TARGET"] = choice
    env["NUMBA_CPU_NAME"], env["NUMBA_CPU_FEATURES"] = codegen.chosen_target({"NINX_CPU_TARGET": choice})
    return env


class Outcome(NamedTuple):
    """What one target's run gave: the probe's (exit status, stdout, stderr), then the conformance child's."""
    probe: tuple
    conformance: tuple


_runs = {}  # choice -> Future of its Outcome
_current = []  # the child process now running, for `stop`


def _run_child(args, env, timeout):
    process = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _current[:] = [process]
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        err += f"\n(killed after {timeout} s)"
    return process.returncode, out, err


def _run(choice):
    # the override alone, with nothing imported before ninx, compiles for the target asked
    env = child_env(choice)
    del env["NUMBA_CPU_NAME"], env["NUMBA_CPU_FEATURES"]
    probe = _run_child([sys.executable, "-c", "from ninx_kernels.cpu.gemm_ir import TARGET; "
                        "print(TARGET.vector_bytes, TARGET.cpu_name)"], env, 120)
    conformance = _run_child([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CONFORMANCE],
                             child_env(choice), TIMEOUT)
    return Outcome(probe, conformance)


def _run_all(choices):
    for choice in choices:
        try:
            _runs[choice].set_result(_run(choice))
        except BaseException as error:  # noqa: BLE001 (handed to the waiting test, which raises it)
            _runs[choice].set_exception(error)


def start(choices):
    """Begin the runs of `choices` (those the host can run, not yet started) on one background thread."""
    needed = {choice: features for choice, _, features in TARGETS}
    todo = [c for c in dict.fromkeys(choices) if c not in _runs and not missing_features(needed[c])]
    for choice in todo:
        _runs[choice] = Future()
    if todo:
        threading.Thread(target=_run_all, args=(todo,), daemon=True, name="target-children").start()


def outcome(choice):
    """The Outcome of `choice`'s run, starting it first if nothing had."""
    start([choice])
    return _runs[choice].result(timeout=len(TARGETS) * (TIMEOUT + 120))  # it may wait behind the others


def stop():
    """Kill the child still running, if any (the session is ending)."""
    for process in _current:
        if process.poll() is None:
            process.kill()
