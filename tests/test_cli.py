"""The `ninx` command: smoke runs of train/eval/summary on a few batches of digits, the run folder's files,
and resume ending bit-identical to an uninterrupted run."""
import contextlib
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from ninx import Tensor, checkpoint
from ninx.cli import main

SMOKE = ["train", "--model", "nin-digits", "--data", "digits", "--batch-size", "16", "--limit-batches", "3"]
ROW_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "images_per_s", "seconds"}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A two-epoch run on three batches per epoch: (run folder, its stdout)."""
    out, stdout = tmp_path_factory.mktemp("run"), io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(SMOKE + ["--epochs", "2", "--out", str(out)]) == 0
    return out, stdout.getvalue().splitlines()


def test_help_explains_the_commands():
    done = subprocess.run([sys.executable, "-m", "ninx", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for word in ("train", "eval", "summary", "examples:", "--resume"):
        assert word in done.stdout


def test_train_writes_metrics_curves_and_checkpoint(smoke_run):
    out, lines = smoke_run
    assert re.fullmatch(r"test accuracy: [01]\.\d{4}", lines[-1])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all(ROW_KEYS <= set(r) for r in rows)
    assert lines[-1] == f"test accuracy: {rows[-1]['test_acc']:.4f}"
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = checkpoint.load(str(out / "checkpoint.npz"))
    assert set(state) == {"model", "optim", "scheduler", "meta"} and state["meta"]["history"] == rows


def test_eval_prints_a_confusion_matrix_and_the_accuracy(smoke_run, capsys):
    out, _ = smoke_run
    assert main(["eval", "--checkpoint", str(out / "checkpoint.npz")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    matrix = np.array([[int(v) for v in line.split()[1:]] for line in lines[2:12]])
    assert matrix.shape == (10, 10) and matrix.sum() == 360  # every test digit, once
    assert lines[-1] == f"test accuracy: {np.trace(matrix) / 360:.4f}"


def as_array(value):
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


def test_resume_ends_bit_identical_to_an_uninterrupted_run(tmp_path, monkeypatch, capsys):
    args = SMOKE + ["--epochs", "2", "--optimizer", "adam", "--seed", "5"]
    assert main(args + ["--out", str(tmp_path / "straight")]) == 0
    save = checkpoint.save

    def save_then_die(path, state):
        save(path, state)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        main(args + ["--out", str(tmp_path / "resumed")])
    monkeypatch.setattr(checkpoint, "save", save)
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "resumed"), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "after epoch 1" in printed and "epoch   2/2" in printed and "epoch   1/2" not in printed

    straight, resumed = (checkpoint.load(str(tmp_path / run / "checkpoint.npz")) for run in ("straight", "resumed"))
    for name, value in straight["model"].items():
        assert np.array_equal(value.numpy(), resumed["model"][name].numpy()), name
    for index, entries in straight["optim"]["state"].items():
        for key, value in entries.items():
            assert np.array_equal(as_array(value), as_array(resumed["optim"]["state"][index][key])), (index, key)
    timing = ("seconds", "images_per_s")
    assert ([{k: v for k, v in r.items() if k not in timing} for r in straight["meta"]["history"]]
            == [{k: v for k, v in r.items() if k not in timing} for r in resumed["meta"]["history"]])
    assert straight["meta"]["rng"] == resumed["meta"]["rng"]
    assert straight["meta"]["data_rng"] == resumed["meta"]["data_rng"]


def test_resume_with_another_architecture_is_a_clear_error(smoke_run, capsys):
    out, _ = smoke_run
    assert main(["train", "--out", str(out), "--resume", "--model", "nin-32", "--epochs", "2"]) == 1
    error = capsys.readouterr().err
    assert "does not fit model 'nin-32'" in error and "checkpoint.npz" in error
    assert main(["train", "--out", str(out), "--resume", "--epochs", "3"]) == 1
    assert "cannot change --epochs" in capsys.readouterr().err


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "nothing"), "--resume"]) == 1
    assert "no checkpoint at" in capsys.readouterr().err


def test_summary_prints_the_model_table(capsys):
    assert main(["summary", "--model", "nin-digits", "--input", "2,1,8,8"]) == 0
    assert "Conv2d" in capsys.readouterr().out
    assert main(["summary", "--input", "1,1,224"]) == 1
    assert "N,C,H,W" in capsys.readouterr().err


def test_train_runs_on_every_device(device, tmp_path, capsys):
    """`ninx train --device cuda` works wherever the cuda device exists (the emulation layer in CI)."""
    assert main(SMOKE + ["--epochs", "1", "--device", device, "--out", str(tmp_path)]) == 0
    assert re.fullmatch(r"test accuracy: [01]\.\d{4}", capsys.readouterr().out.strip().splitlines()[-1])
