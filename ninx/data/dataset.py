"""Datasets: anything with a length and integer indexing; `ArrayDataset` holds images and labels in memory,
`TensorDataset` any tensors that share their first dimension."""
import numpy as np

from ..tensor import Tensor, tensor


class Dataset:
    """A map-style dataset (as in PyTorch): `len(ds)` samples, `ds[i]` is one (image, label) pair.

    `batch(indices)` gathers many samples as numpy arrays, one per item of a sample — here (images float32,
    labels int64); the default stacks `ds[i]` one by one, and array-backed datasets override it with one
    fancy-indexing gather.
    """

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError

    def batch(self, indices):
        samples = [self[int(i)] for i in indices]
        labels = np.asarray([label for _, label in samples])
        if labels.dtype.kind not in "iu":  # casting 0.7 to class 0 would hide a mistake
            raise TypeError(f"labels must be integer class indices, got {labels.dtype} labels such as "
                            f"{labels.ravel()[:3].tolist()}; a dataset of other targets can be a TensorDataset")
        return (np.stack([np.asarray(image, dtype=np.float32) for image, _ in samples]),
                labels.astype(np.int64, copy=False))


class ArrayDataset(Dataset):
    """Images (N, C, H, W), kept as float32, and integer labels (N,) held as numpy arrays."""

    def __init__(self, images, labels):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape {images.shape[:1]} for images {images.shape}, "
                             f"got {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got {labels.dtype}")
        self.images = images.astype(np.float32, copy=False)
        self.labels = labels.astype(np.int64, copy=False)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def batch(self, indices):
        return self.images[indices], self.labels[indices]


class TensorDataset(Dataset):
    """PyTorch's TensorDataset: `ds[i]` is `tuple(t[i] for t in tensors)`, for tensors that share their first
    dimension; each keeps its dtype, so float targets stay float. Numpy arrays are taken as `ninx.tensor` would.
    The DataLoader batches each tensor along that first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else tensor(t) for t in tensors)
        sizes = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: every tensor needs the same first dimension, got shapes "
                             f"{[tuple(t.shape) for t in self.tensors]}")

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def batch(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        return tuple(t.data[indices if isinstance(t.data, np.ndarray) else t.backend.xp.asarray(indices)]
                     for t in self.tensors)  # gathered where each tensor lives: no host copy of a GPU tensor
