"""`ninx.save(state_dict, path)` and `ninx.load(path)`: named tensors in a `.safetensors` file, never pickle.

A safetensors file is an 8-byte header length, a JSON header (each name's dtype, shape and byte range, and a
`__metadata__` map of strings) and the raw little-endian bytes; reading it runs no code, so a file from anyone
is safe to open, and PyTorch reads and writes the same format (`safetensors.torch`): a torchvision state dict
saved there loads into the ninx model of the same name (`model.load_state_dict(ninx.load(path))`).

The header keeps the writer's metadata and, under "ninx.order", the names in state-dict order (safetensors
itself orders the tensors by dtype and name), so `load` returns them in the order they were saved.
"""
import json
import os
from collections import OrderedDict

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file
from safetensors.numpy import save as to_bytes

from .atomic import atomic_open
from .tensor import Tensor, tensor

ORDER_KEY = "ninx.order"


def _array(name, value):
    """A C-contiguous numpy array of `value` (np.ascontiguousarray would make a 0-d one 1-d)."""
    if not isinstance(value, (Tensor, np.ndarray)):
        raise TypeError(f"save: {name!r} must be a Tensor or a numpy array, got {type(value).__name__}")
    array = value.numpy() if isinstance(value, Tensor) else value
    return array if array.flags.c_contiguous else array.copy(order="C")


def save(state_dict, path, metadata=None, overwrite=False):
    """Write {name: Tensor or numpy array} to `path` as safetensors; `metadata` is a {str: str} map kept in the
    header (for example the model's name). The file is written atomically, and an existing one is replaced
    only with overwrite=True."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"save: {path} exists; pass overwrite=True to replace it")
    metadata = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("save: metadata must map strings to strings")
    if ORDER_KEY in metadata:
        raise ValueError(f"save: the metadata key {ORDER_KEY!r} is ninx's own")
    arrays = {name: _array(name, value) for name, value in state_dict.items()}
    data = to_bytes(arrays, metadata={**metadata, ORDER_KEY: json.dumps(list(arrays))})
    with atomic_open(path) as f:
        f.write(data)


def _opened(path):
    """safe_open(path), with a truncated or foreign file named in a ValueError."""
    try:
        return safe_open(str(path), framework="numpy")
    except (SafetensorError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from None


def metadata(path):
    """The header's metadata map of a safetensors file (without ninx's order entry)."""
    with _opened(path) as f:
        found = dict(f.metadata() or {})
    found.pop(ORDER_KEY, None)
    return found


def load(path):
    """An OrderedDict {name: Tensor} (on the cpu) of a safetensors file, in the order `save` wrote them (or the
    file's own order for files written elsewhere, torchvision's included)."""
    with _opened(path) as f:
        order = json.loads((f.metadata() or {}).get(ORDER_KEY, "[]"))
    try:
        arrays = load_file(str(path))
    except (SafetensorError, TypeError, ValueError) as error:  # numpy lacks the dtype (bfloat16), or bad data
        raise ValueError(f"{path}: cannot read its tensors ({error})") from None
    names = [n for n in order if n in arrays] + [n for n in arrays if n not in order]
    loaded = OrderedDict()
    for name in names:
        try:
            loaded[name] = tensor(arrays[name], dtype=arrays[name].dtype)
        except TypeError:
            raise ValueError(f"{path}: entry {name!r} is {arrays[name].dtype}; ninx computes in float32, float64, "
                             f"int64 and bool") from None
    return loaded
