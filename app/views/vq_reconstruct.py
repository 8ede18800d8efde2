"""Reconstruct for a VQ-VAE: the image, its reconstruction, its code grid, the error against the data's."""

import numpy as np
import pandas as pd
import streamlit as st

from app import charts, models, state, widgets
from app.family import vqvae
from vae_core.models.vqvae import reconstruct

h = state.require_model()
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
    st.stop()
ref = vqvae.data_recon(h.path, h.stamp)
pct = 100.0 * float((ref < out["recon"][0]).mean())
st.subheader(f"Its error is higher than that of {pct:.1f}% of {len(ref):,} training images")
st.plotly_chart(charts.recon_histogram(ref, float(out["recon"][0])), key="vq_recon_hist")
