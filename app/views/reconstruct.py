"""Reconstruct: an image, its reconstruction, its ELBO terms, and how unusual its error is (anomaly detection)."""

import numpy as np
import streamlit as st

from app import charts, family, models, state, widgets
from vae_core.explore import elbo_terms, percentile_rank

h = state.require_model()
if h.kind == "vq-vae":
    family.vq_reconstruct(h)
    st.stop()
st.title("Reconstruct")
st.caption("A VAE reconstructs what resembles its training data well and anything else badly, so its "
           "reconstruction error is an anomaly score: compare an image's error with the training data's.")
picked = widgets.pick_image("recon", h, ("Dataset example", "Upload"))
if picked is None:
    st.info("Upload an image, or choose a dataset example.")
    st.stop()
terms = elbo_terms(h.model, picked.image[None])
recon, kl = float(terms["recon"][0]), float(terms["kl"][0])
c1, c2 = st.columns([1, 1])
with c1:
    widgets.show_images(np.stack([picked.image, terms["reconstruction"][0]]),
                        ["as the model sees it", "reconstruction"], px=192)
with c2:
    m = st.columns(3)
    m[0].metric("reconstruction", f"{recon:,.1f} nats", help="−log p(x | z) at the posterior mean")
    m[1].metric("KL", f"{kl:,.2f} nats", help="KL(q(z | x) ‖ p(z)): what the code costs")
    m[2].metric("−ELBO", f"{recon + kl:,.1f} nats", help="reconstruction + KL, a bound on −log p(x)")
    if h.kind == "cvae":
        family.inferred_condition_note(h, picked.image)
family.sharpness_comparison(h, picked.image)
sample = models.data_sample(h)
if sample is None:
    st.info(f"No comparison with the training data: {models.dataset_for(h)[1]}.")
    st.stop()
pct = percentile_rank(recon, sample["recon"])
verdict = ("far outside what the model was trained on" if pct >= 99 else "unusual for this model" if pct >= 95
           else "typical of the training data")
st.subheader(f"Its error is higher than that of {pct:.1f}% of {len(sample['recon']):,} training images: {verdict}")
st.plotly_chart(charts.recon_histogram(sample["recon"], recon), key="recon_hist")
