"""The VAE-GAN on Reconstruct: its reconstruction beside the plain VAE's of the same data, with their sharpness."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from app import models, widgets
from app.text import plain
from vae_core.card_figures import laplacian_variance
from vae_core.checkpoints import CheckpointError, list_models
from vae_core.explore import elbo_terms
from vae_core.kinds import sharpness_partners
from vae_core.models.vaegan import KIND as RECORD

__all__ = ["RECORD"]


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
