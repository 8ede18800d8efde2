"""Reconstruct: an image, its reconstruction, its ELBO terms and likelihood bound, how unusual its error is
(anomaly detection), and a noisy copy cleaned by the model (denoising)."""

import numpy as np
import streamlit as st

from app import charts, edit_views, models, state, widgets
from app.family import cvae, vaegan
from app.text import plain
from vae_core.corruption import code_sparsity
from vae_core.explore import (
    NEAR_DATA_FACTOR,
    NEIGHBOURS,
    denoise,
    elbo_terms,
    near_data_factor,
    nearest_rows,
    percentile_rank,
)
from vae_core.likelihood import image_bounds
from vae_core.projection import images_for_rows

IWAE_CHOICES = (1, 10, 100, 1000)


def nearest_data_factor(h: models.Handle, image: np.ndarray, mu: np.ndarray, error: float,
                        errors: np.ndarray) -> float | None:
    """`near_data_factor` against the training images whose codes are nearest `mu`, or None where the data's
    images or the errors of its sampled points are not at hand."""
    proj, _ = models.map_projection(h)  # the points `errors` were measured on (models.data_errors)
    dataset, _ = models.dataset_for(h)
    if proj is None or dataset is None or len(errors) > proj.num_points:
        return None
    rows = nearest_rows(mu, proj.means[:len(errors)], NEIGHBOURS)  # the points whose errors were recorded
    m = h.config.model
    return near_data_factor(image, error, images_for_rows(dataset, proj, rows), errors[rows], m.likelihood,
                            m.gaussian_std)


h = state.require_model()
t = h.config.train
st.title("Reconstruct")
st.caption("A VAE reconstructs what resembles its training data well and anything else badly, so its "
           "reconstruction error is an anomaly score: compare an image's error with the training data's.")
picked = widgets.pick_image("recon", h, ("Dataset example", "Upload"))
if picked is None:
    st.info("Upload an image, or choose a dataset example.")
    st.stop()
terms = elbo_terms(h.model, picked.image[None])
recon, kl = float(terms["recon"][0]), float(terms["kl"][0])
is_ae = not h.objective_info.has_kl
c1, c2 = st.columns([1, 1])
with c1:
    widgets.show_images(np.stack([picked.image, terms["reconstruction"][0]]),
                        ["as the model sees it", "reconstruction"], px=192)
with c2:
    m = [*st.columns(2), *st.columns(2)]  # two rows of two: the figures keep their digits
    m[0].metric("reconstruction", f"{recon:,.1f} nats", help="−log p(x | z) at the posterior mean")
    if not is_ae:  # an autoencoder's log-variance output is never trained: its "KL" would be noise
        m[1].metric("KL", f"{kl:,.2f} nats", help="KL(q(z | x) ‖ p(z)): what the code costs")
        m[2].metric("−ELBO", f"{recon + kl:,.1f} nats", help="reconstruction + KL, a bound on −log p(x)")
    if is_ae:
        st.caption("A plain autoencoder has no trained posterior spread, so it has no KL or ELBO, and it has no "
                   "likelihood bound: only its reconstruction.")
        if t.l1 > 0:
            st.caption(f"Sparse autoencoder (L1 weight {t.l1:g}): "
                       f"{100 * code_sparsity(terms['mu']):.0f}% of this image's code entries are near zero "
                       "(below a tenth of its largest).")
    elif h.kind_info.conditional:
        card = widgets.card_iwae(h.card)
        condition = plain(h.config.model.options.condition)
        measured = (f" The model card's average over {card[0]:,} images, each given its true {condition}: "
                    f"−IWAE {card[1]:,.1f} nats/image (k = {card[2]}), a bound on −log p(x | {condition})."
                    if card else "")
        st.caption("No per-image importance-weighted bound: a conditional VAE's is on −log p(x | condition), and "
                   f"an uploaded image has no known condition.{measured}")
    elif h.objective_info.iwae is None:
        st.caption(f"No importance-weighted bound: it is computed here for Gaussian-posterior VAEs, not the "
                   f"{t.objective} objective.")
    else:
        k = st.select_slider("importance samples k", IWAE_CHOICES, value=100, key="recon_iwae_k",
                             help="Burda et al.'s bound tightens as k grows; k = 1 is an ordinary ELBO estimate")
        bound = image_bounds(h.model, picked.image[None], k=int(k), seed=0)
        m[3].metric(f"−IWAE (k={k})", f"{-float(bound['iwae'][0]):,.1f} nats",
                    help="the importance-weighted bound: −log p(x) ≤ −L_k, tightening as k grows; from k draws "
                         "of q(z | x), seed 0. The −ELBO beside it puts z at the posterior mean (a steady "
                         "score), so at small k the sampled bound can sit a little above it.")
        if card := widgets.card_iwae(h.card):
            st.caption(f"The model card's average over {card[0]:,} images of its data: "
                       f"−IWAE {card[1]:,.1f} nats/image (k = {card[2]}), the figure to compare models of the same "
                       "data by.")

    if h.kind_info.conditional:
        cvae.inferred_condition_note(h, picked.image)
