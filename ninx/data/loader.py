"""`DataLoader`: batches of Tensors — (images float32, labels int64) from an image dataset, one per tensor of
a TensorDataset — shuffled and augmented by one numpy Generator whose state a checkpoint can save and restore
(so a resumed run sees the same batches)."""
import numpy as np

from ..tensor import tensor


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size` on `device`.

    shuffle: a new order every epoch, drawn from `generator` (a numpy Generator, or an int seed for one).
    sampler: an iterable of dataset indices with a length (a `ninx.distributed.DistributedSampler`) that
        gives the order instead; it excludes `shuffle`, as in PyTorch.
    drop_last: skip the last batch when it is smaller than `batch_size`.
    transform: a batch transform (see ninx.data.transforms) of each batch's first array (the images), called
    as transform(images, generator).
    """

    def __init__(self, dataset, batch_size=64, shuffle=False, drop_last=False, transform=None, generator=None,
                 device="cpu", sampler=None):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler is mutually exclusive with shuffle (the sampler orders the data)")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self.generator = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
        self.device = device
        self.sampler = sampler

    def __len__(self):
        n, b = len(self.dataset if self.sampler is None else self.sampler), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64, count=len(self.sampler))
        else:
            n = len(self.dataset)
            order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            first, *rest = self.dataset.batch(order[start:start + self.batch_size])
            if self.transform is not None:
                first = self.transform(first, self.generator)
            yield tuple(tensor(array, dtype=array.dtype, device=self.device) for array in (first, *rest))
