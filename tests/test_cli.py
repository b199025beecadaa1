"""The `ninx` command: smoke runs of train/eval/summary on a few batches of digits, the run folder's files,
resume ending bit-identical to an uninterrupted run, options checked before anything is computed, the
data set's recipe, and a diverging run that stops with an error. (Run folders themselves: test_runs.py.)"""
import contextlib
import gzip
import io
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ninx import Tensor, checkpoint
from ninx.cli import main
from ninx.data import digits

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


def test_the_first_lines_name_the_run_folder_the_files_read_and_the_recipe(smoke_run):
    out, lines = smoke_run
    assert lines[0] == f"run folder {out}: reading {digits.PATH}"
    assert lines[1] == ("digits recipe: --optimizer adam --lr 0.003 --weight-decay 0.0 "
                        "(given: --model --epochs --batch-size)")


def test_eval_prints_a_confusion_matrix_and_the_accuracy(smoke_run, capsys):
    out, _ = smoke_run
    assert main(["eval", "--checkpoint", str(out / "checkpoint.npz")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"evaluating {out / 'checkpoint.npz'} on digits: reading {digits.PATH}"
    matrix = np.array([[int(v) for v in line.split()[1:]] for line in lines[3:13]])
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
    assert main(args + ["--out", str(tmp_path / "resumed")]) == 130
    monkeypatch.setattr(checkpoint, "save", save)
    assert "keeps epoch 1" in capsys.readouterr().err
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


@pytest.mark.parametrize("option", [["--model", "nin-32"], ["--data", "mnist"], ["--epochs", "3"], ["--lr", "0.1"],
                                    ["--seed", "4"], ["--limit-batches", "2"]])
def test_resume_refuses_options_that_change_the_run(smoke_run, capsys, option):
    out, _ = smoke_run
    before = (out / "checkpoint.npz").read_bytes()
    assert main(["train", "--out", str(out), "--resume"] + option) == 1
    assert f"--resume cannot change {option[0]}" in capsys.readouterr().err
    assert (out / "checkpoint.npz").read_bytes() == before


def test_resuming_a_finished_run_says_so(smoke_run, capsys):
    out, _ = smoke_run
    before = (out / "checkpoint.npz").read_bytes()
    assert main(["train", "--out", str(out), "--resume", "--model", "nin-digits", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"{out} is finished: all 2 epochs are done" in printed and "epoch   " not in printed
    assert (out / "checkpoint.npz").read_bytes() == before


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


def test_progress_is_one_line_per_epoch_when_stderr_is_not_a_terminal(tmp_path, capsys):
    assert main(SMOKE + ["--epochs", "2", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar
    assert [line[:11] for line in captured.out.splitlines() if line.startswith("epoch")] == ["epoch   1/2",
                                                                                             "epoch   2/2"]


BAD_NUMBERS = [("--epochs", "0"), ("--epochs", "-3"), ("--limit-batches", "0"), ("--seed", "-1"),
               ("--lr", "nan"), ("--lr", "inf"), ("--lr", "-0.1"), ("--lr", "0"), ("--batch-size", "0"),
               ("--weight-decay", "-1"), ("--weight-decay", "nan"), ("--upscale", "0"), ("--upscale", "1000"),
               ("--epochs", "2.5"), ("--lr", "fast")]


@pytest.mark.parametrize("option, value", BAD_NUMBERS)
def test_train_refuses_bad_numbers_naming_the_option(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit:
        main(["train", "--out", str(tmp_path / "run"), option, value])
    assert exit.value.code == 2
    assert f"argument {option}: must be" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, option", [(["eval", "--checkpoint", "c.npz", "--batch-size", "0"], "--batch-size"),
                                          (["eval", "--checkpoint", "c.npz", "--device", "gpu"], "--device"),
                                          (["summary", "--num-classes", "0"], "--num-classes"),
                                          (["train", "--resume", "--overwrite"], "--overwrite")])
def test_eval_and_summary_check_their_options_too(capsys, argv, option):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2 and f"argument {option}" in capsys.readouterr().err


@pytest.mark.parametrize("batches, message", [("3", "the loss is nan at batch 2"),
                                               ("1", "the test loss is nan after epoch 1")])  # its one step blew up
def test_a_diverging_run_stops_with_an_error_and_keeps_no_nan_epoch(tmp_path, capsys, batches, message):
    out = tmp_path / "run"
    assert main(SMOKE + ["--limit-batches", batches, "--epochs", "1", "--optimizer", "sgd", "--lr", "1e30",
                         "--out", str(out)]) == 1
    assert f"training diverged: {message}" in capsys.readouterr().err
    assert not (out / "checkpoint.npz").exists()


def idx_file(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_mnist_gets_its_recipe_and_reads_exactly_the_data_dir(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 8), ("t10k", 4)):
        idx_file(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        idx_file(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8))
    out = tmp_path / "run"
    assert main(["train", "--data", "mnist", "--data-dir", str(tmp_path), "--limit-batches", "1", "--epochs", "1",
                 "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"run folder {out}: reading " + ", ".join(
        str(tmp_path / f"{name}.gz") for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    assert lines[1].startswith("mnist recipe: --model nin-28 --batch-size 128 --optimizer adam") and \
        "(given: --epochs)" in lines[1]
    config = checkpoint.load(str(out / "checkpoint.npz"))["meta"]["config"]
    assert (config["model"], config["batch_size"], config["epochs"]) == ("nin-28", 128, 1)


def test_digits_reads_its_file_from_the_data_dir_or_says_it_is_missing(tmp_path, capsys):
    assert main(SMOKE + ["--epochs", "1", "--data-dir", str(tmp_path), "--out", str(tmp_path / "a")]) == 1
    assert f"--data-dir {tmp_path} holds no digits.csv.gz" in capsys.readouterr().err
    shutil.copy(digits.PATH, tmp_path / "digits.csv.gz")
    assert main(SMOKE + ["--epochs", "1", "--data-dir", str(tmp_path), "--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(f"reading {tmp_path / 'digits.csv.gz'}")
