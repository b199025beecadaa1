"""The data sets ninx knows by name, and what a model needs to know about each."""
from collections import namedtuple

from .cifar import load_cifar10
from .digits import load_digits
from .mnist import load_mnist

Info = namedtuple("Info", "channels size classes description")

DATASETS = {
    "digits": Info(1, 8, 10, "1,797 8×8 handwritten digits, shipped with ninx (1,437 train / 360 test)"),
    "mnist": Info(1, 28, 10, "70,000 28×28 handwritten digits (60,000 train / 10,000 test)"),
    "fashion-mnist": Info(1, 28, 10, "70,000 28×28 clothing images in 10 classes (60,000 / 10,000)"),
    "cifar10": Info(3, 32, 10, "60,000 32×32 colour images in 10 classes (50,000 / 10,000)"),
}


def load_dataset(name, data_dir=None):
    """(train, test) ArrayDatasets of the named data set; images float32 in [0, 1], shape (N, C, H, W)."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        return load_mnist(name, data_dir)
    if name == "cifar10":
        return load_cifar10(data_dir)
    raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
