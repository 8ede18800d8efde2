"""The VQ-VAE's code grid on the pages (views/vq_explore.py, views/vq_reconstruct.py): the grid kept in the session
and the address, the codes' frequencies from the card, codebook usage, and why sampling needs a learned prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import models, widgets
from vae_core.models.vqvae import (
    KIND as RECORD,
)
from vae_core.models.vqvae import (
    code_frequencies,
    decode_grids,
    format_code_grid,
    grid_size,
    prior_code_grids,
    reconstruct,
)

__all__ = ["NOT_FOR", "PAGES", "RECORD", "card_line"]

PAGES = {"Explore": "views/vq_explore.py", "Reconstruct": "views/vq_reconstruct.py"}  # the code grid's own
NOT_FOR = {
    "Traversals": "a traversal slides one continuous latent dimension, and a VQ-VAE has none: its code is a grid "
                  "of discrete indices. Change one cell's code on **Explore** instead, the discrete analogue.",
    "Interpolate": "a straight line between two codes is not itself a code: between two grids of indices there is "
                   "no path of codes to decode. Explore's grid editor changes codes cell by cell.",
    "Latent map": "the map projects continuous posterior means, and a VQ-VAE's code is a grid of discrete "
                  "indices (one of K codes per cell), not a point in a space with distances to project.",
    "Disentanglement": "its code is a grid of discrete indices, with no continuous dimensions to traverse, no KL "
                       "per dimension and no factor-by-latent information to show. Its codebook usage is on "
                       "Explore and in the table below.",
}


def card_line(h: models.Handle) -> str:
    """The card's description of the latent: the grid and the codebook."""
    g, options = grid_size(h.config.model), h.config.model.options
    return (f"{g}x{g} grid of codes · codebook of {options.codebook_size} codes × {options.code_dim} dims"
            f"{' (EMA)' if options.vq_ema else ''}")


def grid_key(h: models.Handle) -> str:
    return f"vq_grid::{h.name}"


def set_grid(h: models.Handle, grid: np.ndarray, source: str) -> None:
    st.session_state[grid_key(h)] = np.asarray(grid, dtype=np.int64)
    st.session_state[f"{grid_key(h)}::source"] = source
    st.session_state[f"{grid_key(h)}::version"] = st.session_state.get(f"{grid_key(h)}::version", 0) + 1
    st.query_params["codes"] = format_code_grid(grid)


def frequencies(h: models.Handle) -> np.ndarray | None:
    figures = h.card.get("evaluation") or h.card.get("final") or {}
    counts = figures.get("code_counts") if isinstance(figures, dict) else None
    try:
        counts = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError):  # a card comes from anyone: strings or nesting mean "no counts"
        return None
    k = h.config.model.options.codebook_size
    if counts.shape != (k,) or not np.isfinite(counts).all() or (counts < 0).any():
        return None
    return code_frequencies(counts, k)


def example_grid(h: models.Handle, number: int) -> np.ndarray | None:
    image = models.dataset_example(h, number)
    return None if image is None else reconstruct(h.model, image[None])["indices"][0]


def codebook_usage(h: models.Handle) -> None:
    figures = h.card.get("evaluation") or h.card.get("final") or {}
    perplexity, unused, recon, samples = (widgets.number(figures, key)
                                          for key in ("perplexity", "unused_codes", "recon", "samples"))
    if None in (perplexity, unused, recon):
        st.caption("Codebook usage appears once the model is evaluated (`python -m vae_core.evaluate`).")
        return
    st.subheader("Codebook usage")
    c = st.columns(3)
    k = h.config.model.options.codebook_size
    c[0].metric("perplexity", f"{perplexity:.1f} of {k}",
                help="exp(entropy of the codes' frequencies): the effective number of codes in use")
    c[1].metric("unused codes", f"{unused:.0f} of {k}",
                help=f"codes no cell of {'?' if samples is None else f'{samples:,.0f}'} images chose")
    c[2].metric("reconstruction", f"{recon:,.1f} nats")
    freq = frequencies(h)
    if freq is not None:
        st.bar_chart(pd.DataFrame({"share of cells": freq / max(freq.sum(), 1)}), x_label="code",
                     y_label="share of cells", height=200)


def prior_note(h: models.Handle) -> None:
    model = h.model
    st.subheader("Why sampling needs a learned prior")
    st.markdown("The VQ-VAE is trained with a **uniform** prior over codes, so the KL term is a constant "
                f"(log {model.num_codes} nats per cell) and teaches the codes nothing about which grids are "
                "likely. Drawing each cell's code uniformly, or even from the codes' frequencies in the data, "
                "ignores how neighbouring cells go together: the samples below are patchworks. The paper fits "
                "an autoregressive prior (a PixelCNN) over the code grid afterwards, and samples from that.")
    seed = st.number_input("Seed", 0, 99_999, 0, key=f"{grid_key(h)}::prior_seed")
    for label, images in _prior_samples(h.path, h.stamp, int(seed)).items():
        st.markdown(f"**{label}**")
        widgets.show_images(images, px=96)
    dataset, _ = models.dataset_for(h)
    if dataset is not None:
        images = np.stack([models.dataset_example(h, i) for i in range(6)])
        st.markdown("**reconstructions of real images, for comparison**")
        widgets.show_images(reconstruct(model, images)["reconstruction"], px=96)


@st.cache_data(max_entries=32, show_spinner=False)
def _prior_samples(path: str, stamp: float, seed: int) -> dict[str, np.ndarray]:
    """Six decoded code grids from each code prior, by label: the same for a seed, so drawn once."""
    h = models.handle_at(path, stamp)
    rows = {"uniform code prior": prior_code_grids(h.model, 6, seed)}
    if (freq := frequencies(h)) is not None:
        rows["empirical code prior (data frequencies)"] = prior_code_grids(h.model, 6, seed, freq)
    return {label: decode_grids(h.model, grids) for label, grids in rows.items()}


@st.cache_data(max_entries=8, show_spinner="Reconstructing a sample of the data...")
def data_recon(path: str, stamp: float, n: int = 1000) -> np.ndarray:
    h = models.handle_at(path, stamp)
    dataset, _ = models.dataset_for(h)
    images = np.stack([dataset.sample(1, np.random.default_rng(20_000 + i))[0][0] for i in range(n)])
    return reconstruct(h.model, images)["recon"]
