"""ninx.checkpoint: nested state round-trips exactly through a pickle-free .npz, written atomically; crafted
files (deep nesting, missing entries, bad settings) are refused with a ValueError naming the file."""
import os

import numpy as np
import pytest

import ninx
from ninx import checkpoint
from ninx.cli import main
from ninx.models import get_model
from ninx.recipes import RECIPES
from ninx.training import DEFAULTS, load_run, load_weights


def example_state():
    ninx.manual_seed(3)
    return {
        "model": {"features.0.weight": ninx.randn(4, 1, 3, 3), "features.0.bias": ninx.zeros(4),
                  "bn.num_batches_tracked": ninx.tensor(7)},
        "optim": {"state": {0: {"step": 5, "exp_avg": np.full(3, 0.25, dtype=np.float32)}},
                  "param_groups": [{"lr": 0.1 + 0.2, "betas": (0.9, 0.999), "params": [0, 1], "nesterov": False}]},
        "meta": {"epoch": 2, "rng": ninx.random.get_state(), "note": None, "name": "run"},
    }


def test_nested_state_round_trips_exactly(tmp_path):
    state = example_state()
    path = str(tmp_path / "ckpt.npz")
    checkpoint.save(path, state)
    loaded = checkpoint.load(path)
    for key, value in state["model"].items():
        assert isinstance(loaded["model"][key], ninx.Tensor) and loaded["model"][key].dtype == value.dtype
        np.testing.assert_array_equal(loaded["model"][key].numpy(), value.numpy())
    step = loaded["optim"]["state"][0]
    assert step["step"] == 5 and step["exp_avg"].dtype == np.float32
    np.testing.assert_array_equal(step["exp_avg"], state["optim"]["state"][0]["exp_avg"])
    group = loaded["optim"]["param_groups"][0]
    assert group == {"lr": 0.1 + 0.2, "betas": [0.9, 0.999], "params": [0, 1], "nesterov": False}
    assert loaded["meta"] == state["meta"]  # the RNG state's 128-bit integers included


def test_file_is_a_plain_npz_with_model_and_optim_keys(tmp_path):
    path = str(tmp_path / "ckpt.npz")
    checkpoint.save(path, example_state())
    with np.load(path, allow_pickle=False) as npz:
        assert {"model/features.0.weight", "model/features.0.bias", "optim/state/0/exp_avg",
                checkpoint.JSON_KEY} <= set(npz.files)
        assert npz[checkpoint.JSON_KEY].dtype == np.uint8


def test_saving_an_unsupported_value_fails_before_writing(tmp_path):
    path = tmp_path / "ckpt.npz"
    with pytest.raises(TypeError, match="'meta/hook'.*function"):
        checkpoint.save(str(path), {"meta": {"hook": print}})
    assert not path.exists()


def test_a_crash_mid_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "ckpt.npz")
    checkpoint.save(path, {"meta": {"epoch": 1}, "model": {"w": np.ones(1000)}})

    def crash_midway(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the process is killed while writing

    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"meta": {"epoch": 2}, "model": {"w": np.zeros(1000)}})
    assert checkpoint.load(path)["meta"]["epoch"] == 1
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind


def test_damaged_and_missing_files_are_named(tmp_path):
    path = tmp_path / "ckpt.npz"
    checkpoint.save(str(path), example_state())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="ckpt.npz: not a readable ninx checkpoint"):
        checkpoint.load(str(path))
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoint.load(str(tmp_path / "missing.npz"))


def test_pickled_arrays_are_refused(tmp_path):
    path = str(tmp_path / "evil.npz")
    np.savez(path, **{checkpoint.JSON_KEY: np.frombuffer(b'{"model": {"__array__": "x"}}', np.uint8),
                      "x": np.array([print], dtype=object)})
    with pytest.raises(ValueError, match="evil.npz: not a readable ninx checkpoint"):
        checkpoint.load(path)


