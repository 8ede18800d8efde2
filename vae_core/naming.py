"""What each latent learned, in words: named by the generating factor it carries (from the factor-by-latent mutual
information), and the dataset's own sweep of that factor to show beside it.

A latent's share of a factor is MI(factor, latent) / H(factor), the quantity MIG compares (Chen et al. 2018). Students
read a slider's name as the truth, so a name claims no more than the share shows, and says the share:

- "posX 66%": it carries a clear share (at least CLEAR_SHARE) of one factor, more than any other latent does;
- "also posX 30%": a clear share, but another latent carries more of that factor (no two sliders share a bare name);
- "mixed: skin_tone 94% + mouth 44%": a second factor holds at least MIX_RATIO of the first's share (and MIN_SECOND);
- "weak: posY 14%": its largest share is below CLEAR_SHARE, so no factor is claimed;
- "no clear factor" (under MIN_SHARE of every factor) and "inactive" (its KL says it is unused).

Its gap is how much more of its factor it carries than the next latent does: MIG's per-factor gap when it is the
factor's best latent, negative when another latent carries the factor better. Labelled data's one factor, "label",
reads "class".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SHARE = 0.05  # below this share of every factor, a latent carries nothing worth a name
CLEAR_SHARE = 0.25  # a share a latent must carry of a factor to be named by it
MIX_RATIO = 0.45  # a second factor with at least this share of the first makes the latent a mix...
MIN_SECOND = 0.1  # ...when its own share is at least this
SHOWN_AS = {"label": "class"}  # labelled data's factor, as people call it


@dataclass(frozen=True)
class LatentName:
    dim: int
    name: str  # "posX 66%", "also posX 30%", "mixed: a 60% + b 30%", "weak: posY 14%", "no clear factor", "inactive"
    factors: tuple[str, ...]  # the factors claimed, largest share first (empty: inactive, weak or unclear)
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
    shown = [SHOWN_AS.get(n, n) for n in factor_names]
    names = []
    for d in range(share.shape[1]):
        ranked = np.argsort(-share[:, d])
        top = int(ranked[0])
        best = float(share[top, d])
        others = np.delete(share[top], d)
        gap = best - (float(others.max()) if others.size else 0.0)
        if not bool(active[d]):
            names.append(LatentName(d, "inactive", (), best, gap))
        elif best < min_share:
            names.append(LatentName(d, "no clear factor", (), best, gap))
        elif best < CLEAR_SHARE:
            names.append(LatentName(d, f"weak: {shown[top]} {best:.0%}", (), best, gap))
        else:
            mixed = [int(k) for k in ranked[1:] if share[k, d] >= max(mix_ratio * best, MIN_SECOND)]
            if mixed:
                parts = [f"{shown[k]} {share[k, d]:.0%}" for k in [top, *mixed][:2]]
                name = "mixed: " + " + ".join(parts) + (" + …" if len(mixed) > 1 else "")
            else:
                name = f"{'also ' if gap <= 0 else ''}{shown[top]} {best:.0%}"
            names.append(LatentName(d, name, tuple(factor_names[k] for k in [top, *mixed]), best, gap))
    return names


def truth_sweep(dataset, start: np.ndarray, factor: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's own sweep of one factor: `start`'s factor indices with `factor` stepped over its grid
    (`steps` evenly spaced values, its whole range), rendered. Returns (images (steps, C, H, W), factors)."""
    k = list(dataset.factor_names).index(factor)
    size = int(dataset.factor_sizes[k])
    factors = np.repeat(np.asarray(start, dtype=np.int64)[None], steps, axis=0)
    factors[:, k] = np.round(np.linspace(0, size - 1, steps)).astype(np.int64)
    return dataset.images_from_factors(factors), factors
