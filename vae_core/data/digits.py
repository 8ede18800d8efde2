"""Real handwritten digits with no download: scikit-learn's copy of the UCI optical digits.

`sklearn.datasets.load_digits` ships 1,797 labelled 8x8 digits (grey levels 0 to 16) inside the package. They
are scaled to [0, 1] and brought to the model's size the way MNIST's digits sit in their frame: the digit is
enlarged (bilinear) to three quarters of the frame (8 -> 24 pixels at 32x32, 48 at 64x64) and centred with an
empty border, so a 32x32 digits model sees digits about as large as a padded-MNIST one does. The labels (0-9)
colour the latent map.
"""

from __future__ import annotations

import numpy as np

from .own import MNIST_LABELS, ArrayDataset

NUM_DIGITS = 1797  # what load_digits returns


def fit_small_digits(images: np.ndarray, image_size: int = 32) -> np.ndarray:
    """(N, 8, 8) grey levels 0-16 -> (N, 1, S, S) float32 in [0, 1]: enlarged to 3S/4 and centred."""
    import torch
    import torch.nn.functional as F

    if image_size % 4:
        raise ValueError(f"digits: image size must be a multiple of 4, got {image_size}")
    inner = 3 * image_size // 4
    pad = (image_size - inner) // 2
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 16.0)[:, None]
    x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False)
    x = F.pad(x, (pad, pad, pad, pad))
    return x.clamp(0, 1).numpy()


def load_digits(image_size: int = 32) -> ArrayDataset:
    """All 1,797 digits at the model's size, labelled 0-9; no network access."""
    from sklearn.datasets import load_digits as sklearn_digits

    raw = sklearn_digits()
    images = fit_small_digits(raw.images, image_size)
    return ArrayDataset("digits", images, np.asarray(raw.target, dtype=np.int64), MNIST_LABELS)
