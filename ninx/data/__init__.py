"""Data: datasets held as arrays, a seeded DataLoader, batch transforms, and the data sets ninx knows."""
from . import transforms
from .catalog import DATASETS, load_dataset
from .dataset import ArrayDataset, Dataset
from .loader import DataLoader

__all__ = ["Dataset", "ArrayDataset", "DataLoader", "transforms", "DATASETS", "load_dataset"]
