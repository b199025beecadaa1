"""Run folders are never lost: a run is not overwritten without --overwrite, default folders get a fresh
suffix, a second process cannot write into a folder in use, an unwritable folder fails before any training,
and Ctrl-C keeps the last whole epoch and prints the --resume command."""
import contextlib
import json
import os
import signal
import subprocess
import sys

import pytest

from ninx import checkpoint, training
from ninx.cli import main
from ninx.runs import deferred_interrupt

SMOKE = ["train", "--model", "nin-digits", "--data", "digits", "--batch-size", "16", "--limit-batches", "2"]


def epochs_in(out):
    return [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_default_run_folders_get_a_fresh_suffix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert main(SMOKE + ["--epochs", "1"]) == 0
    first_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("run folder")]
    folders = [os.path.join("runs", "digits-nin-digits"), os.path.join("runs", "digits-nin-digits-2")]
    assert [line.split(":")[0] for line in first_lines] == ["run folder " + folder for folder in folders]
    assert all(epochs_in(tmp_path / folder) == [1] for folder in folders)


def test_a_folder_holding_a_run_is_refused_unless_resumed_or_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(SMOKE + ["--epochs", "1", "--out", str(out)]) == 0
    before = (out / "checkpoint.npz").read_bytes()
    assert main(SMOKE + ["--epochs", "2", "--out", str(out)]) == 1
    assert f"{out} holds a run already: continue it with --resume, replace it with --overwrite" in \
        capsys.readouterr().err
    assert (out / "checkpoint.npz").read_bytes() == before
    assert main(SMOKE + ["--epochs", "2", "--out", str(out), "--overwrite"]) == 0
    assert epochs_in(out) == [1, 2]
    assert checkpoint.load(str(out / "checkpoint.npz"))["meta"]["config"]["epochs"] == 2


@pytest.mark.parametrize("where", ["inside a file", "read-only folder"])
def test_an_unwritable_run_folder_fails_before_any_training(tmp_path, capsys, where):
    if where == "inside a file":
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "run"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        out = tmp_path / "locked"
        out.mkdir()
        out.chmod(0o555)
    assert main(SMOKE + ["--epochs", "1", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"cannot write to run folder {out}" in captured.err
    assert captured.out == ""  # not one epoch was trained


def test_ctrl_c_before_the_first_epoch_leaves_an_overwritten_run_as_it_was(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(SMOKE + ["--epochs", "1", "--out", str(out)]) == 0
    before = {name: (out / name).read_bytes() for name in ("checkpoint.npz", "metrics.jsonl", "curves.png")}

    def ctrl_c(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_epoch", ctrl_c)  # Ctrl-C during the new run's first epoch
    assert main(SMOKE + ["--epochs", "3", "--out", str(out), "--overwrite"]) == 130
    assert capsys.readouterr().err == f"ninx train: interrupted before this run saved an epoch; {out} is as it was\n"
    assert {name: (out / name).read_bytes() for name in before} == before


def start_run(out, cwd):
    """`ninx train` in a process of its own, with stdout and stderr piped (not terminals), and with SIGINT
    handled as in a terminal even where the suite runs as a background job, whose children inherit an ignored
    SIGINT (a handler installed here is reset by exec, an ignored signal is not)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([sys.executable, "-m", "ninx"] + SMOKE + ["--limit-batches", "1", "--epochs",
                                                                         "100000", "--out", str(out)],
                                cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("handler", [signal.default_int_handler, signal.SIG_IGN])
def test_a_ctrl_c_held_back_reaches_the_handler_sigint_had(handler):
    previous = signal.signal(signal.SIGINT, handler)
    try:
        finished = False
        with pytest.raises(KeyboardInterrupt) if handler is signal.default_int_handler else contextlib.nullcontext():
            with deferred_interrupt():
                os.kill(os.getpid(), signal.SIGINT)
                finished = True  # the block is not cut short
        assert finished
        assert signal.getsignal(signal.SIGINT) is handler  # an ignored Ctrl-C stays ignored after the block
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_second_process_is_kept_out_and_ctrl_c_keeps_a_whole_epoch(tmp_path, capsys):
    out = tmp_path / "run"
    first = start_run(out, tmp_path)
    try:
        lines = [first.stdout.readline() for _ in range(3)]
        assert lines[2].startswith("epoch   1/100000"), lines
        # this test's process is the second writer: every way into the folder is refused while it is in use
        for extra in (["--overwrite"], ["--resume"]):
            assert main(["train", "--out", str(out)] + extra) == 1
            error = capsys.readouterr().err
            assert f"{out} is in use by another `ninx train` (process {first.pid})" in error
        first.send_signal(signal.SIGINT)
        rest, errors = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130
    saved = epochs_in(out)
    assert errors.splitlines() == [f"ninx train: interrupted; {out} keeps epoch {saved[-1]}. Continue with: "
                                   f"ninx train --out {out} --resume"]  # one line, no traceback, no progress bar
    epoch_lines = [line for line in (lines + rest.splitlines()) if line.startswith("epoch")]
    assert len(epoch_lines) == len(saved)  # one line per epoch, and every epoch printed was saved whole
    state = checkpoint.load(str(out / "checkpoint.npz"))
    assert [row["epoch"] for row in state["meta"]["history"]] == saved
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]
