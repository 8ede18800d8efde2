"""Denoising and sparse autoencoders: input corruption and the sparsity of a code.

A denoising autoencoder (Vincent et al. 2008, 2010) is trained to reconstruct the clean image from a corrupted
copy, so it must learn what images of its data look like rather than copy pixels. Two corruptions:

- `gaussian`: x + level * N(0, 1), clipped to [0, 1] (level is the noise's standard deviation in pixel units);
- `mask`: each pixel (all its channels together) set to 0 with probability `level` (masking noise).

A sparse autoencoder adds an L1 penalty, weight `l1`, on its code (the encoder's mean), pushing most code
entries to zero for any one image. `code_sparsity` measures that scale-free: the fraction of code entries below a
tenth of the image's largest one, so shrinking the whole code (which an L1 penalty also rewards) does not count.
"""

from __future__ import annotations

import numpy as np
import torch

CORRUPTIONS = ("none", "gaussian", "mask")  # the input corruptions of a denoising autoencoder

NEAR_ZERO = 0.1  # an entry is near zero below this fraction of its image's largest |code| entry


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A corrupted copy of images x (B, C, H, W) in [0, 1]; the draws come from `generator`.

    Raises:
        ValueError: an unknown kind or a level outside its range.
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")
    if kind == "none" or level == 0:
        return x
    if kind == "gaussian":
        if not 0 <= level <= 10:
            raise ValueError(f"gaussian noise level (std) must be in [0, 10], got {level}")
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + level * noise).clamp(0, 1)
    if not 0 <= level <= 1:
        raise ValueError(f"mask level (fraction of pixels dropped) must be in [0, 1], got {level}")
    keep = torch.rand((x.shape[0], 1, *x.shape[2:]), generator=generator, device=x.device) >= level
    return x * keep.to(x.dtype)


def corrupt_array(images: np.ndarray, kind: str, level: float, seed: int = 0) -> np.ndarray:
    """`corrupt` for numpy images (B, C, H, W), reproducible from its seed."""
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32)
    return corrupt(x, kind, level, gen).numpy()


def l1_penalty(code: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the code's L1 norm: (B, D) -> scalar."""
    return code.abs().sum(1).mean()


def code_sparsity(code, near_zero: float = NEAR_ZERO) -> float:
    """Fraction of code entries (B, D) whose magnitude is below `near_zero` times their image's largest one."""
    code = np.abs(np.asarray(code, dtype=np.float64))
    if code.size == 0:
        return float("nan")
    peak = code.max(axis=1, keepdims=True)
    return float((code < near_zero * np.maximum(peak, 1e-12)).mean())
