"""Readings of what an image shows, factor by factor: what the edits' figures (vae_core.edits) count as "on target"
and "changed".

A reading maps images to a value per image, says which value each class of the factor should read, and how far
apart two readings may be and still be the same. Where geometry can read a factor it does, exactly and without
training: a dSprites sprite's position is its centroid (right within 2 px, the issue's tolerance; the grid's step is
1.03 px), its scale its area given its shape. What geometry cannot read (a shape, a mouth) a judge reads: a classifier
trained on the data (`vae_core.condition_eval.train_condition_judge`).

dSprites' orientation has no reading: the square repeats every 90 degrees and the ellipse every 180, so no reading
of a single image can be right on 98% of the grid (a square at 5 and at 95 degrees is one image); it is left out of
the edited factors and of the side effects alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

POSITION_TOLERANCE_PX = 2.0  # the issue's "within 2 px": about two steps of dSprites' 32-value position grid


@dataclass(frozen=True)
class Reading:
    """How one factor is read from images.

    Attributes:
        read: images (B, C, H, W) in [0, 1] -> (B,) float readings.
        at: class indices (B,) -> (B,) the reading each class should give.
        tolerance: readings this close are the same (0 for a class read by a judge).
        how: a few words for tables ("judge", "centroid", "area").
    """

    read: Callable[[np.ndarray], np.ndarray]
    at: Callable[[np.ndarray], np.ndarray]
    tolerance: float = 0.0
    how: str = "judge"

    def hits(self, values: np.ndarray, classes) -> np.ndarray:
        """(B,) whether each reading shows its class (NaN, an empty decode, never does)."""
        return np.abs(np.asarray(values, np.float64) - self.at(np.asarray(classes))) <= self.tolerance

    def same(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(B,) whether two readings of the same images agree."""
        return np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) <= self.tolerance


def judge_reading(judge: torch.nn.Module, batch: int = 500) -> Reading:
    """A classifier's reading: the class it finds most likely."""

    @torch.inference_mode()
    def read(images: np.ndarray) -> np.ndarray:
        return torch.cat([judge(torch.from_numpy(np.ascontiguousarray(images[i:i + batch], np.float32))).argmax(1)
                          for i in range(0, len(images), batch)]).numpy().astype(np.float64)

    return Reading(read, lambda classes: np.asarray(classes, np.float64), 0.0, "judge")


def centroid(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre of mass (x, y) of each image's intensity, in pixels from the top-left corner (pixel j's centre at
    j + 0.5, as dSprites samples it): images (B, C, H, W) -> ((B,), (B,)); NaN for an empty image."""
    mass = np.asarray(images, np.float64).sum(1)  # (B, H, W)
    total = mass.sum((1, 2))
    centres = np.arange(mass.shape[-1]) + 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        return (mass.sum(1) * centres).sum(1) / total, (mass.sum(2) * centres).sum(1) / total


def area(images: np.ndarray) -> np.ndarray:
    """Each image's drawn area in pixels (its summed intensity, so a soft decode counts its partial pixels):
    (B, C, H, W) -> (B,)."""
    return np.asarray(images, np.float64).sum((1, 2, 3))


def dsprites_areas(dataset) -> np.ndarray:
    """(shapes, scales) the geometric mean area of each shape at each scale over every orientation, rendered at the
    frame's centre: the table `scale_from_area` reads against (derived from the renderer, not stored)."""
    sizes = dict(dataset.named_sizes())
    grid = np.array([(0, s, k, o, sizes["posX"] // 2, sizes["posY"] // 2) for s in range(sizes["shape"])
                     for k in range(sizes["scale"]) for o in range(sizes["orientation"])], np.int64)
    areas = area(dataset.images_from_factors(grid)).reshape(sizes["shape"], sizes["scale"], sizes["orientation"])
    return np.exp(np.log(areas).mean(2))


def scale_from_area(areas: np.ndarray, shapes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The scale class whose area (for the image's shape) is nearest in log terms: (B,), (B,) -> (B,) float."""
    shapes = np.clip(np.asarray(shapes, np.int64), 0, len(table) - 1)
    with np.errstate(divide="ignore"):
        gap = np.abs(np.log(np.maximum(np.asarray(areas, np.float64), 1e-9))[:, None] - np.log(table[shapes]))
    return gap.argmin(1).astype(np.float64)


def dsprites_readings(dataset, shape_judge: torch.nn.Module) -> dict[str, Reading]:
    """dSprites' shape (by `shape_judge`), scale (by area, given the judged shape), posX and posY (by centroid, within
    2 px of the value's centre: 16 + 32 * value pixels, the renderer's geometry)."""
    shape = judge_reading(shape_judge)
    table = dsprites_areas(dataset)
    names = list(dataset.factor_names)

    def pixels(factor: str) -> Callable[[np.ndarray], np.ndarray]:
        values = dataset.factor_values(names.index(factor))
        return lambda classes: 16.0 + 32.0 * values[np.asarray(classes, np.int64)]

    return {"shape": shape,
            "scale": Reading(lambda images: scale_from_area(area(images), shape.read(images), table),
                             lambda classes: np.asarray(classes, np.float64), 0.0, "area"),
            "posX": Reading(lambda images: centroid(images)[0], pixels("posX"), POSITION_TOLERANCE_PX, "centroid"),
            "posY": Reading(lambda images: centroid(images)[1], pixels("posY"), POSITION_TOLERANCE_PX, "centroid")}


def reading_accuracy(reading: Reading, dataset, factor: str, n: int = 5000, seed: int = 0) -> float:
    """The share of n random true images of the grid that `reading` reads as their own class of `factor`."""
    images, factors = dataset.sample(n, np.random.default_rng([seed, 7]))
    return float(reading.hits(reading.read(images), factors[:, list(dataset.factor_names).index(factor)]).mean())


def judge(dataset, factor: str, steps: int, cache=None):
    """`train_condition_judge`'s classifier of `factor` (seeded, so one per dataset, factor and steps), read from
    `cache` (a folder) when trained there before, and written there when trained here."""
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    from .condition_eval import ConditionJudge, train_condition_judge
    from .models.cvae import condition_values

    path = Path(cache) / f"judge-{dataset.name}-{factor}-{steps}.safetensors" if cache else None
    if path is not None and path.exists():
        net = ConditionJudge(dataset.channels, dataset.image_size, len(condition_values(dataset, factor)))
        net.load_state_dict(load_file(path), strict=True)
        return net.eval()
    net, _ = train_condition_judge(dataset, factor, steps=steps)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(net.state_dict(), path)
    return net


def readings_for(dataset, judge_steps: int, cache=None) -> tuple[dict, dict]:
    """(factor -> reading, factor -> {"how", "accuracy" on 5,000 true images}): geometry and a shape judge on
    dSprites (`vae_core.readings.dsprites_readings`), a judge per varying factor elsewhere (`judge`)."""
    if dataset.name == "dsprites":
        readings = dsprites_readings(dataset, judge(dataset, "shape", judge_steps, cache))
    else:
        readings = {name: judge_reading(judge(dataset, name, judge_steps, cache))
                    for name, size in dataset.named_sizes() if size > 1}
    quality = {name: {"how": r.how, "accuracy": round(reading_accuracy(r, dataset, name), 4)}
               for name, r in readings.items()}
    return readings, quality
