"""What each latent learned, in words: named by the generating factor it carries (from the factor-by-latent mutual
information), and the dataset's own sweep of that factor to show beside it.

A latent's share of a factor is MI(factor, latent) / H(factor), the quantity MIG compares (Chen et al. 2018).
A latent is named by its largest share; it "mixes" when a second factor's share is at least MIX_RATIO of the
first; it is "inactive" when its KL says so (or it carries under MIN_SHARE of any factor). Its gap is how much
more of its factor it carries than the next latent does: MIG's per-factor gap when it is the factor's best
latent, negative when another latent carries the factor better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SHARE = 0.05  # below this share of every factor, a latent carries nothing worth a name
MIX_RATIO = 0.5  # a second factor with at least this share of the first makes the latent a mix


@dataclass(frozen=True)
class LatentName:
    dim: int
    name: str  # "posX", "posX + posY", "mixed" (three or more), "inactive" or "no clear factor"
    factors: tuple[str, ...]  # the factors named, largest share first (empty: inactive or unclear)
    share: float  # its largest share of a factor, in [0, 1]
    gap: float  # that share minus the best share of the same factor among the other latents

    @property
    def clean(self) -> bool:
        """One factor, carried better than by any other latent."""
        return len(self.factors) == 1 and self.gap > 0


def name_latents(mi: np.ndarray, factor_names: list[str], entropies: np.ndarray, active: np.ndarray,
                 min_share: float = MIN_SHARE, mix_ratio: float = MIX_RATIO) -> list[LatentName]:
    """One LatentName per latent.

    Args:
        mi: (factors, latents) mutual information in nats.
        entropies: (factors,) each factor's entropy in nats (log of its size for a uniform grid).
        active: (latents,) whether each latent is in use (its KL above the inactive threshold).
    """
    mi = np.asarray(mi, dtype=np.float64)
    share = np.clip(mi / np.maximum(np.asarray(entropies, np.float64)[:, None], 1e-12), 0.0, 1.0)
    names = []
    for d in range(share.shape[1]):
        ranked = np.argsort(-share[:, d])
        top = int(ranked[0])
        best = float(share[top, d])
        others = np.delete(share[top], d)
        gap = best - (float(others.max()) if others.size else 0.0)
        if not bool(active[d]):
            names.append(LatentName(d, "inactive", (), best, gap))
            continue
        if best < min_share:
            names.append(LatentName(d, "no clear factor", (), best, gap))
            continue
        mixed = [int(k) for k in ranked[1:] if share[k, d] >= mix_ratio * best]
        factors = tuple(factor_names[k] for k in [top, *mixed])
        names.append(LatentName(d, " + ".join(factors) if len(factors) <= 2 else "mixed", factors, best, gap))
    return names


def truth_sweep(dataset, start: np.ndarray, factor: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's own sweep of one factor: `start`'s factor indices with `factor` stepped over its grid
    (`steps` evenly spaced values, its whole range), rendered. Returns (images (steps, C, H, W), factors)."""
    k = list(dataset.factor_names).index(factor)
    size = int(dataset.factor_sizes[k])
    factors = np.repeat(np.asarray(start, dtype=np.int64)[None], steps, axis=0)
    factors[:, k] = np.round(np.linspace(0, size - 1, steps)).astype(np.int64)
    return dataset.images_from_factors(factors), factors
