"""The 1,797 8×8 handwritten digits shipped with ninx (UCI optdigits, CC BY 4.0; see files/README.md).

The fixed split: shuffle the indices with `numpy.random.default_rng(0).permutation(1797)`, sort them by label
(stable), and send every fifth one (positions 0, 5, 10, …) to the test set. That is a stratified 20% split —
1,437 training and 360 test images, 35–37 test images per digit — the same on every machine.
"""
import os

import numpy as np

from .dataset import ArrayDataset

FILE = "digits.csv.gz"
PATH = os.path.join(os.path.dirname(__file__), "files", FILE)
SPLIT_SEED = 0


def locate(data_dir=None):
    """The digits file: the bundled copy, or `data_dir/digits.csv.gz` when a folder is given."""
    if data_dir is None:
        return PATH
    path = os.path.join(data_dir, FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"digits: --data-dir {data_dir} holds no {FILE} (digits ships with ninx: leave "
                                f"out --data-dir to read the bundled copy)")
    return path


def split_indices(labels):
    """(train, test) index arrays of the fixed stratified split described above."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[order[::5]] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def load_digits(path=PATH):
    """(train, test) ArrayDatasets of images (N, 1, 8, 8) float32 in [0, 1] and int64 labels, from a CSV file
    of 64 pixel values 0–16 and a label 0–9 per line."""
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: not a digits table ({e})") from None
    if table.shape[1] != 65 or len(table) < 2 or table.min() < 0 or table[:, :64].max() > 16 or table[:, 64].max() > 9:
        raise ValueError(f"{path}: expected lines of 64 pixel values 0–16 and a label 0–9 (at least 2 lines, so "
                         f"that both splits hold one), got a table of shape {table.shape}")
    images = (table[:, :64].reshape(-1, 1, 8, 8) / 16).astype(np.float32)
    labels = table[:, 64]
    train, test = split_indices(labels)
    return ArrayDataset(images[train], labels[train]), ArrayDataset(images[test], labels[test])
