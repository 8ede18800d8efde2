"""The learned-manifold figure of a 2-D latent (Kingma and Welling 2014, figure 4).

An n x n grid of latents at the prior's quantiles: column j has z_0 = Phi^-1((j + 0.5) / n), row i has
z_1 = Phi^-1(1 - (i + 0.5) / n) (higher z_1 at the top, as on a plot), so every cell holds the same prior mass
and the figure shows the whole prior, not a square of it. Decoding the grid shows how the model lays its data
out in its latent plane.
"""

from __future__ import annotations

import numpy as np

# the standard normal cdf and its inverse (scipy.stats costs 1 s to import)
from scipy.special import ndtr, ndtri

MAX_GRID = 40  # cells per side; 1,600 decodes


def manifold_latents(n: int = 15) -> np.ndarray:
    """The grid's latents: (n, n, 2) float32, [row, column] -> (z_0, z_1).

    Raises:
        ValueError: n outside [2, MAX_GRID].
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= MAX_GRID:
        raise ValueError(f"the manifold grid needs 2 to {MAX_GRID} cells per side, got {n!r}")
    q = (np.arange(n) + 0.5) / n
    z0 = ndtri(q)
    z1 = ndtri(1 - q)
    grid = np.stack(np.meshgrid(z0, z1, indexing="xy"), axis=-1)  # grid[i, j] = (z0[j], z1[i])
    return grid.astype(np.float32)


def manifold_grid(model, n: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Decoded manifold of a model with a 2-D latent.

    Returns:
        images (n * n, C, H, W) in [0, 1], row-major (top row first), and the latents (n, n, 2).

    Raises:
        ValueError: the model's latent is not 2-D, or n is out of range.
    """
    from .explore import decode

    if model.config.latent_dim != 2:
        raise ValueError(f"the learned-manifold figure needs a 2-D latent; this model has "
                         f"{model.config.latent_dim} dimensions")
    latents = manifold_latents(n)
    return decode(model, latents.reshape(-1, 2)), latents


def grid_position(z, n: int) -> tuple[float, float]:
    """Where a latent point (z_0, z_1) falls on the n x n figure, in cell units: (column, row), each in
    [-0.5, n - 0.5]; cell (i, j) is centred on (j, i). Points beyond the prior's extreme quantiles sit at the edge.
    """
    z = np.asarray(z, dtype=np.float64).reshape(-1)[:2]
    col = ndtr(z[0]) * n - 0.5
    row = (1 - ndtr(z[1])) * n - 0.5
    return float(np.clip(col, -0.5, n - 0.5)), float(np.clip(row, -0.5, n - 0.5))
