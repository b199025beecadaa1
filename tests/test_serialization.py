"""ninx.save / ninx.load: a state dict through a .safetensors file and back — names in order, shapes, dtypes
(the int64 0-d num_batches_tracked included), the metadata in the header — and files written by the
safetensors library itself (as PyTorch writes them) load into a model by name."""
from collections import OrderedDict

import numpy as np
import pytest
from safetensors.numpy import save_file

import ninx
from ninx import nn
from ninx.serialization import metadata


def small_model():
    ninx.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))


def test_a_state_dict_round_trips_in_order_with_its_metadata(tmp_path):
    model = small_model()
    model.train()(ninx.tensor(np.random.default_rng(0).standard_normal((5, 2, 6, 6)), dtype=np.float32))  # move the running stats
    path = tmp_path / "model.safetensors"
    ninx.save(model.state_dict(), path, metadata={"model": "tiny", "epochs": "3"})
    loaded = ninx.load(path)
    assert list(loaded) == list(model.state_dict())
    for name, value in model.state_dict().items():
        assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape
        np.testing.assert_array_equal(loaded[name].numpy(), value.numpy())
    assert loaded["1.num_batches_tracked"].shape == () and loaded["1.num_batches_tracked"].item() == 1
    assert metadata(path) == {"model": "tiny", "epochs": "3"}
    fresh = small_model()
    nn.init.zeros_(fresh[0].weight)
    fresh.load_state_dict(loaded)
    x = ninx.tensor(np.ones((1, 2, 6, 6)), dtype=np.float32)
    np.testing.assert_array_equal(fresh.eval()(x).numpy(), model.eval()(x).numpy())


def test_a_file_written_by_safetensors_itself_loads_by_name(tmp_path):
    """As `safetensors.torch.save_file(torchvision_model.state_dict())` writes it: no ninx order in the header."""
    model = small_model()
    arrays = {name: value.numpy().copy() for name, value in model.state_dict().items()}
    path = tmp_path / "foreign.safetensors"
    save_file(arrays, str(path))
    loaded = ninx.load(path)
    assert set(loaded) == set(arrays) and metadata(path) == {}
    small_model().load_state_dict(loaded)


def test_numpy_arrays_save_and_bad_values_or_metadata_are_refused(tmp_path):
    path = tmp_path / "arrays.safetensors"
    ninx.save(OrderedDict([("b", np.arange(6.0).reshape(2, 3).T), ("a", np.zeros(2, np.float32))]), path)
    loaded = ninx.load(path)
    assert list(loaded) == ["b", "a"]
    np.testing.assert_array_equal(loaded["b"].numpy(), np.arange(6.0).reshape(2, 3).T)  # a transposed view
    other = tmp_path / "other.safetensors"
    with pytest.raises(TypeError, match="'w'"):
        ninx.save({"w": [1, 2]}, other)
    with pytest.raises(TypeError, match="metadata"):
        ninx.save({"a": np.zeros(1)}, other, metadata={"epochs": 3})
    with pytest.raises(ValueError, match="ninx.order"):
        ninx.save({"a": np.zeros(1)}, other, metadata={"ninx.order": "[]"})
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ninx.save({"a": np.zeros(1)}, path)  # the file written above is kept
    assert list(ninx.load(path)) == ["b", "a"]
