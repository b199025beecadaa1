"""Batch transforms: each maps a float32 batch (N, C, H, W) to a new one, drawing any randomness from the
numpy Generator it is handed, so a seeded loader augments the same way on every run (and after a resume)."""
import numpy as np


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, images, rng):
        for transform in self.transforms:
            images = transform(images, rng)
        return images

    def __repr__(self):
        return f"Compose({self.transforms})"


class Normalize:
    """(x − mean) / std per channel; mean and std are sequences with one value per channel."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
        if self.mean.size != self.std.size or np.any(self.std <= 0):
            raise ValueError(f"Normalize needs one positive std per mean, got mean {mean} and std {std}")

    def __call__(self, images, rng=None):
        if images.shape[1] != self.mean.size:
            raise ValueError(f"Normalize has {self.mean.size} channel(s), images {images.shape} have {images.shape[1]}")
        return (images - self.mean) / self.std

    def __repr__(self):
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"


class RandomCrop:
    """Zero-pad each side by `padding`, then cut a size×size window at a random place in each image."""

    def __init__(self, size, padding=0):
        self.size, self.padding = int(size), int(padding)

    def __call__(self, images, rng):
        p, size = self.padding, self.size
        padded = np.pad(images, ((0, 0), (0, 0), (p, p), (p, p)))
        free_h, free_w = padded.shape[2] - size, padded.shape[3] - size
        if free_h < 0 or free_w < 0:
            raise ValueError(f"RandomCrop({size}, padding={p}) is larger than padded images {padded.shape}")
        windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(2, 3))
        n = len(images)
        top, left = rng.integers(0, free_h + 1, n), rng.integers(0, free_w + 1, n)
        return np.ascontiguousarray(windows[np.arange(n), :, top, left])

    def __repr__(self):
        return f"RandomCrop({self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left–right with probability p."""

    def __init__(self, p=0.5):
        self.p = float(p)

    def __call__(self, images, rng):
        flip = rng.random(len(images)) < self.p
        out = images.copy()
        out[flip] = images[flip][..., ::-1]
        return out

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class Upscale:
    """Nearest-neighbour upscaling by an integer factor (each pixel becomes a factor×factor block)."""

    def __init__(self, factor):
        if int(factor) != factor or factor < 1:
            raise ValueError(f"Upscale factor must be a positive integer, got {factor!r}")
        self.factor = int(factor)

    def __call__(self, images, rng=None):
        if self.factor == 1:
            return images
        return images.repeat(self.factor, axis=2).repeat(self.factor, axis=3)

    def __repr__(self):
        return f"Upscale({self.factor})"
