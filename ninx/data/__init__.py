"""Data: datasets held as arrays, a seeded DataLoader, batch transforms, and the data sets ninx knows."""
from . import transforms
from .catalog import DATASETS, load_dataset, locate_dataset, read_dataset
from .dataset import ArrayDataset, Dataset, TensorDataset
from .loader import DataLoader

__all__ = ["Dataset", "ArrayDataset", "TensorDataset", "DataLoader", "transforms", "DATASETS", "load_dataset",
           "locate_dataset", "read_dataset"]
