"""`ninx.save(state_dict, path)` and `ninx.load(path)`: named tensors in a `.safetensors` file, never pickle.

A safetensors file is an 8-byte header length, a JSON header (each name's dtype, shape and byte range, and a
`__metadata__` map of strings) and the raw little-endian bytes; reading it runs no code, so a file from anyone
is safe to open, and PyTorch reads and writes the same format (`safetensors.torch`): a torchvision state dict
saved there loads into the ninx model of the same name (`model.load_state_dict(ninx.load(path))`).

The header keeps the writer's metadata and, under "ninx.order", the names in state-dict order (safetensors
itself orders the tensors by dtype and name), so `load` returns them in the order they were saved.
"""
import json
from collections import OrderedDict

import numpy as np
from safetensors.numpy import load_file, save_file
from safetensors import safe_open

from .tensor import Tensor, tensor

ORDER_KEY = "ninx.order"


def _array(name, value):
    """A C-contiguous numpy array of `value` (np.ascontiguousarray would make a 0-d one 1-d)."""
    if not isinstance(value, (Tensor, np.ndarray)):
        raise TypeError(f"save: {name!r} must be a Tensor or a numpy array, got {type(value).__name__}")
    array = value.numpy() if isinstance(value, Tensor) else value
    return array if array.flags.c_contiguous else array.copy(order="C")


def save(state_dict, path, metadata=None):
    """Write {name: Tensor or numpy array} to `path` as safetensors; `metadata` is a {str: str} map kept in the
    header (for example the model's name)."""
    metadata = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("save: metadata must map strings to strings")
    if ORDER_KEY in metadata:
        raise ValueError(f"save: the metadata key {ORDER_KEY!r} is ninx's own")
    arrays = {name: _array(name, value) for name, value in state_dict.items()}
    save_file(arrays, str(path), metadata={**metadata, ORDER_KEY: json.dumps(list(arrays))})


def metadata(path):
    """The header's metadata map of a safetensors file (without ninx's order entry)."""
    with safe_open(str(path), framework="numpy") as f:
        found = dict(f.metadata() or {})
    found.pop(ORDER_KEY, None)
    return found


def load(path):
    """An OrderedDict {name: Tensor} (on the cpu) of a safetensors file, in the order `save` wrote them (or the
    file's own order for files written elsewhere, torchvision's included)."""
    arrays = load_file(str(path))
    with safe_open(str(path), framework="numpy") as f:
        order = json.loads((f.metadata() or {}).get(ORDER_KEY, "[]"))
    names = [n for n in order if n in arrays] + [n for n in arrays if n not in order]
    return OrderedDict((name, tensor(arrays[name], dtype=arrays[name].dtype)) for name in names)