if not h.kind_info.conditional:
    edit_views.on_image(h, terms["mu"][0], picked.label)

if h.kind_info.conditional:
    st.caption("No denoising demo: a conditional VAE decodes under a condition, so its reconstruction of a "
               "noisy copy would mix in the condition guess.")
else:
    st.subheader("Denoising: a noisy copy and its cleaned reconstruction")
    denoiser = t.corruption != "none"
    if denoiser:
        st.caption(f"This model is a denoising autoencoder: it was trained to rebuild clean images from copies with "
                   f"{t.corruption} corruption at level {t.corruption_level:g}.")
    else:
        st.caption("This model was trained on clean images only; a denoising autoencoder (`--objective ae "
                   "--corruption gaussian --corruption-level 0.3`) learns to remove the noise. Any model's "
                   "reconstruction pulls a noisy image back towards what its training data looks like.")
    d1, d2, _ = st.columns([1, 1, 2])
    kind = d1.radio("Corruption", ("gaussian", "mask"), horizontal=True, key="recon_noise_kind",
                    index=1 if t.corruption == "mask" else 0)
    default = t.corruption_level if denoiser and kind == t.corruption else (0.3 if kind == "gaussian" else 0.5)
    level = d2.slider("noise std" if kind == "gaussian" else "fraction of pixels dropped", 0.0, 1.0,
                      float(round(min(default, 1.0), 2)), 0.05, key=f"recon_noise_{kind}")
    result = denoise(h.model, picked.image, kind, float(level), seed=0)
    n1, n2 = st.columns([3, 2])
    with n1:
        widgets.show_images(np.stack([picked.image, result["noisy"], result["cleaned"]]),
                            ["clean", "noisy copy", "its reconstruction"], px=128)
    with n2:
        e = st.columns(2)
        e[0].metric("noisy vs clean", f"{result['noisy_error']:.4f}", help="mean squared error per pixel")
        e[1].metric("reconstruction vs clean", f"{result['cleaned_error']:.4f}",
                    delta=f"{result['cleaned_error'] - result['noisy_error']:+.4f}", delta_color="inverse",
                    help="mean squared error per pixel; below the noisy copy's means the model removed noise")
vaegan.sharpness_comparison(h, picked.image)
errors = models.data_errors(h)
if errors is None:
    st.info(f"No comparison with the training data: {models.dataset_for(h)[1]}.")
    st.stop()
pct = percentile_rank(recon, errors)
upload = not picked.label.startswith("dataset example")
# a drawing is never exactly a training image: above the data's errors, an upload is compared with the training
# images nearest it, so one the model reconstructs as it does them is not called far outside
factor = nearest_data_factor(h, picked.image, terms["mu"][0], recon, errors) if upload and pct >= 95 else None
near = factor is not None and factor <= NEAR_DATA_FACTOR
verdict = ("close to the training images nearest it" if near else "far outside what the model was trained on"
           if pct >= 99 else "unusual for this model" if pct >= 95 else "typical of the training data")
st.subheader(f"Its error is higher than that of {pct:.1f}% of {len(errors):,} training images: {verdict}")
st.plotly_chart(charts.recon_histogram(errors, recon), key="recon_hist")
compared = (f"its error is {factor:.1f} times that of the {NEIGHBOURS} training images whose codes are nearest its "
            f"own, once what a drawn outline costs is set aside (far outside begins at {NEAR_DATA_FACTOR:g} times)"
            ) if factor is not None else ""
if near:
    st.caption(f"No drawing or photo is exactly one of the training images, so its error is above theirs; but "
               f"{compared}: close enough to count as one of them. Most of the extra error is in details no training "
               "image has, such as the line of an outline or an edge a pixel off.")
elif pct >= 99 and upload:
    st.info("This image, even prepared, is still unlike what the model was trained on, so its reconstruction says "
            f"little about it{f': {compared}' if compared else ''}. Try: one subject on a plain background, "
            "filling more of the picture; a drawing with solid strokes; or undo a preparation step under 'As the "
            "model sees it' if one went wrong.")
