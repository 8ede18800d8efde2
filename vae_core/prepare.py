"""Preparing a person's image the way a model's training data looks: find the subject, put it where the dataset
puts its subjects, and say what was done.

People bring black drawings on white paper, outlines, photos of marker drawings, transparent PNGs and shapes
off-centre in large canvases; dSprites is white shapes on black, centred on a grid, of a known size. Each step
below is a pure function of an (H, W, 4) float image in [0, 1] (colour and alpha), recorded with a name and a
picture so that a page can show it and switch it off:

- **transparency**: where the image has an alpha channel, the opaque part is the subject; for light-on-dark
  data it becomes white on black (whatever colour the strokes were), for colour data it is composited onto
  the dataset's background colour;
- **inverted**: the background is estimated from the border (its median); when it is lighter than the subject
  and the dataset's subjects are light on dark, the image is inverted; a paper's uneven light (a photo of a
  drawing) is taken out by subtracting a smooth estimate of the local background;
- **thresholded** (binary datasets): Otsu's threshold between the background and the subject;
- **filled**: a closed outline is filled (a drawn outline of a heart becomes a heart, as in dSprites);
- **cropped**: the subject's bounding box, scaled and centred as the dataset draws its subjects (dSprites: the
  larger side spans `Subject.fill` of the frame, about a sprite at its largest scale; faces: the face fills
  the frame as the renderer draws it).

Everything runs on a working copy of at most WORK_PX pixels a side, so a prepared upload takes a few
milliseconds whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from .data import drawn_like

WORK_PX = 256  # the working copy's longer side
STEPS = ("transparency", "inverted", "thresholded", "filled", "cropped")


@dataclass(frozen=True)
class Subject:
    """How a dataset presents its subjects."""

    light_on_dark: bool  # white subjects on black (dSprites, digits); else a picture on its own background
    binary: bool  # pixels are 0 or 1
    fill: float  # the subject's larger bounding-box side as a share of the frame
    centre_y: float = 0.5  # the height of the subject's centre in the frame, as a share of it from the top
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)  # what transparency is composited onto
    crop: bool = True  # subjects sit where the dataset puts them (False: data of unknown layout, left as it is)


SUBJECTS = {
    # dSprites at scale 1: square 21 px, heart 27, ellipse 30 of 64 (vae_core.data.dsprites)
    "dsprites": Subject(light_on_dark=True, binary=True, fill=26 / 64),
    # digits are enlarged to three quarters of the frame (vae_core.data.digits)
    "digits": Subject(light_on_dark=True, binary=False, fill=0.75),
    "mnist": Subject(light_on_dark=True, binary=False, fill=20 / 28),
    "fashion-mnist": Subject(light_on_dark=True, binary=False, fill=0.9),
    # faces: the head (top of the hair y = 4.5 to the chin y = 49.5 of 64) spans 0.70 of the frame, its centre at
    # 0.42 of the height, the neck and shoulders below it (vae_core.data.faces); a drawn head is placed there
    "faces": Subject(light_on_dark=False, binary=False, fill=0.70, centre_y=0.42, background=(0.78, 0.86, 0.92)),
}
DEFAULT_SUBJECT = Subject(light_on_dark=False, binary=False, fill=1.0, crop=False)


@dataclass
class Prepared:
    """A prepared upload: the model's input, and each step that changed it."""

    image: np.ndarray  # (C, S, S) float32 in [0, 1], as the model sees it
    original: np.ndarray  # (C, S, S): the upload centre-cropped to a square, as before any step
    steps: list[tuple[str, np.ndarray, str]] = field(default_factory=list)  # (step, picture, what it did)

    @property
    def applied(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.steps)


def subject_for(dataset: str) -> Subject:
    return SUBJECTS.get(drawn_like(dataset), DEFAULT_SUBJECT)