def test_weights_of_another_architecture_name_the_tensor_and_both_shapes(tmp_path):
    path = str(tmp_path / "ckpt.npz")
    checkpoint.save(path, {"model": get_model("nin-digits", num_classes=5).state_dict()})
    with pytest.raises(ValueError) as error:
        load_weights(get_model("nin-digits", num_classes=10), checkpoint.load(path)["model"], path, "nin-digits")
    message = str(error.value)
    assert "ckpt.npz does not fit model 'nin-digits'" in message
    assert "weight" in message and "(5, 64, 3, 3)" in message and "(10, 64, 3, 3)" in message


def crafted(path, document, **arrays):
    """A checkpoint file holding `document` (JSON text) as written by hand, not by checkpoint.save."""
    np.savez(path, **{checkpoint.JSON_KEY: np.frombuffer(document.encode(), np.uint8)}, **arrays)
    return path


@pytest.mark.parametrize("document", ['{"meta": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                      '{"meta": ' + '{"__dict__": {"a": ' * 5_000 + "1" + "}}" * 5_000 + "}"])
def test_deeply_nested_documents_are_refused_naming_the_file(tmp_path, document):
    path = crafted(str(tmp_path / "deep.npz"), document)
    with pytest.raises(ValueError, match="deep.npz: not a ninx checkpoint .*nested too deeply"):
        checkpoint.load(path)


@pytest.mark.parametrize("document", ['{"model": {"__array__": "absent"}}', '{"meta": {"__items__": 5}}', "[1, 2]",
                                      '{"meta": {"x": 1}', '{"meta": {"__other__": 1}}'])
def test_malformed_documents_are_refused_naming_the_file(tmp_path, document):
    path = crafted(str(tmp_path / "odd.npz"), document)
    with pytest.raises(ValueError, match="odd.npz: not a ninx checkpoint"):
        checkpoint.load(path)


def train_checkpoint(path, **meta_changes):
    """A checkpoint as `ninx train` writes it (one epoch of a tiny run), with `meta_changes` applied."""
    config = {**DEFAULTS, **RECIPES["digits"]}
    meta = {"config": config, "normalize": [[0.3], [0.4]], "rng": ninx.random.get_state(),
            "data_rng": np.random.default_rng(0).bit_generator.state, "history": [{"epoch": 1, "test_acc": 0.5}]}
    for key, value in meta_changes.items():
        if value is None:
            del meta[key]
        else:
            meta[key] = value
    checkpoint.save(path, {"model": get_model("nin-digits").state_dict(), "optim": {}, "scheduler": {},
                           "meta": meta})
    return path


@pytest.mark.parametrize("changes, message", [
    ({"config": None}, "no valid config entry"),
    ({"history": None}, "no valid history entry"),
    ({"config": {"model": "nin-digits"}}, "configuration must have the keys"),
    ({"normalize": "zero"}, "normalisation must be"),
    ({"history": [{"epoch": 1}]}, "metrics history"),
])
def test_a_checkpoint_missing_what_ninx_train_wrote_is_refused_naming_it(tmp_path, changes, message):
    path = train_checkpoint(str(tmp_path / "run.npz"), **changes)
    with pytest.raises(ValueError, match=f"run.npz: .*{message}"):
        load_run(path)


@pytest.mark.parametrize("key, value", [("epochs", -3), ("lr", float("nan")), ("model", "resnet"),
                                        ("batch_size", "32"), ("seed", True)])
def test_a_checkpoint_with_a_bad_setting_is_refused_naming_the_file_and_setting(tmp_path, key, value):
    path = train_checkpoint(str(tmp_path / "run.npz"), config={**DEFAULTS, **RECIPES["digits"], key: value})
    with pytest.raises(ValueError, match=f"run.npz: {key}"):
        load_run(path)


def test_the_cli_reports_a_checkpoint_without_meta_in_one_line(tmp_path, capsys):
    path = str(tmp_path / "checkpoint.npz")
    checkpoint.save(path, {"model": {"w": np.zeros(3)}})
    assert main(["eval", "--checkpoint", path]) == 1
    assert main(["train", "--out", str(tmp_path), "--resume"]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(f"{path}: not a checkpoint of `ninx train`" in e for e in errors)
