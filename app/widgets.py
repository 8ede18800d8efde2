"""Pieces of UI the pages share: images shown large, uploads that never raise, choosing an image or a point."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app import models, streamlit_internals
from app.text import plain
from vae_core.explore import elbo_terms, prior_sample, upscale_factor
from vae_core.imaging import ACCEPTED_NAMES, MAX_FILE_BYTES, ImageError, encode_png, image_grid
from vae_core.prepare import STEPS, Prepared, prepare
from vae_core.upload_worker import decode_upload

UPLOAD_MB = MAX_FILE_BYTES // (1024 * 1024)
STALE_ERROR_PREFIX = "upload-error-"
# The browser refuses a file over UPLOAD_MB itself: it shows a chip with its own message and tells the server
# nothing, so no rerun clears what the page says about the file before, and Streamlit keeps a refused chip beside
# every later file of a one-file uploader. The style shows a refused chip only while it is the uploader's latest,
# and hides the message about the earlier file while it is.
_REFUSED_CHIP = "[data-testid='stFileChip'][aria-invalid='true']"
UPLOAD_STYLE = (
    f"[data-testid='stFileChips'] > div > div:has({_REFUSED_CHIP}):not(:last-child) {{ display: none; }}\n"
    f"[data-testid='stElementContainer']:has([data-testid='stFileChips'] > div > div:last-child {_REFUSED_CHIP})"
    f" ~ :is([class*='st-key-{STALE_ERROR_PREFIX}'], :has([class*='st-key-{STALE_ERROR_PREFIX}']))"
    " { display: none; }"
)
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
def _prepare(data: bytes, dataset: str, image_size: int, channels: int, skip: frozenset[str],
             _who: str | None = None) -> Prepared:
    # _who (left out of the cache's key): whose decode it is, for the decoders' fair share
    return prepare(decode_upload(data, image_size, who=_who), dataset, image_size, channels, skip)


@dataclass
class Upload:
    image: np.ndarray  # (C, H, W) as the model sees it
    name: str
    file_id: str  # with the steps switched off: a changed preparation is a new upload to the pages


def upload_image(label: str, key: str, h: models.Handle, multiple: bool = False) -> list[Upload]:
    """A file uploader whose files become model inputs, prepared the way the model's data looks
    (vae_core.prepare), each step shown and undoable; a bad file shows its message, never a traceback."""
    files = st.file_uploader(label, key=key, accept_multiple_files=multiple, **_UPLOAD_KWARGS,
                             help=f"{ACCEPTED_NAMES}, up to {UPLOAD_MB} MB. The subject is found, cropped and "
                                  f"placed as in the model's data, at {h.image_size}x{h.image_size}: see "
                                  "'As the model sees it'.")
    uploads = []
    skip_key = f"{key}::skip"
    skip = frozenset(st.session_state.get(skip_key, ()))
    files = files if multiple else [files] if files is not None else []
    _drop_replaced(f"{key}::files", files)
    for f in files:
        try:
            refusal = streamlit_internals.upload_refusal(f.file_id)
            if refusal:
                raise ImageError(refusal)
            prepared = _prepare(f.getvalue(), h.config.train.dataset, h.image_size, h.channels, skip,
                                streamlit_internals.session_id())
        except ImageError as exc:
            # a one-file uploader's message is hidden by the page's style once the browser refuses a later file
            # itself (too large): see UPLOAD_STYLE
            with st.container(key=None if multiple else f"{STALE_ERROR_PREFIX}{key}"):
                st.error(f"{plain(f.name)}: {plain(exc, 300)}")
            continue
        show_preparation(prepared, f.name, skip_key, skip)
        uploads.append(Upload(prepared.image, f.name, f"{f.file_id}::{','.join(sorted(skip))}"))
    return uploads


def _drop_replaced(held_key: str, files: list) -> None:
    """The server forgets the files an uploader showed before and shows no more (a browser deletes a replaced file
    itself; a script need not), so a session holds only what its uploaders show. The widget's value of the run
    before still held a replaced file's bytes until this run ended: emptied too."""
    shown = {f.file_id for f in files}
    gone = [f for f in st.session_state.get(held_key, []) if f.file_id not in shown]
    if gone:
        streamlit_internals.drop_uploads({f.file_id for f in gone})
        for f in gone:
            f.seek(0)
            f.truncate(0)
    st.session_state[held_key] = list(files)


