"""ninx.checkpoint: nested state round-trips exactly through a pickle-free .npz, written atomically."""
import os

import numpy as np
import pytest

import ninx
from ninx import checkpoint


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
    from ninx.models import get_model
    from ninx.training import load_weights
    path = str(tmp_path / "ckpt.npz")
    checkpoint.save(path, {"model": get_model("nin-digits", num_classes=5).state_dict()})
    with pytest.raises(ValueError) as error:
        load_weights(get_model("nin-digits", num_classes=10), checkpoint.load(path)["model"], path, "nin-digits")
    message = str(error.value)
    assert "ckpt.npz does not fit model 'nin-digits'" in message
    assert "weight" in message and "(5, 64, 3, 3)" in message and "(10, 64, 3, 3)" in message
