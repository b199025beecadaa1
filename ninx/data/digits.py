"""The 1,797 8×8 handwritten digits shipped with ninx (UCI optdigits, CC BY 4.0; see files/README.md).

The fixed split: shuffle the indices with `numpy.random.default_rng(0).permutation(1797)`, sort them by label
(stable), and send every fifth one (positions 0, 5, 10, …) to the test set. That is a stratified 20% split —
1,437 training and 360 test images, 35–37 test images per digit — the same on every machine.
"""
import os

import numpy as np

from .dataset import ArrayDataset

PATH = os.path.join(os.path.dirname(__file__), "files", "digits.csv.gz")
SPLIT_SEED = 0


def split_indices(labels):
    """(train, test) index arrays of the fixed stratified split described above."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[order[::5]] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def load_digits(path=PATH):
    """(train, test) ArrayDatasets of images (N, 1, 8, 8) float32 in [0, 1] and int64 labels."""
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    images = (table[:, :64].reshape(-1, 1, 8, 8) / 16).astype(np.float32)
    labels = table[:, 64]
    train, test = split_indices(labels)
    return ArrayDataset(images[train], labels[train]), ArrayDataset(images[test], labels[test])
