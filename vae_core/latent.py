"""Pure tensor functions on latent codes: traversals, interpolation, ranking dimensions.

Decoding is always a separate call, so the app, the command-line tools and the tests share these.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .objectives import gaussian_kl_per_dim

RANGE_KINDS = ("prior", "posterior", "data")


def traversal_values(
    num_steps: int,
    kind: str = "prior",
    quantile: float = 0.95,
    mu: torch.Tensor | None = None,
    logvar: torch.Tensor | None = None,
    k: float = 3.0,
    data_means: torch.Tensor | None = None,
    latent_dim: int | None = None,
) -> torch.Tensor:
    """The values each dimension is swept over: (latent_dim, num_steps), one row per dimension.

    Args:
        kind: "prior" spans the central `quantile` of N(0, 1) (e.g. 0.95 -> +-1.96); "posterior" spans
            mu +- k sigma of one image's posterior (mu, logvar: (latent_dim,)); "data" spans the minimum to
            the maximum of the posterior means over a data sample (data_means: (N, latent_dim)).
    """
    if num_steps < 2:
        raise ValueError("a traversal needs at least 2 steps")
    t = torch.linspace(0.0, 1.0, num_steps)
    if kind == "prior":
        if latent_dim is None or not 0 < quantile < 1:
            raise ValueError("prior range needs latent_dim and a quantile in (0, 1)")
        edge = math.sqrt(2) * torch.erfinv(torch.tensor(quantile)).item()
        return (-edge + 2 * edge * t).expand(latent_dim, num_steps).clone()
    if kind == "posterior":
        if mu is None or logvar is None:
            raise ValueError("posterior range needs mu and logvar")
        sigma = torch.exp(0.5 * logvar)
        return (mu - k * sigma)[:, None] + (2 * k * sigma)[:, None] * t[None, :]
    if kind == "data":
        if data_means is None:
            raise ValueError("data range needs data_means")
        low, high = data_means.min(0).values, data_means.max(0).values
        return low[:, None] + (high - low)[:, None] * t[None, :]
    raise ValueError(f"unknown range kind {kind!r}; choose one of {RANGE_KINDS}")


def traverse(z: torch.Tensor, values: torch.Tensor, dims: list[int] | None = None) -> torch.Tensor:
    """Latents of a traversal grid: row r sweeps dimension dims[r] over values[dims[r]], others stay at z.

    Args:
        z: (latent_dim,) the starting point.
        values: (latent_dim, num_steps) from `traversal_values`.
        dims: the dimensions to sweep, in row order (default: all, in index order).

    Returns:
        (len(dims) * num_steps, latent_dim), row-major.
    """
    dims = list(range(z.shape[0])) if dims is None else list(dims)
    steps = values.shape[1]
    grid = z.expand(len(dims), steps, z.shape[0]).clone()
    for row, d in enumerate(dims):
        grid[row, :, d] = values[d]
    return grid.reshape(len(dims) * steps, z.shape[0])


def interpolate(z0: torch.Tensor, z1: torch.Tensor, num_steps: int, method: str = "linear") -> torch.Tensor:
    """Points from z0 to z1 inclusive: (num_steps, latent_dim).

    "linear" is a straight line; "spherical" (slerp) follows the great circle and interpolates the norm, so
    intermediate points keep the typical norm of Gaussian samples instead of shrinking toward the origin.
    """
    if num_steps < 2:
        raise ValueError("interpolation needs at least 2 steps")
    t = torch.linspace(0.0, 1.0, num_steps)[:, None]
    if method == "linear":
        return (1 - t) * z0 + t * z1
    if method != "spherical":
        raise ValueError(f"unknown interpolation {method!r}; choose linear or spherical")
    n0, n1 = z0.norm(), z1.norm()
    if n0 < 1e-8 or n1 < 1e-8:
        return (1 - t) * z0 + t * z1
    u0, u1 = z0 / n0, z1 / n1
    omega = torch.arccos(torch.clamp((u0 * u1).sum(), -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * z0 + t * z1
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return direction * ((1 - t) * n0 + t * n1)


def kl_per_dim_over_data(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL of each dimension over a sample of posteriors: (latent_dim,) in nats."""
    return gaussian_kl_per_dim(mu, logvar).mean(0)


def rank_dims_by_kl(kl_per_dim: torch.Tensor) -> list[int]:
    """Dimension indices, most informative (highest KL) first."""
    return torch.argsort(torch.as_tensor(kl_per_dim), descending=True, stable=True).tolist()


def active_dims(kl_per_dim: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """Boolean (latent_dim,): dimensions carrying more than `threshold` nats. The rest have collapsed to
    the prior and decode to nothing: the posterior collapse a class should see."""
    return torch.as_tensor(kl_per_dim) > threshold


def class_means(means: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, D) the mean latent of each class's points (NaN for a class without points): the attribute
    vectors of labelled data, where no twins exist to learn an edit from (White 2016)."""
    means = np.asarray(means, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.full((classes, means.shape[1]), np.nan)
    for c in range(classes):
        if (labels == c).any():
            out[c] = means[labels == c].mean(0)
    return out


def nearest_class(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The class whose mean is nearest each point of z (n, D) (classes without points never chosen)."""
    d = np.linalg.norm(np.atleast_2d(z)[:, None, :] - centres[None], axis=2)
    return np.where(np.isnan(d), np.inf, d).argmin(1)


def toward_classes(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(classes, D): the point z moved by each class's attribute vector, the target's mean minus the mean of the
    class nearest z (z itself for the nearest class, and for a class without points)."""
    z = np.asarray(z, dtype=np.float64)
    own = centres[nearest_class(z, centres)[0]]
    moved = z[None] + centres - own[None]
    return np.where(np.isnan(moved), z[None], moved).astype(np.float32)


def class_fit(means: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> float:
    """The share of points whose nearest class mean is their own class's: how well the class vectors fit."""
    return float((nearest_class(means, centres) == np.asarray(labels)).mean()) if len(labels) else float("nan")
