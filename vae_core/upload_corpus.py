"""Uploads as people make them, drawn by code of their own (PIL's ImageDraw, not the dataset renderers), each
with what it shows: the corpora that measure upload preparation (`python -m vae_core.upload_eval`).

Shapes (`corpus`): white on black, black on white paper, an outline, a photographed marker drawing (uneven paper
light, blue-black ink, blur, sensor noise, JPEG), a shape off-centre in a large canvas, a tiny image, a transparent
PNG (dark ink on nothing), and a low-quality JPEG. Shapes: square, ellipse and heart, at random sizes, positions
and angles.

Faces (`face_corpus`): a cartoon face in a style of its own (a round head with a thick black outline, a cap of
hair, dot or ring eyes, no nose, the mouth a single arc) frowning, neutral or smiling: flat colour, a phone photo
of it (blur, noise, JPEG), small in a large canvas, or on a transparent background.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("square", "ellipse", "heart")
KINDS = ("white-on-black", "black-on-white", "outline", "photo", "off-centre", "tiny", "transparent", "low-jpeg")


@dataclass(frozen=True)
class Upload:
    data: bytes  # the file as a person would upload it
    shape: str
    kind: str
    name: str


def _outline(shape: str, centre: tuple[float, float], size: float, angle: float) -> list[tuple[float, float]]:
    """The shape's boundary as a polygon: `size` its larger extent in pixels, rotated by `angle` radians."""
    if shape == "square":
        pts = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]) * size / 2
    elif shape == "ellipse":
        t = np.linspace(0, 2 * np.pi, 90, endpoint=False)
        pts = np.stack([np.cos(t) * size / 2, np.sin(t) * size / 4], 1)
    else:  # the classic parametric heart, point down
        t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        pts = np.stack([x, y], 1)
        pts = pts / np.abs(pts).max() * size / 2
    c, s = math.cos(angle), math.sin(angle)
    pts = pts @ np.array([[c, s], [-s, c]])
    return [(centre[0] + px, centre[1] + py) for px, py in pts]


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def draw(shape: str, kind: str, rng: np.random.Generator) -> bytes:
    """One upload of `shape` in the manner `kind`."""
    angle = rng.uniform(-0.35, 0.35) if shape == "heart" else rng.uniform(0, np.pi)
    if kind == "off-centre":
        w, h = int(rng.integers(900, 1600)), int(rng.integers(700, 1200))
        size = rng.uniform(0.12, 0.25) * min(w, h)
        centre = (rng.uniform(size, w - size), rng.uniform(size, h - size))
    elif kind == "tiny":
        w = h = int(rng.integers(24, 48))
        size = rng.uniform(0.5, 0.8) * w
        centre = (w / 2 + rng.uniform(-2, 2), h / 2 + rng.uniform(-2, 2))
    else:
        w = h = int(rng.integers(200, 700))
        size = rng.uniform(0.35, 0.7) * w
        centre = (w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h)
    polygon = _outline(shape, centre, size, angle)
    light_subject = kind in ("white-on-black",) or (kind == "tiny" and rng.random() < 0.5)
    if kind == "transparent":
        image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        ImageDraw.Draw(image).polygon(polygon, fill=(20, 20, 30, 255))
        return _encode(image, "PNG")
    paper, ink = ((0, 0, 0), (255, 255, 255)) if light_subject else ((250, 250, 245), (15, 15, 25))
    image = Image.new("RGB", (w, h), paper)
    pen = ImageDraw.Draw(image)
    if kind == "outline":
        pen.line(polygon + [polygon[0]], fill=ink, width=max(2, int(size * rng.uniform(0.03, 0.07))), joint="curve")
    else:
        pen.polygon(polygon, fill=(25, 35, 90) if kind == "photo" else ink)
    if kind == "photo":  # paper lit from one side, a soft pen edge, sensor noise, a phone's JPEG
        yy, xx = np.mgrid[:h, :w]
        direction = rng.uniform(0, 2 * np.pi)
        light = 0.75 + 0.25 * ((np.cos(direction) * xx / w + np.sin(direction) * yy / h) % 1.0)
        arr = np.asarray(image.filter(ImageFilter.GaussianBlur(rng.uniform(1, 3))), np.float32) * light[..., None]
        arr = arr * np.array([1.0, 0.97, 0.9]) + rng.normal(0, 6, arr.shape)
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        return _encode(image, "JPEG", quality=int(rng.integers(60, 85)))
    if kind == "low-jpeg":
        return _encode(image, "JPEG", quality=int(rng.integers(5, 15)))
    return _encode(image, "PNG")


def corpus(per_kind_and_shape: int = 5, seed: int = 0) -> list[Upload]:
    """len(KINDS) * len(SHAPES) * per_kind_and_shape uploads (120 by default), the same on every run."""
    out = []
    for k, kind in enumerate(KINDS):
        for s, shape in enumerate(SHAPES):
            for i in range(per_kind_and_shape):
                rng = np.random.default_rng([seed, k, s, i])
                out.append(Upload(draw(shape, kind, rng), shape, kind, f"{kind}-{shape}-{i}"))
    return out


