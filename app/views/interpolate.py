"""Interpolate: a path through the latent space between two images (or samples), linear or spherical."""

import numpy as np
import streamlit as st
import torch

from app import edit_views, family, models, state, widgets
from app.family import cvae
from app.text import plain
from vae_core.explore import decode
from vae_core.imaging import encode_gif, encode_png, image_grid
from vae_core.latent import interpolate

h = state.require_model()
family.not_for(h, "Interpolate")
st.title("Interpolate")
cvae.condition_note(h)
st.caption("Each endpoint is encoded to its posterior mean; the path between the two codes is decoded step by "
           "step. Spherical interpolation keeps the typical length of a Gaussian sample, so the middle of the "
           "path does not drift toward the (often blurry) origin.")
from_map = st.session_state.get("interp_from_map") or {}
ends = []
for side, col in zip("AB", st.columns(2, gap="large")):
    with col:
        st.subheader(f"Endpoint {side}")
        extra = {"From the map": widgets.encode_one(h, from_map[side]["image"], from_map[side]["label"])} \
            if side in from_map else None
        end = widgets.pick_image(f"interp_{side}", h, ("Dataset example", "Random sample", "Upload"), extra,
                                 number=0 if side == "A" else 1)
        if end is not None:
            shown = [end.image] if end.image is not None else []
            # the encoding pass made it, except where the path decodes under another condition (a CVAE's chosen one)
            same_decoder = end.reconstruction is not None and not h.kind_info.conditional
            end_image = end.reconstruction if same_decoder else decode(h.model, end.z[None])[0]
            widgets.show_images(np.stack([*shown, end_image]), ["as the model sees it"] * len(shown) +
                                ["reconstruction"], px=128)
        ends.append(end)
if None in ends:
    st.info("Choose or upload both endpoints.")
    st.stop()
method = st.radio("Interpolation", ["linear", "spherical"], horizontal=True)
steps = st.slider("Steps", 2, 16, 8)
path = interpolate(torch.from_numpy(ends[0].z), torch.from_numpy(ends[1].z), steps, method)
frames = decode(h.model, path.numpy())
st.subheader(f"From {plain(ends[0].label)} to {plain(ends[1].label)}")  # an upload's name is anyone's: text
strip = image_grid(frames, 1, steps)
widgets.show_image(strip, f"{steps} steps, {method}", px=2 * strip.shape[-1], fit=True)
c1, c2 = st.columns(2)
c1.download_button("Download the strip (PNG)", lambda: encode_png(strip, scale=2), "interpolation.png", "image/png",
                   on_click="ignore")
c2.download_button("Download as animation (GIF)", lambda: encode_gif(frames, scale=4), "interpolation.gif",
                   "image/gif", on_click="ignore")
if models.edits(h)[0] and not h.kind_info.conditional:
    with st.expander("Edit the endpoints: each learned edit applied to each (make a face smile)"):
        for end in ends:
            edit_views.on_image(h, end.z, end.label)