def working_copy(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) in [0, 1] -> the same, box-shrunk so its longer side is at most WORK_PX."""
    h, w = rgba.shape[:2]
    if max(h, w) <= WORK_PX:
        return rgba.astype(np.float32)
    scale = WORK_PX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    premultiplied = np.concatenate([rgba[..., :3] * rgba[..., 3:], rgba[..., 3:]], -1)
    channels = [np.asarray(Image.fromarray(premultiplied[..., c].astype(np.float32), "F").resize(
        size, Image.Resampling.BOX)) for c in range(4)]
    out = np.stack(channels, -1)
    alpha = out[..., 3:]
    out[..., :3] = np.where(alpha > 1e-6, out[..., :3] / np.maximum(alpha, 1e-6), 0.0)
    return np.clip(out, 0.0, 1.0)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def border(values: np.ndarray, width: float = 0.04) -> np.ndarray:
    """The pixels of a ring along the image's edge (`width` of its size), flattened to (N, ...)."""
    h, w = values.shape[:2]
    b = max(1, round(width * min(h, w)))
    mask = np.zeros((h, w), bool)
    mask[:b], mask[-b:], mask[:, :b], mask[:, -b:] = True, True, True, True
    return values[mask]


def otsu(values: np.ndarray, bins: int = 128) -> float:
    """Otsu's threshold of values in [0, 1]: the level that best separates two classes."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m = np.cumsum(p * centres)
    between = (m[-1] * w0 - m) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    return float(centres[int(np.argmax(between))])


def light_subject(rgba: np.ndarray, steps: list, use_alpha: bool, invert: bool) -> np.ndarray:
    """(H, W) in [0, 1]: the subject light on a dark background, from the alpha channel or from the picture."""
    alpha = rgba[..., 3]
    if use_alpha and alpha.min() < 0.98:
        steps.append(("transparency", alpha, "the opaque part of the image is the subject"))
        return alpha.astype(np.float32)
    grey = _grey(rgba[..., :3]) * alpha  # any transparency composited onto black
    background = float(np.median(border(grey)))
    if invert and background > 0.5:
        # dark strokes on lighter paper: the paper's own light, smoothed, minus the picture
        size = max(3, round(min(grey.shape) / 3))  # wider than a filled shape, so its inside is not taken for paper
        paper = ndimage.uniform_filter(ndimage.grey_dilation(grey, size=size), size=size)
        light = np.clip(paper - grey, 0.0, 1.0)
        peak = float(np.percentile(light, 99.5))
        light = np.clip(light / max(peak, 1e-3), 0.0, 1.0)
        note = (f"the background (level {background:.2f}, from the border) is lighter than the subject: inverted, "
                "and the paper's uneven light taken out")
        steps.append(("inverted", light, note))
        return light.astype(np.float32)
    low, peak = background, float(np.percentile(grey, 99.5))
    return np.clip((grey - low) / max(peak - low, 1e-3), 0.0, 1.0).astype(np.float32)


def subject_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), exclusive ends, of the mask's True pixels; None when there are none."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    top, bottom = np.argmax(rows), len(rows) - np.argmax(rows[::-1])
    left, right = np.argmax(cols), len(cols) - np.argmax(cols[::-1])
    return int(top), int(bottom), int(left), int(right)


def place(image: np.ndarray, box: tuple[int, int, int, int], fill: float, size: int,
          background: np.ndarray, centre_y: float = 0.5) -> np.ndarray:
    """(H, W, C) -> (size, size, C): the box's content scaled so its larger side spans `fill` of the frame, centred
    across and with its centre at `centre_y` of the height, on `background` (C,)."""
    top, bottom, left, right = box
    side = max(1, round(max(bottom - top, right - left) / fill))  # the square of the original that becomes the frame
    y0, x0 = round((top + bottom) / 2 - centre_y * side), round((left + right - side) / 2)
    h, w, c = image.shape
    canvas = np.empty((side, side, c), np.float32)
    canvas[:] = background
    sy, sx = slice(max(0, y0), min(h, y0 + side)), slice(max(0, x0), min(w, x0 + side))
    canvas[sy.start - y0: sy.stop - y0, sx.start - x0: sx.stop - x0] = image[sy, sx]
    return resize(canvas, size)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) float -> (size, size, C), area-averaged when shrinking (Lanczos when enlarging)."""
    method = Image.Resampling.BOX if min(image.shape[:2]) >= size else Image.Resampling.LANCZOS
    return np.stack([np.asarray(Image.fromarray(image[..., k].astype(np.float32), "F").resize((size, size), method))
                     for k in range(image.shape[-1])], -1).clip(0.0, 1.0)


