"""Pieces of UI the pages share: images shown large, uploads that never raise, choosing an image or a point."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app import models, state
from app.text import plain
from vae_core.explore import elbo_terms, prior_sample, upscale_factor
from vae_core.imaging import ACCEPTED_NAMES, MAX_FILE_BYTES, ImageError, encode_png, preprocess_upload

UPLOAD_MB = MAX_FILE_BYTES // (1024 * 1024)
_UPLOAD_KWARGS = ({"max_upload_size": UPLOAD_MB}
                  if "max_upload_size" in inspect.signature(st.file_uploader).parameters else {})


def png(image: np.ndarray, px: int = 320) -> bytes:
    """(C, H, W) in [0, 1] -> PNG bytes enlarged with nearest-neighbour pixels to about px wide."""
    return encode_png(image, scale=upscale_factor(image.shape[-1], px))


def show_image(image: np.ndarray, caption: str | None = None, px: int = 320, fit: bool = False) -> None:
    """One image, enlarged to about px wide (or, with `fit`, to the width of its column)."""
    width = "stretch" if fit else upscale_factor(image.shape[-1], px) * image.shape[-1]
    st.image(png(image, px), caption=caption, width=width, output_format="PNG")


def number(figures, key: str) -> float | None:
    """figures[key] as a finite float, or None: a card comes from anyone, and a string or a NaN there must not
    break a page that formats it."""
    value = figures.get(key) if isinstance(figures, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def card_iwae(card: dict) -> tuple[int, float, int] | None:
    """(images, -IWAE nats/image, k) of a card's likelihood estimate, or None when it has no usable one."""
    figures = card.get("iwae")
    samples, nll, k = (number(figures, key) for key in ("samples", "nll_nats_per_image", "k"))
    return None if None in (samples, nll, k) else (int(samples), nll, int(k))


def show_images(images: np.ndarray, captions: list[str] | None = None, px: int = 96) -> None:
    """A row of images that wraps; each keeps its own picture (so a test can compare them)."""
    width = upscale_factor(images.shape[-1], px) * images.shape[-1]
    st.image([png(im, px) for im in images], caption=captions, width=width, output_format="PNG")


@st.cache_data(max_entries=64, show_spinner=False)
def _preprocess(data: bytes, image_size: int, channels: int, binarize: bool) -> np.ndarray:
    return preprocess_upload(data, image_size, channels, binarize)


@dataclass
class Upload:
    image: np.ndarray  # (C, H, W) as the model sees it
    name: str
    file_id: str


def upload_image(label: str, key: str, h: models.Handle, multiple: bool = False) -> list[Upload]:
    """A file uploader whose files become model inputs; a bad file shows its message, never a traceback."""
    files = st.file_uploader(label, key=key, accept_multiple_files=multiple, **_UPLOAD_KWARGS,
                             help=f"{ACCEPTED_NAMES}, up to {UPLOAD_MB} MB; centre-cropped to a "
                                  f"square and resized to {h.image_size}x{h.image_size}.")
    uploads = []
    for f in files if multiple else [files] if files is not None else []:
        try:
            image = _preprocess(f.getvalue(), h.image_size, h.channels, state.binarize(h))
        except ImageError as exc:
            st.error(f"{plain(f.name)}: {plain(exc, 300)}")
            continue
        uploads.append(Upload(image, f.name, f.file_id))
    return uploads


@dataclass
class Picked:
    """An image (or a bare latent point) chosen as a starting point or an endpoint."""

    label: str
    image: np.ndarray | None  # (C, H, W) as the model sees it, or None for a point drawn from the prior
    z: np.ndarray  # (latent_dim,) the posterior mean of the image, or the drawn point
    logvar: np.ndarray | None = None


def encode_one(h: models.Handle, image: np.ndarray, label: str) -> Picked:
    terms = elbo_terms(h.model, image[None])
    return Picked(label, image, terms["mu"][0], terms["logvar"][0])


def pick_image(key: str, h: models.Handle, sources: tuple[str, ...], extra: dict[str, Picked] | None = None,
               number: int = 0) -> Picked | None:
    """Choose an image: a dataset example, an upload, a random prior sample (and any `extra` choices)."""
    dataset, note = models.dataset_for(h)
    options = [*(extra or {}), *(s for s in sources if s != "Dataset example" or dataset is not None)]
    source = st.radio("Source", options, key=f"{key}_src", horizontal=True)
    if extra and source in extra:
        return extra[source]
    if source == "Dataset example":
        number = st.columns([1, 2])[0].number_input("Example number", 0, 99_999, number, key=f"{key}_n")
        return encode_one(h, models.dataset_example(h, number), f"dataset example #{number}")
    if source == "Random sample":
        seed = st.columns([1, 2])[0].number_input("Seed", 0, 99_999, number, key=f"{key}_seed")
        return Picked(f"prior sample (seed {seed})", None, prior_sample(h.latent_dim, seed))
    if note and "Dataset example" in sources:
        st.caption(f"No dataset examples: {note}.")
    uploads = upload_image("Upload an image", f"{key}_upload", h)
    return encode_one(h, uploads[0].image, uploads[0].name) if uploads else None


def dim_label(d: int, kl: np.ndarray | None, active: bool) -> str:
    if kl is None:
        return f"z{d}"
    value = f"{kl[d]:.2f}" if kl[d] >= 0.1 else f"{kl[d]:.3f}"
    return f"z{d} · {value} nats" if active else f"z{d} · inactive ({value} nats)"


def factor_text(dataset, proj, row: int, names: list[str]) -> str:
    """A short account of one projection row's factors, with class names where the dataset has them."""
    parts = []
    for k, name in enumerate(proj.factor_names):
        if name not in names:
            continue
        value = int(proj.factors[row, k])
        labels = proj.label_names if name == "label" else getattr(dataset, f"{name}_names", None)
        parts.append(str(labels[value]) if labels is not None and value < len(labels) else f"{name} {value}")
    return " · ".join(parts)
