"""numpy and DLPack interop: ninx.tensor keeps a numpy array's float dtype (as torch.tensor), python numbers
take the default dtype, from_numpy and from_dlpack share memory, and numpy reads a tensor through DLPack."""
import numpy as np
import pytest

import ninx


def test_tensor_keeps_an_arrays_float_dtype_and_python_numbers_take_the_default():
    assert ninx.tensor(np.zeros(3)).dtype == np.float64  # used to become float32 silently
    assert ninx.tensor(np.zeros(3, np.float32)).dtype == np.float32
    assert ninx.tensor(np.float64(2.0)).dtype == np.float64
    assert ninx.tensor([1.0, 2.0]).dtype == np.float32 and ninx.tensor(1.5).dtype == np.float32
    assert ninx.tensor([1, 2]).dtype == np.int64 and ninx.tensor(np.arange(3, dtype=np.int32)).dtype == np.int64
    assert ninx.tensor([True]).dtype == np.bool_


def test_set_default_dtype_changes_numbers_factories_and_new_layers():
    try:
        ninx.set_default_dtype(ninx.float64)
        assert ninx.tensor([1.0]).dtype == np.float64 and ninx.zeros(2).dtype == np.float64
        assert ninx.nn.Conv2d(1, 2, 3).weight.dtype == np.float64 and ninx.nn.BatchNorm2d(2).running_mean.dtype == np.float64
        assert ninx.tensor(np.zeros(2, np.float32)).dtype == np.float32  # an array keeps its own
    finally:
        ninx.set_default_dtype(ninx.float32)
    assert ninx.get_default_dtype() == np.float32 and ninx.nn.Linear(2, 2).weight.dtype == np.float32
    with pytest.raises(TypeError, match="float32 or float64"):
        ninx.set_default_dtype(ninx.int64)


def test_from_numpy_shares_memory_both_ways():
    array = np.arange(6.0).reshape(2, 3)
    t = ninx.from_numpy(array)
    assert t.dtype == np.float64 and np.shares_memory(t.numpy(), array)
    array[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    with ninx.no_grad():
        t[1, 2] = -1.0
    assert array[1, 2] == -1.0
    with pytest.raises(TypeError, match="numpy array"):
        ninx.from_numpy([1.0, 2.0])


def test_dlpack_round_trips_with_numpy_without_copying():
    array = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    t = ninx.from_dlpack(array)
    assert np.shares_memory(t.numpy(), array) and t.shape == (3, 4) and t.dtype == np.float32
    back = np.from_dlpack(t)
    assert np.shares_memory(back, array)
    np.testing.assert_array_equal(back, array)
    assert t.__dlpack_device__()[0] == 1  # kDLCPU
    assert np.asarray(t).dtype == np.float32


def test_dlpack_of_a_tensor_that_requires_grad_needs_detach():
    t = ninx.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        np.from_dlpack(t)
    np.testing.assert_array_equal(np.from_dlpack(t.detach()), [1.0, 2.0])
