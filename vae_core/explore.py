"""What the explorer computes with a model: decoding batches, per-image ELBO terms, slider ranges and order.

Functions of numpy arrays and a model that keeps the explorer's contract (`vae_core.contract`: encode, decode,
decode_image, encode_decode), no UI: the app's pages call them, and tests/test_explore.py checks them without a
browser.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vae_core.corruption import corrupt_array
from vae_core.latent import active_dims, rank_dims_by_kl, traverse
from vae_core.objectives import gaussian_kl_per_dim, reconstruction_nll

SLIDER_FLOOR = 4.0  # prior +-4 sigma holds all but 6e-5 of N(0, 1)


@torch.inference_mode()
def decode(model, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Decoded images (B, C, H, W) in [0, 1] for latents z: (B, latent_dim)."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    device = next(model.parameters()).device
    out = [model.decode_image(torch.from_numpy(z[i: i + batch_size]).to(device)).cpu().numpy()
           for i in range(0, len(z), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.config.channels, model.config.image_size,
                                                     model.config.image_size), np.float32)


@torch.inference_mode()
def decode_under_each_condition(cvae, z: np.ndarray) -> np.ndarray:
    """A conditional VAE's decoding of one latent point (latent_dim,) under each value of its condition, in one
    batch: (K, C, H, W) in [0, 1], row k under condition k."""
    k = cvae.num_conditions
    device = next(cvae.parameters()).device
    points = torch.from_numpy(np.repeat(np.asarray(z, dtype=np.float32)[None], k, axis=0)).to(device)
    return cvae.decode_image(points, torch.arange(k, device=device)).cpu().numpy()


@torch.inference_mode()
def elbo_terms(model, images: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Per-image ELBO terms with z at the posterior mean (deterministic, so a score does not flicker).

    Args:
        images: (B, C, H, W) in [0, 1].

    Returns:
        dict of recon (B,) nats, kl (B,) nats, kl_per_dim (B, D), mu and logvar (B, D), and
        reconstruction (B, C, H, W) in [0, 1].
    """
    device = next(model.parameters()).device
    cfg = model.config
    parts: dict[str, list] = {k: [] for k in ("recon", "kl", "kl_per_dim", "mu", "logvar", "reconstruction")}
    for start in range(0, len(images), batch_size):
        x = torch.as_tensor(np.ascontiguousarray(images[start: start + batch_size]), dtype=torch.float32).to(device)
        mu, logvar, logits = model.encode_decode(x)  # a conditional VAE: under the condition it infers
        kl = gaussian_kl_per_dim(mu, logvar)
        parts["recon"].append(reconstruction_nll(logits, x, cfg.likelihood, cfg.gaussian_std))
        parts["kl"].append(kl.sum(1))
        parts["kl_per_dim"].append(kl)
        parts["mu"].append(mu)
        parts["logvar"].append(logvar)
        parts["reconstruction"].append(torch.sigmoid(logits))
    return {k: torch.cat(v).float().cpu().numpy() for k, v in parts.items()} if parts["mu"] else {}


def percentile_rank(value: float, reference: np.ndarray) -> float:
    """The percentage of `reference` below `value` (ties count half): 0 to 100."""
    ref = np.asarray(reference, dtype=np.float64)
    if ref.size == 0:
        return float("nan")
    return float(100.0 * ((ref < value).mean() + 0.5 * (ref == value).mean()))


NEIGHBOURS = 32  # the training images an upload's error is compared with: those whose codes are nearest its own
# An upload is near the training data while its error, less what no decoder can remove and less DRAWING_ALLOWANCE
# nats per pixel value, is at most NEAR_DATA_FACTOR times its neighbours' median. The allowance is what a drawn
# outline costs: a drawing is never a rendering, its edges a pixel off here and there, and that costs the same nats
# whatever the model, while a sharper model's own errors shrink (dsprites-vae at recon 17.7 put drawn hearts at 7 to
# 14 times its neighbours' without it, against 4 to 7 at 23.8). 0.025 until dsprites-beta-tcvae reached recon 39.8
# (98,000 steps), which put a hand-made heart at 10.2. Measured at 0.03 (stop 42): hand-made hearts 0 to 9.5 times on
# dsprites-vae, -beta-vae, -ae and -beta-tcvae, the 120 uploads of vae_core.upload_corpus at most about 12 (2 over 10,
# photos), a star, a plus, a word, two shapes in one picture 19.9 to 1,050; drawn faces on faces-beta-tcvae 10.4 to
# 29.7 (on the other faces models 25 and up). dsprites-factorvae (recon 59.7) puts the star at 6.8: close, wrongly.
NEAR_DATA_FACTOR = 10.0
DRAWING_ALLOWANCE = 0.03


