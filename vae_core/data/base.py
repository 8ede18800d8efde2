"""The interface every built-in dataset with known generating factors follows.

A ground-truth dataset is a grid: one axis per factor, `factor_sizes[k]` values on axis k, and one image
per grid point, indexed in C order (the last factor varies fastest), as in the original dSprites file.
Images are rendered from factor class indices on demand, so nothing is stored on disk.
"""

from __future__ import annotations

import numpy as np


class GroundTruthDataset:
    """Base class: subclasses set the class attributes and implement `images_from_factors`."""

    name: str = ""
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    channels: int = 1
    image_size: int = 64
    label_names: tuple[str, ...] = ()

    @property
    def num_images(self) -> int:
        return int(np.prod(self.factor_sizes))

    @property
    def factor_bases(self) -> np.ndarray:
        """Stride of each factor in the flat index: (F,), e.g. dSprites' [737280, 245760, ..., 32, 1]."""
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    @property
    def varying_factors(self) -> list[int]:
        """Indices of the factors with more than one value (the ones metrics score)."""
        return [k for k, size in enumerate(self.factor_sizes) if size > 1]

    def factor_values(self, k: int) -> np.ndarray:
        """The values of factor k on its grid (its class i has value factor_values(k)[i])."""
        return np.arange(self.factor_sizes[k], dtype=np.float64)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n uniformly random grid points: (n, F) int64 class indices."""
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1).astype(np.int64)

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        """(n, F) class indices -> (n,) flat indices; raises ValueError when a class is off the grid."""
        factors = np.asarray(factors, dtype=np.int64)
        self.check_factors(factors)
        return factors @ self.factor_bases

    def index_to_factors(self, index: np.ndarray) -> np.ndarray:
        """(n,) flat indices -> (n, F) class indices."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.num_images):
            raise ValueError(f"index out of range [0, {self.num_images}) for {self.name}")
        return (index[:, None] // self.factor_bases[None, :]) % np.asarray(self.factor_sizes)[None, :]

    def check_factors(self, factors: np.ndarray) -> None:
        if factors.ndim != 2 or factors.shape[1] != len(self.factor_sizes):
            raise ValueError(f"{self.name} factors must be (n, {len(self.factor_sizes)}); got {factors.shape}")
        if factors.size and ((factors < 0).any() or (factors >= np.asarray(self.factor_sizes)).any()):
            raise ValueError(f"{self.name} factor class out of range; sizes are {dict(self.named_sizes())}")

    def named_sizes(self):
        return zip(self.factor_names, self.factor_sizes)

    def images_from_factors(self, factors: np.ndarray) -> np.ndarray:
        """(n, F) class indices -> (n, C, H, W) float32 images in [0, 1]."""
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n random images and their factors: ((n, C, H, W) float32, (n, F) int64)."""
        factors = self.sample_factors(n, rng)
        return self.images_from_factors(factors), factors
