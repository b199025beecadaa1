"""Every code-generation target on any machine: the target facts LLVM reports, the override rules, and the
GEMM and convolution conformance tests run again in child processes compiled for AVX2 (haswell), for the
128-bit x86-64 baseline (SSE2, no FMA) and for the host.

A host runs code built for a subset of its own features, so an AVX-512 machine checks all three. A target
the host cannot run is skipped, and the skip says which features are missing.
"""
import pytest

from ninx_kernels import codegen
from ninx_kernels.cpu.gemm_ir import register_tile
from ninx_kernels.target import DEFAULT_L1D_WAYS, Target, cache_sizes, host_cpu, l1d_ways, target_for
from target_children import TARGETS, X86, missing_features, outcome


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


def test_cache_sizes_and_l1d_ways_from_sysfs_and_defaults(tmp_path):
    assert l1d_ways(tmp_path) == DEFAULT_L1D_WAYS
    for index, (level, kind, size, ways) in enumerate([(1, "Instruction", "32K", 8), (1, "Data", "48K", 12),
                                                       (2, "Unified", "1024K", 16)]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for field, value in (("level", level), ("type", kind), ("size", size), ("ways_of_associativity", ways)):
            (folder / field).write_text(f"{value}\n")
    assert cache_sizes(tmp_path) == {"l1d": 48 << 10, "l2": 1 << 20, "l3": 8 << 20}
    assert l1d_ways(tmp_path) == 12


@pytest.mark.parametrize("vector_bytes, registers, fma", [(64, 32, True), (32, 16, True), (16, 16, False),
                                                        (16, 32, True)])
def test_register_tile_fits_the_register_file(vector_bytes, registers, fma):
    """Accumulators, the B vectors of one k step, the broadcast A element and (without FMA) a product fit."""
    mr, vectors = register_tile(Target("any", "", vector_bytes, registers, fma, 1 << 15, 1 << 20, 1 << 23))
    assert mr * vectors + vectors + 1 + (not fma) <= registers
    assert mr >= 4 and vectors >= 1


@pytest.mark.parametrize("choice, vector_bytes, needed", TARGETS)
def test_conformance_on_target(choice, vector_bytes, needed):
    missing = missing_features(needed)
    if missing:
        pytest.skip(f"the host cannot run {choice} code: it lacks {', '.join(missing)}")
    run = outcome(choice)  # started by conftest when collection chose this test
    status, out, err = run.probe
    assert status == 0, err
    width, name = out.split()
    assert name == codegen.chosen_target({"NINX_CPU_TARGET": choice})[0]
    assert vector_bytes is None or int(width) == vector_bytes
    status, out, err = run.conformance
    assert status == 0, out[-4000:] + err[-2000:]
