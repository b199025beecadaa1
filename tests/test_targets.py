"""Every code-generation target on any machine: the target facts LLVM reports, the override rules, and the
GEMM and convolution conformance tests run again in child processes compiled for AVX2 (haswell), for the
128-bit x86-64 baseline (SSE2, no FMA) and for the host.

A host runs code built for a subset of its own features, so an AVX-512 machine checks all three. A target
the host cannot run is skipped, and the skip says which features are missing.
"""
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from ninx_kernels import codegen
from ninx_kernels.cpu.gemm_ir import register_tile
from ninx_kernels.target import Target, cache_sizes, host_cpu, target_for

REPO = Path(__file__).resolve().parents[1]
X86 = platform.machine().lower() in ("x86_64", "amd64")
# (NINX_CPU_TARGET, vector bytes it must give, host features it needs)
TARGETS = [("haswell", 32, ("+avx2", "+fma")), ("x86-64", 16, ()), ("host", None, ())]
CONFORMANCE = ["tests/test_gemm.py", "tests/test_conv2d.py", "tests/test_pointwise_conv.py", "tests/test_direct_conv.py"]


def missing_features(needed):
    """The features of `needed` the host lacks, or ['x86-64'] if it is no x86 machine at all."""
    if needed and not X86:
        return ["x86-64"]
    features = host_cpu()[1].split(",")
    return [f for f in needed if f not in features]


@pytest.mark.skipif(not X86, reason="x86 CPU names: the host is not x86-64")
@pytest.mark.parametrize("name, vector_bytes, registers, fma", [
    ("haswell", 32, 16, True), ("x86-64", 16, 16, False), ("skylake-avx512", 64, 32, True)])
def test_llvm_reports_the_named_cpus_vectors(name, vector_bytes, registers, fma):
    target = target_for(name, "")
    assert (target.vector_bytes, target.vector_registers, target.fma) == (vector_bytes, registers, fma)


@pytest.mark.skipif(not X86, reason="x86 feature names: the host is not x86-64")
def test_a_feature_string_without_avx512_narrows_the_host():
    name, features = host_cpu()
    narrowed = ",".join(f.replace("+avx512", "-avx512") for f in features.split(","))
    assert target_for(name, narrowed).vector_bytes <= 32


@pytest.mark.parametrize("environ, chosen", [
    ({"NINX_CPU_TARGET": "haswell"}, ("haswell", "")),
    ({"NINX_CPU_TARGET": "x86-64"}, ("x86-64", "")),
    ({"NUMBA_CPU_NAME": "znver3"}, ("znver3", "")),  # a name alone means that CPU's own features
    ({"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2", "NINX_CPU_TARGET": "x86-64"},
     ("haswell", "+avx2")),  # the user's Numba variables win
    ({"NINX_CODEGEN": "numba-default"}, None),
])
def test_override_rules(environ, chosen):
    assert codegen.chosen_target(environ) == chosen


def test_host_target_keeps_512_bit_vectors_where_it_has_them():
    name, features = codegen.chosen_target({})
    assert name == host_cpu()[0]
    assert ("-prefer-256-bit" in features) == ("+avx512f" in features)


def test_cache_sizes_from_sysfs_and_defaults(tmp_path):
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                                  (2, "Unified", "1024K")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for field, value in (("level", level), ("type", kind), ("size", size)):
            (folder / field).write_text(f"{value}\n")
    assert cache_sizes(tmp_path) == {"l1d": 48 << 10, "l2": 1 << 20, "l3": 8 << 20}


@pytest.mark.parametrize("vector_bytes, registers, fma", [(64, 32, True), (32, 16, True), (16, 16, False),
                                                        (16, 32, True)])
def test_register_tile_fits_the_register_file(vector_bytes, registers, fma):
    """Accumulators, the B vectors of one k step, the broadcast A element and (without FMA) a product fit."""
    mr, vectors = register_tile(Target("any", "", vector_bytes, registers, fma, 1 << 15, 1 << 20, 1 << 23))
    assert mr * vectors + vectors + 1 + (not fma) <= registers
    assert mr >= 4 and vectors >= 1


def child_env(choice):
    """The environment of a child compiled for NINX_CPU_TARGET=choice: Numba's variables set as codegen would
    (so that it holds whatever imports numba first), no CUDA emulation (these runs check the CPU kernels)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NINX_CODEGEN", "NINX_CUDA_EMULATE")}
    env["NINX_CPU_TARGET"] = choice
    env["NUMBA_CPU_NAME"], env["NUMBA_CPU_FEATURES"] = codegen.chosen_target({"NINX_CPU_TARGET": choice})
    return env


@pytest.mark.parametrize("choice, vector_bytes, needed", TARGETS)
def test_conformance_on_target(choice, vector_bytes, needed):
    missing = missing_features(needed)
    if missing:
        pytest.skip(f"the host cannot run {choice} code: it lacks {', '.join(missing)}")
    # the override alone, with nothing imported before ninx, compiles for the target asked
    env = dict(child_env(choice))
    del env["NUMBA_CPU_NAME"], env["NUMBA_CPU_FEATURES"]
    probe = subprocess.run([sys.executable, "-c", "from ninx_kernels.cpu.gemm_ir import TARGET; "
                            "print(TARGET.vector_bytes, TARGET.cpu_name)"],
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    width, name = probe.stdout.split()
    assert name == codegen.chosen_target({"NINX_CPU_TARGET": choice})[0]
    assert vector_bytes is None or int(width) == vector_bytes
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CONFORMANCE],
                          env=child_env(choice), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
