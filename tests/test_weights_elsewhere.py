"""A run's weights leave ninx: `ninx train` writes model.safetensors beside its checkpoint, `ninx eval` and
`ninx export` take either file, the ONNX file reproduces the model in onnxruntime, and a loader given a
foreign, truncated or mistyped file names the file and the entry. Data-parallel `mpiexec -n 2 ninx train`
writes one run folder and records the world size."""
import json
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import onnx
import onnxruntime
import pytest
from safetensors.numpy import save_file

import ninx
from ninx.cli import main
from ninx.models import get_model
from test_distributed import mpiexec


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits"
    assert main(["train", "--epochs", "2", "--limit-batches", "4", "--out", str(out)]) == 0
    return out


def test_train_writes_the_weights_under_pytorchs_names_with_the_run_in_the_header(run):
    weights = ninx.load(run / "model.safetensors")
    model = get_model("nin-digits")
    assert list(weights) == list(model.state_dict())
    model.load_state_dict(weights)
    header = ninx.serialization.metadata(run / "model.safetensors")
    assert header["model"] == "nin-digits" and header["epoch"] == "2"
    assert json.loads(header["config"])["data"] == "digits" and len(json.loads(header["normalize"])) == 2


def test_eval_gives_the_same_accuracy_from_either_file(run, capsys):
    results = []
    for name in ("checkpoint.npz", "model.safetensors"):
        assert main(["eval", "--checkpoint", str(run / name)]) == 0
        results.append(capsys.readouterr().out.strip().splitlines()[-1])
    assert results[0] == results[1] and results[0].startswith("test accuracy: ")


def test_export_writes_onnx_that_onnxruntime_runs_like_ninx(run, tmp_path, capsys):
    path = tmp_path / "digits.onnx"
    assert main(["export", "--checkpoint", str(run / "model.safetensors"), "--out", str(path)]) == 0
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["ninx.model"] == "nin-digits" and "ninx.normalize" in props
    model = get_model("nin-digits").eval()
    model.load_state_dict(ninx.load(run / "model.safetensors"))
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    with ninx.no_grad():
        expected = model(ninx.tensor(x)).numpy()
    got = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    assert main(["export", "--checkpoint", str(run / "checkpoint.npz"), "--out", str(path)]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_loading_a_foreign_truncated_or_mistyped_file_names_it(run, tmp_path, capsys):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes((run / "model.safetensors").read_bytes()[:300])
    with pytest.raises(ValueError, match="truncated.safetensors"):
        ninx.load(truncated)
    mistyped = tmp_path / "half.safetensors"
    save_file({"0.0.weight": np.zeros((2, 2), np.float16)}, str(mistyped))
    with pytest.raises(ValueError, match=r"half.safetensors.*'0\.0\.weight'.*float16"):
        ninx.load(mistyped)
    foreign = tmp_path / "foreign.safetensors"
    ninx.save(get_model("nin-32").state_dict(), foreign, metadata=ninx.serialization.metadata(run / "model.safetensors"))
    assert main(["eval", "--checkpoint", str(foreign)]) == 1
    assert "foreign.safetensors" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ninx.save({"a": np.zeros(1)}, foreign)


@pytest.mark.skipif(find_spec("mpi4py") is None or mpiexec() is None, reason="mpi4py or mpiexec is not installed")
def test_mpiexec_ninx_train_writes_one_run_and_records_the_world(tmp_path):
    out = tmp_path / "two"
    done = subprocess.run([mpiexec(), "-n", "2", sys.executable, "-m", "ninx", "train", "--epochs", "2",
                           "--limit-batches", "3", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("test accuracy:") == 1  # rank 0 alone prints
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["world_size"] for r in rows] == [2, 2]
    assert (out / "model.safetensors").exists()