def show_preparation(prepared: Prepared, name: str, skip_key: str, skip: frozenset[str]) -> None:
    """Under 'As the model sees it': the upload, each step that changed it, the model's input; a switch per step."""
    with st.expander(f"As the model sees it: {plain(name, 40)}", expanded=False):
        pictures = np.stack([prepared.original, *(picture for _, picture, _ in prepared.steps), prepared.image])
        names = ["your image", *(step for step, _, _ in prepared.steps), "the model's input"]
        show_image(image_grid(pictures, 1, len(pictures), pad=4, pad_value=0.75), " → ".join(names),
                   px=96 * len(pictures))
        for step, _, note in prepared.steps:
            st.caption(f"**{step}**: {note}")
        offered = [s for s in STEPS if s in prepared.applied or s in skip]
        if offered:
            chosen = st.pills("Undo a step", offered, selection_mode="multi", default=sorted(skip & set(offered)),
                              key=f"{skip_key}::pills::{name}",
                              help="A step switched off here is left out for every upload of this uploader.")
            if frozenset(chosen) != skip & set(offered):
                st.session_state[skip_key] = sorted(set(chosen) | (skip - set(offered)))
                st.rerun()


@dataclass
class Picked:
    """An image (or a bare latent point) chosen as a starting point or an endpoint."""

    label: str
    image: np.ndarray | None  # (C, H, W) as the model sees it, or None for a point drawn from the prior
    z: np.ndarray  # (latent_dim,) the posterior mean of the image, or the drawn point
    logvar: np.ndarray | None = None
    reconstruction: np.ndarray | None = None  # (C, H, W): decoded at z, made by the encoding pass

    def posterior(self) -> dict:
        """What Explore shows under its sliders for an encoded image: the posterior's mean and spread, the source."""
        return {"mu": self.z, "sigma": np.exp(0.5 * self.logvar), "source": self.label, "image": self.image}


def encode_one(h: models.Handle, image: np.ndarray, label: str) -> Picked:
    terms = elbo_terms(h.model, image[None])
    return Picked(label, image, terms["mu"][0], terms["logvar"][0], terms["reconstruction"][0])


def pick_image(key: str, h: models.Handle, sources: tuple[str, ...], extra: dict[str, Picked] | None = None,
               number: int = 0, default: str | None = None) -> Picked | None:
    """Choose an image: a dataset example, an upload, a random prior sample (and any `extra` choices); the
    choice `default` is chosen first where it is offered (a dataset example only where the model has data)."""
    dataset, note = models.dataset_for(h)
    options = [*(extra or {}), *(s for s in sources if s != "Dataset example" or dataset is not None)]
    source = st.radio("Source", options, key=f"{key}_src", horizontal=True,
                      index=options.index(default) if default in options else 0)
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


def dim_label(d: int, kl: np.ndarray | None, active: bool, names: list | None = None, markdown: bool = True) -> str:
    """A latent's label: z3 · posX · 2.91 nats, with the factor it carries where the data has factors.

    markdown: escaped for Streamlit's labels (factor names come from a model folder); False for the live
    component, which sets its labels as text (escapes would show there: "skin\\_tone")."""
    carried = None
    if names is not None and d < len(names) and names[d].name != "inactive":
        carried = plain(names[d].name, 40) if markdown else " ".join(names[d].name.split())[:40]
    head = f"z{d} · {carried}" if carried else f"z{d}"
    if kl is None:
        return head
    value = f"{kl[d]:.2f}" if kl[d] >= 0.1 else f"{kl[d]:.3f}"
    return f"{head} · {value} nats" if active else f"{head} · inactive ({value} nats)"


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
