"""What the pages show for the rest of the VAE family: the conditional VAE's condition selector, the VQ-VAE's
code-grid editor and reconstruction, the VAE-GAN's sharpness beside the plain VAE, and the plain statement of
why a page does not apply to a kind of model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from app import charts, models, widgets
from app.text import plain
from vae_core.card_figures import laplacian_variance
from vae_core.checkpoints import CheckpointError, list_models
from vae_core.explore import decode, elbo_terms
from vae_core.kinds import sharpness_partners
from vae_core.models.cvae import ConditionError, condition_index
from vae_core.models.vqvae import (
    CodeError,
    code_frequencies,
    decode_grids,
    format_code_grid,
    parse_code_grid,
    prior_code_grids,
    reconstruct,
)

NOT_FOR_VQ = {
    "Traversals": "a traversal slides one continuous latent dimension, and a VQ-VAE has none: its code is a grid "
                  "of discrete indices. Change one cell's code on **Explore** instead, the discrete analogue.",
    "Interpolate": "a straight line between two codes is not itself a code: between two grids of indices there is "
                   "no path of codes to decode. Explore's grid editor changes codes cell by cell.",
    "Latent map": "the map projects continuous posterior means, and a VQ-VAE's code is a grid of discrete "
                  "indices (one of K codes per cell), not a point in a space with distances to project.",
}


def not_for(h: models.Handle, page: str) -> None:
    """Stop the page (under its title) with the reason when it does not apply to this kind of model."""
    if not h.kind_info.continuous_latent and page in NOT_FOR_VQ:
        st.title(page)
        st.info(f"**{plain(h.name)}** is a VQ-VAE. This page does not apply: {NOT_FOR_VQ[page]}")
        st.stop()


# ---- conditional VAE

def condition_selector(h: models.Handle) -> None:
    """The condition beside the sliders, bound to the URL (?condition=NAME); a bad value gets a message."""
    names = list(h.config.model.condition_names)
    key = models.condition_key(h)
    asked = st.query_params.get("condition")
    if asked is not None and asked != st.session_state.get("_condition_seen"):
        st.session_state["_condition_seen"] = asked
        try:
            st.session_state[key] = condition_index(tuple(names), asked)
        except ConditionError as exc:
            st.error(f"The address asks for condition {plain(repr(asked))}: {plain(exc, 300)}")

    def chosen():
        st.session_state[key] = names.index(st.session_state[f"{key}::box"])
        st.session_state["_condition_seen"] = st.query_params["condition"] = st.session_state[f"{key}::box"]

    st.session_state[f"{key}::box"] = names[int(st.session_state.get(key, 0))]
    st.selectbox(f"Condition: {h.config.train.condition}", names, key=f"{key}::box", on_change=chosen,
                 help="The decoder is told this value; the sliders hold everything else.")
    condition = h.config.train.condition
    st.caption(f"**Content versus style.** The condition tells both networks the {condition}, so the latent need "
               f"not encode it: switch the condition and the {condition} changes while the sliders keep the rest "
               "(on dSprites: position, scale and rotation). The latent holds the style; the condition is the "
               f"content. An encoded image is encoded under the condition its ELBO prefers.{_swap_measured(h)}")


def condition_strip(h: models.Handle, z: np.ndarray) -> None:
    """The point decoded under every value of the condition: the content-versus-style lesson at a glance."""
    cvae = h.loaded.model
    names = list(h.config.model.condition_names)
    images = np.concatenate([decode(cvae.bound(c), z[None]) for c in range(len(names))])
    st.caption(f"The same latent point under each {h.config.train.condition}:")
    widgets.show_images(images, names, px=64)


def _swap_measured(h: models.Handle) -> str:
    """What the card measured of the content-versus-style lesson, in words ("" for a card without it)."""
    condition = h.config.train.condition
    swap, leak = h.card.get("swap"), h.card.get("leak")
    accuracy, decodes, chance = (widgets.number(swap, key) for key in ("accuracy", "decodes", "chance"))
    if None in (accuracy, decodes, chance):
        return ""
    per_value = swap.get("per_value") if isinstance(swap.get("per_value"), dict) else {}
    shown = ", ".join(f"{k} {widgets.number(per_value, k):.0%}" for k in per_value
                      if widgets.number(per_value, k) is not None)
    text = (f" How far this model has learned it: with an image's latent fixed, switching to another {condition} "
            f"draws that {condition} in **{accuracy:.0%}** of {int(decodes):,} decodes "
            f"({shown + '; ' if shown else ''}chance {chance:.0%})")
    judge, own = widgets.number(swap, "judge_accuracy"), widgets.number(swap, "own")
    if judge is not None and own is not None:
        text += (f", as judged by a classifier that tells the real images' {condition} {judge:.1%} of the time; "
                 f"under the image's own {condition}, {own:.0%} are judged right")
    text += "."
    probe, probe_chance = widgets.number(leak, "accuracy"), widgets.number(leak, "chance")
    if probe is not None and probe_chance is not None:
        text += (f" A probe reads the {condition} back from the latent for {probe:.0%} of held-out images "
                 f"(chance {probe_chance:.0%}): what the latent still holds of it, the decoder can redraw "
                 "whatever the condition says.")
    if h.config.train.adversary > 0:
        text += (f" This model trained beside an adversary that learned to read the {condition} from the latent, "
                 f"the encoder paying {h.config.train.adversary:g} times what it could read.")
    return text


def condition_note(h: models.Handle) -> None:
    """On pages that decode: which condition their images are decoded under."""
    if h.kind_info.conditional:
        st.caption(f"Conditional VAE: images are decoded under {h.config.train.condition} = "
                   f"**{h.model.condition_name}** (choose it on Explore); encoded images under the condition "
                   "their ELBO prefers.")


def inferred_condition_note(h: models.Handle, image: np.ndarray) -> None:
    """Which condition the CVAE reconstructs an image under: the one whose ELBO is best (a classifier)."""
    with torch.inference_mode():
        scores = h.loaded.model.condition_scores(torch.from_numpy(image[None]).float())[0].numpy()
    names = h.config.model.condition_names
    ranked = ", ".join(f"{names[i]} {scores[i]:,.1f}" for i in np.argsort(scores))
    st.caption(f"Reconstructed under {h.config.train.condition} = **{names[int(scores.argmin())]}**, the condition "
               f"with the best ELBO (−ELBO in nats: {ranked}). The CVAE used this way is a classifier.")


# ---- VQ-VAE

def _grid_key(h: models.Handle) -> str:
    return f"vq_grid::{h.name}"


def _set_grid(h: models.Handle, grid: np.ndarray, source: str) -> None:
    st.session_state[_grid_key(h)] = np.asarray(grid, dtype=np.int64)
    st.session_state[f"{_grid_key(h)}::source"] = source
    st.session_state[f"{_grid_key(h)}::version"] = st.session_state.get(f"{_grid_key(h)}::version", 0) + 1
    st.query_params["codes"] = format_code_grid(grid)


def _frequencies(h: models.Handle) -> np.ndarray | None:
    figures = h.card.get("evaluation") or h.card.get("final") or {}
    counts = figures.get("code_counts") if isinstance(figures, dict) else None
    try:
        counts = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError):  # a card comes from anyone: strings or nesting mean "no counts"
        return None
    if counts.shape != (h.config.model.codebook_size,) or not np.isfinite(counts).all() or (counts < 0).any():
        return None
    return code_frequencies(counts, h.config.model.codebook_size)


def _example_grid(h: models.Handle, number: int) -> np.ndarray | None:
    image = models.dataset_example(h, number)
    return None if image is None else reconstruct(h.model, image[None])["indices"][0]


def vq_explore(h: models.Handle) -> None:
    """Explore for a VQ-VAE: the code grid, editable cell by cell, and its decoded image."""
    model, m = h.model, h.config.model
    k, g = m.codebook_size, model.grid
    st.title("Explore the code grid")
    st.caption(f"A VQ-VAE encodes an image as a grid of {g}x{g} indices into a codebook of {k} learned vectors; "
               "the decoder turns the grid back into an image. Change a cell's code and decode: each code is a "
               "learned piece of an image, placed by its cell. The grid is in the page address (`?codes=`).")
    key = _grid_key(h)
    asked = st.query_params.get("codes")
    if asked is not None and asked != format_code_grid(st.session_state.get(key, np.zeros(0))):
        try:
            _set_grid(h, parse_code_grid(asked, model), "the page address")
        except CodeError as exc:
            st.error(f"The code grid in the address was refused: {plain(exc, 300)}")
    if key not in st.session_state:
        grid = _example_grid(h, 0)
        _set_grid(h, np.zeros((g, g), np.int64) if grid is None else grid,
                  "code 0 everywhere" if grid is None else "dataset example #0")
    b = st.columns(3)
    number = b[0].number_input("Dataset example", 0, 99_999, 0, key=f"{key}::n")
    if b[0].button("Encode this example", disabled=models.dataset_for(h)[0] is None):
        _set_grid(h, _example_grid(h, int(number)), f"dataset example #{number}")
    seed = int(np.random.default_rng().integers(2**31))
    if b[1].button("Uniform code prior sample", help="every cell's code drawn uniformly from the codebook"):
        _set_grid(h, prior_code_grids(model, 1, seed)[0], "a uniform code prior sample")
    freq = _frequencies(h)
    if b[2].button("Empirical code prior sample", disabled=freq is None,
                   help="every cell's code drawn from the codes' frequencies in the data, independently"):
        _set_grid(h, prior_code_grids(model, 1, seed, freq)[0], "an empirical code prior sample")
    for up in widgets.upload_image("Start from your own image", f"{key}::upload", h):
        if st.session_state.get(f"{key}::upload_id") != up.file_id:
            st.session_state[f"{key}::upload_id"] = up.file_id
            _set_grid(h, reconstruct(model, up.image[None])["indices"][0], up.name)
    grid = st.session_state[key]
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.markdown(f"**Code indices** (from {plain(st.session_state[f'{key}::source'])}): edit a cell, 0 to {k - 1}")
        frame = pd.DataFrame(grid, columns=[f"c{j}" for j in range(g)], index=[f"r{i}" for i in range(g)])
        edited = st.data_editor(frame, key=f"{key}::editor{st.session_state[f'{key}::version']}",
                                column_config={c: st.column_config.NumberColumn(c, step=1, format="%d")
                                               for c in frame.columns})
        try:
            new = np.asarray(edited.to_numpy(), dtype=np.float64)
            if not np.isfinite(new).all() or (new != np.round(new)).any():
                raise CodeError("every cell holds a whole number")
            model.check_codes(new.astype(np.int64))
            if not np.array_equal(new.astype(np.int64), grid):
                grid = new.astype(np.int64)
                st.session_state[key] = grid
                st.query_params["codes"] = format_code_grid(grid)
        except (CodeError, ValueError, TypeError) as exc:
            st.error(f"Edit refused: {plain(exc, 300)}. The image shows the last valid grid.")
        c = st.columns(3)
        row = c[0].selectbox("Row", range(g), key=f"{key}::row")
        col = c[1].selectbox("Column", range(g), key=f"{key}::col")
        code = c[2].number_input("Code", value=int(grid[row, col]), step=1, key=f"{key}::code::{row}::{col}")
        if st.button("Set this cell's code"):
            if not 0 <= code < k:
                st.error(f"Code {code} is refused: this model's codebook has codes 0 to {k - 1}.")
            else:
                grid = grid.copy()
                grid[row, col] = code
                _set_grid(h, grid, "your edits")
                st.rerun()
    with right:
        widgets.show_image(decode_grids(model, grid[None])[0], "decoded code grid", px=384)
    codebook_usage(h)
    prior_note(h)


def codebook_usage(h: models.Handle) -> None:
    figures = h.card.get("evaluation") or h.card.get("final") or {}
    perplexity, unused, recon, samples = (widgets.number(figures, key)
                                          for key in ("perplexity", "unused_codes", "recon", "samples"))
    if None in (perplexity, unused, recon):
        st.caption("Codebook usage appears once the model is evaluated (`python -m vae_core.evaluate`).")
        return
    st.subheader("Codebook usage")
    c = st.columns(3)
    k = h.config.model.codebook_size
    c[0].metric("perplexity", f"{perplexity:.1f} of {k}",
                help="exp(entropy of the codes' frequencies): the effective number of codes in use")
    c[1].metric("unused codes", f"{unused:.0f} of {k}",
                help=f"codes no cell of {'?' if samples is None else f'{samples:,.0f}'} images chose")
    c[2].metric("reconstruction", f"{recon:,.1f} nats")
    freq = _frequencies(h)
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
    seed = st.number_input("Seed", 0, 99_999, 0, key=f"{_grid_key(h)}::prior_seed")
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
    if (freq := _frequencies(h)) is not None:
        rows["empirical code prior (data frequencies)"] = prior_code_grids(h.model, 6, seed, freq)
    return {label: decode_grids(h.model, grids) for label, grids in rows.items()}


def vq_reconstruct(h: models.Handle) -> None:
    """Reconstruct for a VQ-VAE: the image, its reconstruction, its code grid, the error against the data's."""
    st.title("Reconstruct")
    st.caption("A VQ-VAE reconstructs from the nearest codes; what resembles its training data comes back well, "
               "anything else badly, so the reconstruction error is an anomaly score.")
    dataset, note = models.dataset_for(h)
    sources = (["Dataset example"] if dataset is not None else []) + ["Upload"]
    source = st.radio("Source", sources, key="vqrec_src", horizontal=True)
    image, label = None, None
    if source == "Dataset example":
        number = st.columns([1, 2])[0].number_input("Example number", 0, 99_999, 0, key="vqrec_n")
        image, label = models.dataset_example(h, number), f"dataset example #{number}"
    else:
        uploads = widgets.upload_image("Upload an image", "vqrec_upload", h)
        if uploads:
            image, label = uploads[0].image, uploads[0].name
    if image is None:
        st.info("Upload an image, or choose a dataset example.")
        st.stop()
    out = reconstruct(h.model, image[None])
    c1, c2 = st.columns(2)
    with c1:
        widgets.show_images(np.stack([image, out["reconstruction"][0]]), [label, "reconstruction"], px=192)
    with c2:
        m = st.columns(2)
        m[0].metric("reconstruction", f"{float(out['recon'][0]):,.1f} nats", help="−log p(x | codes)")
        kl = h.model.grid ** 2 * np.log(h.model.num_codes)
        m[1].metric("KL", f"{kl:,.1f} nats", help="constant: log K per cell under the uniform code prior")
        st.markdown("**Its code grid**")
        st.dataframe(pd.DataFrame(out["indices"][0]), height=35 * (h.model.grid + 1))
    if dataset is None:
        st.info(f"No comparison with the training data: {note}.")
        return
    ref = _vq_data_recon(h.path, h.stamp)
    pct = 100.0 * float((ref < out["recon"][0]).mean())
    st.subheader(f"Its error is higher than that of {pct:.1f}% of {len(ref):,} training images")
    st.plotly_chart(charts.recon_histogram(ref, float(out["recon"][0])), key="vq_recon_hist")


