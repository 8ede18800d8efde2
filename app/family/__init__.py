"""What the pages show for the rest of the VAE family, one module per kind: `cvae` (the condition selector and
notes), `vqvae` (the code grid's helpers; its Explore and Reconstruct are their own pages, views/vq_*.py, chosen
by the router), `vaegan` (sharpness beside the plain VAE); and here, the plain statement of why a page does not
apply to a kind of model."""

from __future__ import annotations

import streamlit as st

from app import models
from app.text import plain

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