MOODS = ("frown", "neutral", "smile")
FACE_KINDS = ("flat", "photo", "off-centre", "transparent")


@dataclass(frozen=True)
class FaceUpload:
    data: bytes
    mood: str
    kind: str
    name: str


def _colour(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def draw_face(mood: str, kind: str, rng: np.random.Generator) -> bytes:
    """One drawn face with `mood`, uploaded in the manner `kind`."""
    if kind == "off-centre":
        w, h = int(rng.integers(800, 1400)), int(rng.integers(600, 1000))
        size = rng.uniform(0.3, 0.45) * min(w, h)
        cx, cy = rng.uniform(size, w - size), rng.uniform(size, h - size)
    else:
        w = h = int(rng.integers(240, 640))
        size = rng.uniform(0.7, 0.85) * w
        cx, cy = w / 2 + rng.uniform(-0.05, 0.05) * w, h / 2 + rng.uniform(-0.03, 0.03) * h
    rx, ry = size / 2 * rng.uniform(0.72, 0.88), size / 2
    line = max(2, int(size * 0.025))
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0) if kind == "transparent" else (*_colour(rng, 170, 256), 255))
    pen = ImageDraw.Draw(image)
    skin = tuple(int(v) for v in np.array([235, 200, 170]) * rng.uniform(0.45, 1.05)) + (255,)
    hair = (*_colour(rng, 10, 160), 255)
    pen.ellipse((cx - rx * 1.08, cy - ry * 1.05, cx + rx * 1.08, cy + ry * 0.1), fill=hair, outline=(0, 0, 0, 255),
                width=line)  # a cap of hair behind the head
    pen.ellipse((cx - rx, cy - ry * 0.8, cx + rx, cy + ry), fill=skin, outline=(0, 0, 0, 255), width=line)
    eye_y, eye_dx, eye_r = cy - ry * 0.05, rx * 0.38, rx * rng.uniform(0.08, 0.14)
    dots = rng.random() < 0.5
    for ex in (cx - eye_dx, cx + eye_dx):
        if dots:
            pen.ellipse((ex - eye_r, eye_y - eye_r, ex + eye_r, eye_y + eye_r), fill=(20, 20, 20, 255))
        else:
            pen.ellipse((ex - eye_r * 1.4, eye_y - eye_r * 1.4, ex + eye_r * 1.4, eye_y + eye_r * 1.4),
                        fill=(255, 255, 255, 255), outline=(0, 0, 0, 255), width=max(1, line // 2))
            pen.ellipse((ex - eye_r * 0.6, eye_y - eye_r * 0.6, ex + eye_r * 0.6, eye_y + eye_r * 0.6),
                        fill=(20, 20, 20, 255))
    mouth_w, mouth_y, bend = rx * rng.uniform(0.45, 0.6), cy + ry * 0.5, ry * rng.uniform(0.12, 0.2)
    ink, thick = (*_colour(rng, 60, 140)[:1], 20, 30, 255), max(3, int(size * rng.uniform(0.03, 0.045)))
    box = (cx - mouth_w, mouth_y - bend, cx + mouth_w, mouth_y + bend)
    if mood == "smile":  # the lower half of an ellipse: corners up
        pen.arc((box[0], box[1] - bend, box[2], box[3] - bend), 15, 165, fill=ink, width=thick)
    elif mood == "frown":  # the upper half: corners down
        pen.arc((box[0], box[1] + bend, box[2], box[3] + bend), 195, 345, fill=ink, width=thick)
    else:
        pen.line((box[0] + mouth_w * 0.15, mouth_y, box[2] - mouth_w * 0.15, mouth_y), fill=ink, width=thick)
    if kind == "transparent":
        return _encode(image, "PNG")
    image = image.convert("RGB")
    if kind == "photo":
        arr = np.asarray(image.filter(ImageFilter.GaussianBlur(rng.uniform(1, 2.5))), np.float32)
        arr = arr * rng.uniform(0.85, 1.0) + rng.normal(0, 5, arr.shape)
        return _encode(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), "JPEG",
                       quality=int(rng.integers(55, 85)))
    return _encode(image, "PNG")


def face_corpus(per_kind_and_mood: int = 9, seed: int = 0) -> list[FaceUpload]:
    """len(FACE_KINDS) * len(MOODS) * per_kind_and_mood drawn faces (108 by default), the same on every run."""
    out = []
    for k, kind in enumerate(FACE_KINDS):
        for m, mood in enumerate(MOODS):
            for i in range(per_kind_and_mood):
                rng = np.random.default_rng([seed, 100 + k, m, i])
                out.append(FaceUpload(draw_face(mood, kind, rng), mood, kind, f"{kind}-{mood}-{i}"))
    return out
