"""Checkpoints that cannot run code when loaded: one `.npz` file read with `allow_pickle=False`.

`save(path, state)` takes a nested structure of dicts, lists, Tensors, numpy arrays and JSON scalars (the
model's and optimizer's state dicts, RNG states, the epoch …). Every array is stored under its path in the
structure — "model/features.0.weight", "optim/state/0/exp_avg" — and everything else as one JSON document
in the uint8 array "__json__", in which each array appears as {"__array__": its key} (or "__tensor__" for a
Tensor, which comes back as a cpu Tensor). The file is written to a temporary file in the same folder,
fsynced, then renamed over `path`, so a crash leaves either the old checkpoint or the new one, never a torn file.
"""
import json
import os
import zipfile

import numpy as np

from .atomic import atomic_open
from .tensor import Tensor, tensor

JSON_KEY = "__json__"


def _encode(value, key, arrays):
    """`value` as JSON-ready data, moving its arrays into `arrays` under slash-joined keys."""
    if isinstance(value, (Tensor, np.ndarray)) or hasattr(value, "__cuda_array_interface__"):
        if key in arrays:
            raise ValueError(f"checkpoint: two arrays would be stored under one key {key!r}")
        is_tensor = isinstance(value, Tensor)
        arrays[key] = value.numpy() if is_tensor else value.get() if hasattr(value, "get") else value
        return {"__tensor__" if is_tensor else "__array__": key}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__dict__": {k: _encode(v, f"{key}/{k}", arrays) for k, v in value.items()}}
        # optimizer state is keyed by parameter index: keep the keys' types
        return {"__items__": [[k, _encode(v, f"{key}/{k}", arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint: cannot store {key!r} of type {type(value).__name__}")


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensor(arrays[value["__tensor__"]], dtype=arrays[value["__tensor__"]].dtype)
    if "__array__" in value:
        return arrays[value["__array__"]]
    if "__dict__" in value:
        return {k: _decode(v, arrays) for k, v in value["__dict__"].items()}
    return {k: _decode(v, arrays) for k, v in value["__items__"]}


def save(path, state):
    """Write the nested `state` (a dict) to `path` atomically."""
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise TypeError("checkpoint.save: state must be a dict with str keys")
    arrays = {}
    document = {k: _encode(v, k, arrays) for k, v in state.items()}
    if JSON_KEY in arrays:
        raise ValueError(f"checkpoint.save: {JSON_KEY!r} is a reserved key")
    arrays[JSON_KEY] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    with atomic_open(path) as f:
        np.savez(f, **arrays)


def load(path):
    """The nested state saved at `path`; never unpickles anything."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable ninx checkpoint ({e})") from None
    if JSON_KEY not in arrays:
        raise ValueError(f"{path}: not a ninx checkpoint (no {JSON_KEY} entry)")
    try:
        document = json.loads(arrays.pop(JSON_KEY).tobytes().decode())
        if not isinstance(document, dict):
            raise TypeError(f"its document is a {type(document).__name__}, not a dict")
        return {k: _decode(v, arrays) for k, v in document.items()}
    except RecursionError:  # json and _decode recurse once per level: a crafted file can nest thousands deep
        raise ValueError(f"{path}: not a ninx checkpoint (its document is nested too deeply)") from None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a ninx checkpoint (damaged document: {type(e).__name__}: {e})") from None
