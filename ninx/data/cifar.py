"""CIFAR-10 from the official python archive (`cifar-10-batches-py`), unpickled without running code.

Each batch is a pickled dict {b"data": uint8 array (N, 3072), b"labels": [int, …], …}. Unpickling an
arbitrary pickle can call any function, so `SafeUnpickler` resolves only the three globals numpy needs to
rebuild an array (`_reconstruct`, `ndarray`, `dtype`) and refuses every other one; the batches are then
checked for shape, dtype and label range.
"""
import io
import os
import pickle
import tarfile

import numpy as np

from .dataset import ArrayDataset
from .download import cache_dir, download

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)

_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's array-rebuilding function, under its current module name
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that admits only numpy's array-rebuilding globals."""

    def find_class(self, module, name):
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: CIFAR batches hold only numpy arrays")


def parse_batch(data, name):
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) from one pickled batch's bytes."""
    try:
        batch = SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:
        raise ValueError(f"{name}: not a CIFAR-10 batch ({e})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{name}: not a CIFAR-10 batch (holds a {type(batch).__name__}, not a dict)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    images, labels = batch.get("data"), batch.get("labels")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        raise ValueError(f"{name}: 'data' must be a uint8 array (N, 3072), got {getattr(images, 'shape', images)!r}")
    if not len(images):
        raise ValueError(f"{name}: holds no images")
    labels = np.asarray(labels)
    if labels.shape != images.shape[:1] or labels.dtype.kind not in "iu" or (labels.size and (
            labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"{name}: 'labels' must be {len(images)} integers in 0–9")
    return images.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_batches(source, names):
    """Raw bytes of the named batches from a `cifar-10-batches-py` folder or the .tar.gz archive."""
    if os.path.isdir(source):
        out = []
        for n in names:
            with open(os.path.join(source, n), "rb") as f:
                out.append((os.path.join(source, n), f.read()))
        return out
    try:
        with tarfile.open(source, "r:gz") as archive:  # members are read in memory, never extracted to disk
            return [(f"{source}:{FOLDER}/{n}", archive.extractfile(f"{FOLDER}/{n}").read()) for n in names]
    except (tarfile.TarError, KeyError, EOFError, OSError) as e:
        raise ValueError(f"{source}: not a complete CIFAR-10 archive ({e})") from None


def find_in(folder):
    """The batches folder (`folder` itself or `folder/cifar-10-batches-py`) or archive in `folder`, else None."""
    for batches in (folder, os.path.join(folder, FOLDER)):
        if os.path.isfile(os.path.join(batches, TEST_BATCHES[0])):
            return batches
    archive = os.path.join(folder, ARCHIVE)
    return archive if os.path.isfile(archive) else None


def locate(data_dir=None):
    """A batches folder or archive: in `data_dir` only when it is given, else in the cache or downloaded."""
    if data_dir is not None:
        found = find_in(data_dir)
        if found is None:
            raise FileNotFoundError(f"cifar10: --data-dir {data_dir} holds no {FOLDER}/ batches and no {ARCHIVE} "
                                    f"(it is read as given, with no fallback to another copy)")
        return found
    cache = os.path.join(cache_dir(), "cifar10")
    found = find_in(cache)
    if found is not None:
        return found
    try:
        return download(URL, os.path.join(cache, ARCHIVE), MD5, timeout=120)
    except OSError as e:
        raise FileNotFoundError(
            f"cifar10: no {FOLDER}/ folder or {ARCHIVE} found in {cache}, and downloading {URL} failed "
            f"({e}). Download that archive into a folder and pass --data-dir FOLDER (or set NINX_DATA_DIR).") from None


def to_dataset(parts):
    """One ArrayDataset of float32 images in [0, 1] from parsed (images, labels) batches."""
    images = np.concatenate([images for images, _ in parts]) / np.float32(255)
    return ArrayDataset(images.astype(np.float32, copy=False), np.concatenate([labels for _, labels in parts]))


def load_cifar10(source):
    """(train, test) ArrayDatasets from a batches folder or archive (see `locate`): 50,000 and 10,000 images
    (N, 3, 32, 32) float32 in [0, 1], int64 labels."""
    names = TRAIN_BATCHES + TEST_BATCHES
    parts = [parse_batch(data, name) for name, data in read_batches(source, names)]
    return to_dataset(parts[:len(TRAIN_BATCHES)]), to_dataset(parts[len(TRAIN_BATCHES):])
