"""The GPU section of the benchmark suite stays alive without a GPU: in --quick mode on the emulator every
row is checked against its reference before it is timed, and the device is named."""
import pytest

from ninx_kernels import cuda

pytestmark = pytest.mark.skipif(not cuda.available(), reason="no GPU, and NINX_CUDA_EMULATE is not 1")


def test_the_gpu_section_runs_quick_and_names_its_device():
    from ninx_benchmarks import gpu
    rows, device = gpu.run(quick=True)
    assert device["name"]
    kinds = {row["name"].split()[0] for row in rows}
    assert {"gemm", "tiny", "relu", "copy", "nin-digits"} <= kinds
    assert all(row["ninx"]["median_s"] > 0 for row in rows)
    assert any(row["ninx"].get("images_per_s") for row in rows)


def test_the_sanitizer_program_calls_every_kernel_of_the_table(capsys):
    """gpu_run.sh runs compute-sanitizer on gpu_kernels_once.py; a kernel it left out would go unchecked."""
    from ninx.backend import KERNELS
    from ninx_benchmarks import gpu_kernels_once
    gpu_kernels_once.main()
    assert capsys.readouterr().out.split() == [word for name in KERNELS for word in (f"{name}:", "ok")]
