"""The benchmark suite runs end to end in --quick mode and writes its three files. Speed is never asserted."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quick_suite_writes_json_markdown_and_roofline(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    files = {p.suffix: p for p in tmp_path.iterdir()}
    assert set(files) == {".json", ".md", ".png"}
    assert all(p.stem.endswith("-quick") for p in files.values())
    assert files[".png"].read_bytes().startswith(b"\x89PNG")

    results = json.loads(files[".json"].read_text())
    assert {"machine", "config", "roof", "rows"} <= set(results)
    assert {"cpu_model", "cores", "versions", "numba_cpu_name", "openblas_env"} <= set(results["machine"])
    for dtype in ("float32", "float64"):
        assert results["roof"]["peak"][dtype]["gflops"] > 0
    assert results["roof"]["copy"]["gbytes_per_s"] > 0

    rows = results["rows"]
    names = {row["name"] for row in rows if row["section"] == "ops"}
    assert {"conv 1×1 96→96", "conv 3×3 192→192", "conv 5×5 96→192", "maxpool 3/2", "relu", "gap",
            "depthwise 3×3/1 144", "depthwise 3×3/2 576"} <= names
    for row in rows:
        assert {"section", "name", "shape", "pass", "dtype", "flops", "bytes", "ninx", "reference",
                "speed_ratio"} <= set(row)
    for row in (r for r in rows if r["section"] == "ops"):
        assert row["ninx"]["median_s"] > 0 and row["pass"] in ("forward", "backward")
    gemm = [row for row in rows if row["section"] == "gemm"]
    for dtype in ("float32", "float64"):
        names = {row["name"] for row in gemm if row["dtype"] == dtype}
        assert {"256x256x256", "1x1 conv 96->96 @28x28 N=2"} <= names
    assert all(row["reference"]["name"] == "numpy" and row["speed_ratio"] > 0 for row in gemm)
    if importlib.util.find_spec("threadpoolctl"):  # the [bench] extra: numpy's BLAS ran on the 2 threads asked
        assert results["blas"] and all(pool["num_threads"] == 2 for pool in results["blas"])

    table = files[".md"].read_text()
    assert "| section | op |" in table and "conv 5×5 96→192" in table
    assert "ninx/ref" in done.stdout

    # a second run of the same day writes beside the first, never over it
    sys.path.insert(0, str(REPO))
    from benchmarks.report import write
    first = {suffix: path.read_bytes() for suffix, path in files.items()}
    again = {Path(p).suffix: Path(p) for p in write(results, str(tmp_path)).values()}
    assert all(p.stem == files[".json"].stem + "-2" for p in again.values()) and set(again) == set(files)
    assert {suffix: path.read_bytes() for suffix, path in files.items()} == first


def test_ninx_bench_forwards_its_arguments_to_the_suite():
    done = subprocess.run([sys.executable, "-m", "ninx", "bench", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ninx bench") and "--quick" in done.stdout


def test_gemm_ratio_is_the_median_of_the_rounds_ratios():
    """A slow spell that lands on one child moves one round's ratio, not the reported one."""
    sys.path.insert(0, str(REPO))
    from benchmarks import gemm

    def report(*round_times):
        return [{"blas": None, "results": {"float32": {"case": {"median_s": t, "times": [t, t]}}}}
                for t in round_times]

    ninx = gemm._merged(report(1.0, 1.0, 3.0))  # the third round's ninx child hit a busy spell
    numpy = gemm._merged(report(1.1, 1.0, 1.0))
    timing = ninx["results"]["float32"]["case"]
    assert timing["round_medians"] == [1.0, 1.0, 3.0] and timing["repeats"] == 6 and timing["median_s"] == 1.0
    assert gemm._ratio(numpy["results"]["float32"]["case"], timing) == 1.0  # of 1.1, 1.0 and 1/3