def centre_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(h, w)
    return image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]


def prepare(rgba: np.ndarray, dataset: str, image_size: int, channels: int, skip: frozenset[str] = frozenset()
            ) -> Prepared:
    """A person's image (H, W, 4) in [0, 1] -> the model's input, with each step that changed it.

    Args:
        dataset: the model's training data (its `Subject` says how subjects look there).
        skip: steps (of STEPS) the person switched off.
    """
    rgba = working_copy(np.asarray(rgba, dtype=np.float32))
    subject = subject_for(dataset)
    steps: list[tuple[str, np.ndarray, str]] = []
    grey_model = channels == 1
    if subject.light_on_dark:
        light = light_subject(rgba, steps, "transparency" not in skip, "inverted" not in skip)
        picture = light[..., None]
        mask = light >= otsu(light) if light.max() > light.min() else light > 0.5
        if subject.binary and "thresholded" not in skip:
            picture = mask[..., None].astype(np.float32)
            steps.append(("thresholded", picture[..., 0], "Otsu's threshold between the background and the subject"))
        if subject.binary and "filled" not in skip:
            filled = ndimage.binary_fill_holes(mask)
            if filled.sum() > 1.02 * max(mask.sum(), 1):  # a closed outline: filled, as dSprites' shapes are solid
                mask = filled
                picture = np.maximum(picture, filled[..., None].astype(np.float32))
                steps.append(("filled", picture[..., 0], "a closed outline, filled"))
        background = np.zeros(1, np.float32)
    else:
        alpha = rgba[..., 3:]
        bg = np.asarray(subject.background, np.float32)
        if "transparency" not in skip and alpha.min() < 0.98:
            rgb = rgba[..., :3] * alpha + bg * (1 - alpha)
            steps.append(("transparency", rgb, "composited onto a background like the dataset's"))
        else:
            rgb = rgba[..., :3] * alpha
        picture = rgb
        edge = np.median(border(rgb), axis=0)
        distance = np.abs(rgb - edge).max(-1)
        mask = distance > max(0.08, otsu(np.clip(distance, 0, 1)) * 0.5)
        background = edge
    box = subject_box(mask)
    if subject.crop and "cropped" not in skip and box is not None and mask.mean() < 0.95:
        framed = place(picture, box, subject.fill, image_size, background, subject.centre_y)
        steps.append(("cropped", framed, "cropped to the subject and placed as the dataset places its subjects"))
    else:
        framed = resize(centre_square(picture), image_size)
    if subject.binary and "thresholded" not in skip:
        framed = (framed >= 0.5).astype(np.float32)
    image = _channels(framed, channels, grey_model)
    original = _channels(resize(centre_square(rgba[..., :3] * rgba[..., 3:]), image_size), channels, grey_model)
    return Prepared(np.ascontiguousarray(image), original,
                    [(name, _channels(_square(pic, image_size), channels, grey_model), note)
                     for name, pic, note in steps])


def _square(picture: np.ndarray, size: int) -> np.ndarray:
    picture = picture[..., None] if picture.ndim == 2 else picture
    return picture if picture.shape[0] == picture.shape[1] == size else resize(centre_square(picture), size)


def _channels(image: np.ndarray, channels: int, grey: bool) -> np.ndarray:
    """(H, W, 1 or 3) -> (channels, H, W) float32."""
    if image.shape[-1] == 3 and grey:
        image = _grey(image)[..., None]
    if image.shape[-1] == 1 and channels == 3:
        image = np.repeat(image, 3, -1)
    return image.transpose(2, 0, 1).astype(np.float32)
