"""MNIST and Fashion-MNIST: the four standard IDX files, found on disk or downloaded once and verified.

Given a `data_dir`, the four files (raw or .gz) are read from that folder and nowhere else. Without one, the
search goes through Debian's install location (`apt-get install dataset-fashion-mnist` puts Fashion-MNIST in
/usr/share/datasets/fashion-mnist), then the cache (`ninx.data.download.cache_dir()/<name>`); when neither
holds all four files, they are downloaded from the official source into the cache and kept only if their
MD5 matches the published one.
"""
import os

import numpy as np

from .dataset import ArrayDataset
from .download import cache_dir, download
from .idx import read_idx

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

SOURCES = {
    "mnist": {
        "urls": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        "md5": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
        "system_dirs": (),
    },
    "fashion-mnist": {
        "urls": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        "md5": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
        "system_dirs": ("/usr/share/datasets/fashion-mnist",),
    },
}


def find_file(folder, name):
    """`folder/name.gz` or `folder/name`, whichever exists, else None."""
    for candidate in (os.path.join(folder, name + ".gz"), os.path.join(folder, name)):
        if os.path.isfile(candidate):
            return candidate
    return None


def locate(name, data_dir=None):
    """Paths of the four files of data set `name`, in FILES order: from `data_dir` only when it is given,
    else found on the system or in the cache, or downloaded."""
    if data_dir is not None:
        if not os.path.isdir(data_dir):
            raise FileNotFoundError(f"{name}: --data-dir {data_dir} is not a folder")
        paths = [find_file(data_dir, f) for f in FILES]
        if not all(paths):
            missing = ", ".join(f + "[.gz]" for f, path in zip(FILES, paths) if path is None)
            raise FileNotFoundError(f"{name}: --data-dir {data_dir} lacks {missing} (it is read as given, "
                                    f"with no fallback to another copy)")
        return paths
    source = SOURCES[name]
    cache = os.path.join(cache_dir(), name)
    folders = list(source["system_dirs"]) + [cache]
    for folder in folders:
        paths = [find_file(folder, f) for f in FILES]
        if all(paths):
            return paths
    errors = []
    for base in source["urls"]:
        try:
            return [find_file(cache, f) or download(base + f + ".gz", os.path.join(cache, f + ".gz"), md5)
                    for f, md5 in zip(FILES, source["md5"])]
        except OSError as e:
            errors.append(f"{base}: {e}")
    hint = " or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
    raise FileNotFoundError(
        f"{name}: the files {', '.join(f + '[.gz]' for f in FILES)} are in none of {folders}, and downloading "
        f"them failed ({'; '.join(errors)}). Download them from {source['urls'][0]} into a folder and pass "
        f"--data-dir FOLDER (or set NINX_DATA_DIR){hint}.")


def load_pair(images_path, labels_path):
    """An ArrayDataset of (N, 1, 28, 28) float32 images in [0, 1] and int64 labels, checked for consistency."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{labels_path}: expected uint8 labels (N,), got {labels.dtype} {labels.shape}")
    if images.shape[1:] != (28, 28) or not len(images):
        raise ValueError(f"{images_path}: expected 28×28 images (N, 28, 28) with N ≥ 1, got shape {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be 0–9, found {labels.max()}")
    return ArrayDataset((images[:, None] / np.float32(255)).astype(np.float32, copy=False), labels)


def load_mnist(paths):
    """(train, test) ArrayDatasets of MNIST or Fashion-MNIST from its four files, in FILES order."""
    train_images, train_labels, test_images, test_labels = paths
    return load_pair(train_images, train_labels), load_pair(test_images, test_labels)