@st.cache_data(max_entries=8, show_spinner="Reconstructing a sample of the data...")
def _vq_data_recon(path: str, stamp: float, n: int = 1000) -> np.ndarray:
    h = models.handle_at(path, stamp)
    dataset, _ = models.dataset_for(h)
    images = np.stack([dataset.sample(1, np.random.default_rng(20_000 + i))[0][0] for i in range(n)])
    return reconstruct(h.model, images)["recon"]


# ---- VAE-GAN: sharpness beside the plain VAE

def sharpness_comparison(h: models.Handle, image: np.ndarray) -> None:
    """For a VAE-GAN or a plain VAE on the same data: both models' reconstructions of this image side by side,
    with the sharpness figures of their cards."""
    partner = next((e for e in list_models() if e.error is None and e.config is not None and e.name != h.name
                    and sharpness_partners(h.config, e.config)), None)
    if partner is None:
        return
    try:
        other = models.open_model(partner)
    except CheckpointError as exc:
        st.warning(f"{plain(partner.name)} cannot be loaded for the comparison: {plain(exc, 300)}")
        return
    gan, vae = (h, other) if h.kind_info.adversarial else (other, h)
    st.subheader("Sharpness: VAE-GAN beside the plain VAE")
    st.caption("A pixel likelihood rewards the blurry average of the images that could have produced a code; "
               "the VAE-GAN's decoder must also fool a discriminator, which punishes blur. Sharpness is the "
               "variance of the Laplacian of the grey level: higher is sharper (the data's own figure is the "
               "target).")
    cols = st.columns(2)
    for col, model_h in zip(cols, (vae, gan)):
        with col:
            rec = elbo_terms(model_h.model, image[None])["reconstruction"][0]
            here = float(laplacian_variance(torch.from_numpy(rec[None]))[0])
            widgets.show_image(rec, f"{model_h.name}: sharpness of this reconstruction {here:.4f}", px=256)
            s = model_h.card.get("sharpness", {})
            if isinstance(s, dict) and "reconstructions" in s:
                st.caption(f"card: reconstructions {s['reconstructions']:.4f}, prior samples {s['samples']:.4f}, "
                           f"data {s['data']:.4f} (mean over {s['images']} images)")
            else:
                st.caption("card: no sharpness figure yet (`python -m vae_core.evaluate`)")
