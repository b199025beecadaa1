"""Datasets: anything with a length and integer indexing; `ArrayDataset` holds whole arrays in memory."""
import numpy as np


class Dataset:
    """A map-style dataset (as in PyTorch): `len(ds)` samples, `ds[i]` is one (image, label) pair.

    `batch(indices)` gathers many samples as (images, labels) numpy arrays; the default stacks `ds[i]` one by
    one, and array-backed datasets override it with one fancy-indexing gather.
    """

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError

    def batch(self, indices):
        samples = [self[int(i)] for i in indices]
        return (np.stack([np.asarray(image) for image, _ in samples]),
                np.array([label for _, label in samples], dtype=np.int64))


class ArrayDataset(Dataset):
    """Images (N, C, H, W) and labels (N,) held as numpy arrays, like PyTorch's TensorDataset."""

    def __init__(self, images, labels):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape {images.shape[:1]} for images {images.shape}, "
                             f"got {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got {labels.dtype}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def batch(self, indices):
        return self.images[indices], self.labels[indices]