def error_floor(images: np.ndarray, likelihood: str, gaussian_std: float = 0.1) -> np.ndarray:
    """The reconstruction error (nats) of a decoder that drew each image exactly, (B,) for images (B, C, H, W) in
    [0, 1]: the part of any error that no model removes (a grey level's own uncertainty under a Bernoulli
    decoder, 0 for black-and-white images; a Gaussian decoder's normalising constant)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    exact = torch.logit(x.clamp(1e-6, 1 - 1e-6))
    return reconstruction_nll(exact, x, likelihood, gaussian_std).numpy()


def near_data_factor(image: np.ndarray, error: float, neighbours: np.ndarray, neighbour_errors: np.ndarray,
                     likelihood: str, gaussian_std: float = 0.1) -> float:
    """How many times the error of `image` (C, H, W) is that of the training images nearest it: its error above
    its floor (`error_floor`) and a drawing's allowance over the median of theirs above their floor, for
    `neighbours` (K, C, H, W) with their errors (K,).

    A drawing is never exactly a training image, so its error is above nearly all of theirs even where the model
    reconstructs it as what it shows; this asks instead whether it costs about what its nearest training images
    do (compare with NEAR_DATA_FACTOR)."""
    own = error - float(error_floor(image[None], likelihood, gaussian_std)[0]) - DRAWING_ALLOWANCE * image.size
    theirs = np.asarray(neighbour_errors, np.float64) - error_floor(neighbours, likelihood, gaussian_std)
    return float(max(own, 0.0) / max(float(np.median(theirs)), 1e-3))


def nearest_rows(mu: np.ndarray, means: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Indices of the k rows of `means` (N, latent_dim) nearest `mu` (latent_dim,), nearest first."""
    distance = ((np.asarray(means, np.float64) - np.asarray(mu, np.float64)) ** 2).sum(1)
    k = min(k, len(distance))
    nearest = np.argpartition(distance, k - 1)[:k] if k else np.zeros(0, np.int64)
    return nearest[np.argsort(distance[nearest])]


def slider_limits(means: np.ndarray | None, latent_dim: int, floor: float = SLIDER_FLOOR) -> np.ndarray:
    """A symmetric slider range per dimension: +-floor, widened to hold every posterior mean of the data.

    Returns:
        (latent_dim,) positive limits, whole numbers.
    """
    limits = np.full(latent_dim, floor)
    if means is not None and len(means):
        widest = np.abs(np.asarray(means, dtype=np.float64)).max(0)
        limits = np.maximum(limits, np.ceil(np.nan_to_num(widest, posinf=floor) * 1.05))
    return limits


def dim_order(kl_per_dim: np.ndarray | None, latent_dim: int, threshold: float = 0.01) -> tuple[list[int], np.ndarray]:
    """Dimensions by KL (highest first) and which are active; index order and all active when KL is unknown."""
    if kl_per_dim is None:
        return list(range(latent_dim)), np.ones(latent_dim, bool)
    kl = torch.as_tensor(np.asarray(kl_per_dim, dtype=np.float32))
    return rank_dims_by_kl(kl), active_dims(kl, threshold).numpy()


def prior_sample(latent_dim: int, seed: int) -> np.ndarray:
    """One draw from N(0, I), reproducible from its seed: (latent_dim,)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(latent_dim, generator=gen).numpy()


def upscale_factor(image_size: int, target_px: int) -> int:
    """The whole-number nearest-neighbour scale that brings an image closest to target_px wide (at least 1)."""
    return max(1, math.floor(target_px / image_size + 0.5))


def traversal_images(model, z: np.ndarray, values, dims: list[int]) -> np.ndarray:
    """Decoded traversal grid: (len(dims) * num_steps, C, H, W), row r sweeping dims[r].

    Args:
        z: (latent_dim,) the starting point; values: (latent_dim, num_steps) from `traversal_values`.
    """
    grid = traverse(torch.as_tensor(np.asarray(z, dtype=np.float32)), torch.as_tensor(values).float(), dims)
    return decode(model, grid.numpy())


def denoise(model, image: np.ndarray, kind: str, level: float, seed: int = 0) -> dict:
    """A corrupted copy of one image (C, H, W) and the model's reconstruction of it (z at the posterior mean).

    Returns:
        dict of noisy and cleaned (C, H, W) in [0, 1], and the mean squared error of each against the clean
        image (noisy_error, cleaned_error), per pixel.
    """
    noisy = corrupt_array(image[None], kind, level, seed)
    cleaned = elbo_terms(model, noisy)["reconstruction"]
    return {
        "noisy": noisy[0],
        "cleaned": cleaned[0],
        "noisy_error": float(((noisy[0] - image) ** 2).mean()),
        "cleaned_error": float(((cleaned[0] - image) ** 2).mean()),
    }
