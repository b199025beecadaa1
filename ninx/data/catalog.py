"""The data sets ninx knows by name, and what a model needs to know about each."""
from collections import namedtuple

from . import cifar, digits, mnist

Info = namedtuple("Info", "channels size classes description")

DATASETS = {
    "digits": Info(1, 8, 10, "1,797 8×8 handwritten digits, shipped with ninx (1,437 train / 360 test)"),
    "mnist": Info(1, 28, 10, "70,000 28×28 handwritten digits (60,000 train / 10,000 test)"),
    "fashion-mnist": Info(1, 28, 10, "70,000 28×28 clothing images in 10 classes (60,000 / 10,000)"),
    "cifar10": Info(3, 32, 10, "60,000 32×32 colour images in 10 classes (50,000 / 10,000)"),
}


def unknown(name):
    """The error for a data-set name that ninx does not know."""
    return ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


def locate_dataset(name, data_dir=None):
    """The files data set `name` is read from, as a tuple of paths: exactly from `data_dir` when it is given
    (a FileNotFoundError says what it lacks), otherwise from where ninx finds or downloads them."""
    if name == "digits":
        return (digits.locate(data_dir),)
    if name in ("mnist", "fashion-mnist"):
        return tuple(mnist.locate(name, data_dir))
    if name == "cifar10":
        return (cifar.locate(data_dir),)
    raise unknown(name)


def read_dataset(name, files):
    """(train, test) ArrayDatasets of data set `name` from its `files` (as `locate_dataset` returns them)."""
    if name == "digits":
        return digits.load_digits(*files)
    if name in ("mnist", "fashion-mnist"):
        return mnist.load_mnist(files)
    if name == "cifar10":
        return cifar.load_cifar10(*files)
    raise unknown(name)


def load_dataset(name, data_dir=None):
    """(train, test) ArrayDatasets of the named data set; images float32 in [0, 1], shape (N, C, H, W)."""
    return read_dataset(name, locate_dataset(name, data_dir))
