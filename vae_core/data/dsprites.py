"""Procedural dSprites: the exact factor grid of Matthey et al. (2017), rendered from factor indices.

The grid (REFERENCE section 1): color 1, shape 3 (square, ellipse, heart), scale 6 = linspace(0.5, 1, 6),
orientation 40 = linspace(0, 2*pi, 40) (0 and 2*pi both on the grid, as in the original), posX 32 and
posY 32 = linspace(0, 1, 32). 737,280 binary 64x64 images, index order color, shape, scale, orientation,
posX, posY with posY fastest.

Geometry (ours; the original's pixel geometry is unpublished):
- pixel (row i, column j) is sampled at its centre (j + 0.5, i + 0.5); an image is 1 where the centre lies
  inside the sprite, else 0 (binary, like the original);
- the sprite centre is (16 + 32 * posX, 16 + 32 * posY) pixels, so centres span [16, 48];
- each shape lies inside a disc of radius R = 15 * scale pixels around its centre for every rotation, so
  every sprite stays inside the frame (the outermost pixel row and column are never lit);
- in sprite units (radius 1): square half-side 0.7 (corners at 0.99), ellipse semi-axes 1.0 x 0.5 (long
  axis horizontal at orientation 0), heart the curve (x^2 + y^2 - 1)^3 <= x^2 y^3 shifted down by 0.25 and scaled by 0.78 (radius 0.975), with its
  point downwards at orientation 0;
- orientation rotates the shape counter-clockwise on screen by its angle in radians.

Rendering is vectorised over a batch: each sprite is evaluated in a 32x32 window around its centre (a disc of
radius 15 always fits), grouped by shape, then pasted into the 64x64 canvas with one indexed assignment.
"""

from __future__ import annotations

import numpy as np

from .base import GroundTruthDataset

IMAGE_SIZE = 64
WINDOW = 32  # side of the window each sprite is rendered in; holds a disc of radius 15.5
MAX_RADIUS = 15.0  # pixels, at scale 1
SQUARE_HALF_SIDE = 0.7
ELLIPSE_AXES = (1.0, 0.5)
HEART_SCALE = 0.78  # the heart curve spans radius 1.25 around (0, 0.25): 0.78 brings it inside the unit disc
HEART_SHIFT = 0.25  # the centre of the smallest disc holding the curve


class DSprites(GroundTruthDataset):
    """The dSprites factor grid, rendered on demand."""

    name = "dsprites"
    factor_names = ("color", "shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (1, 3, 6, 40, 32, 32)
    shape_names = ("square", "ellipse", "heart")
    categorical_factors = ("color", "shape")  # the others (scale, orientation, position) are ordered
    channels = 1
    image_size = IMAGE_SIZE

    def factor_values(self, k: int) -> np.ndarray:
        name = self.factor_names[k]
        if name == "scale":
            return np.linspace(0.5, 1.0, 6)
        if name == "orientation":
            return np.linspace(0.0, 2 * np.pi, 40)
        if name in ("posX", "posY"):
            return np.linspace(0.0, 1.0, 32)
        return np.arange(self.factor_sizes[k], dtype=np.float64) + (1.0 if name in ("color", "shape") else 0.0)

    def images_from_factors(self, factors: np.ndarray) -> np.ndarray:
        factors = np.asarray(factors, dtype=np.int64)
        self.check_factors(factors)
        n = factors.shape[0]
        scale = np.linspace(0.5, 1.0, 6, dtype=np.float32)[factors[:, 2]]
        angle = np.linspace(0.0, 2 * np.pi, 40).astype(np.float32)[factors[:, 3]]
        pos = np.linspace(0.0, 1.0, 32, dtype=np.float32)
        cx = 16.0 + 32.0 * pos[factors[:, 4]]
        cy = 16.0 + 32.0 * pos[factors[:, 5]]
        # window origin (integer) and the sprite centre inside the window (fractional)
        ox = np.floor(cx).astype(np.int64) - WINDOW // 2
        oy = np.floor(cy).astype(np.int64) - WINDOW // 2
        window = np.zeros((n, WINDOW, WINDOW), dtype=np.float32)
        grid = np.arange(WINDOW, dtype=np.float32) + 0.5
        for shape in range(3):
            rows = np.nonzero(factors[:, 1] == shape)[0]
            if rows.size == 0:
                continue
            radius = (MAX_RADIUS * scale[rows])[:, None, None]
            dx = (grid[None, None, :] - (cx[rows] - ox[rows])[:, None, None]) / radius  # (m, 1, W)
            dy = (grid[None, :, None] - (cy[rows] - oy[rows])[:, None, None]) / radius  # (m, W, 1)
            cos, sin = np.cos(angle[rows])[:, None, None], np.sin(angle[rows])[:, None, None]
            # screen y points down, so a counter-clockwise turn on screen is clockwise in (dx, dy)
            u = cos * dx - sin * dy
            v = sin * dx + cos * dy
            window[rows] = _inside(shape, u, v)
        images = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        idx = np.arange(WINDOW)
        images[
            np.arange(n)[:, None, None],
            (oy[:, None] + idx)[:, :, None],
            (ox[:, None] + idx)[:, None, :],
        ] = window
        return images[:, None]


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """1.0 where the point (u, v) in sprite units (v pointing down) lies inside the shape."""
    if shape == 0:
        return (np.maximum(np.abs(u), np.abs(v)) <= SQUARE_HALF_SIDE).astype(np.float32)
    if shape == 1:
        a, b = ELLIPSE_AXES
        return ((u / a) ** 2 + (v / b) ** 2 <= 1.0).astype(np.float32)
    # heart: the classic implicit curve with y pointing up, so flip v; point downwards at orientation 0
    x = u / HEART_SCALE
    y = -v / HEART_SCALE + HEART_SHIFT
    r = x * x + y * y - 1.0
    return (r * r * r - x * x * y * y * y <= 0.0).astype(np.float32)
