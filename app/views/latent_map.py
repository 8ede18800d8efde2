"""Latent map: the data's posterior means in 2-D (UMAP or PCA); select points to see their images."""

from pathlib import Path

import numpy as np
import streamlit as st

from app import charts, family, map_chart, models, state, widgets
from app.family import cvae
from vae_core.explore import decode
from vae_core.projection import encode_means, images_for_rows, place_points

h = state.require_model()
family.not_for(h, "Latent map")
dataset, note = models.dataset_for(h)
proj, live = models.map_projection(h)
st.title("Latent map")
cvae.condition_note(h)
if (problem := models.projection(h)[1]) is not None:
    st.warning(f"The shipped projection cannot be used: {problem}")
if proj is None:
    st.info(f"No map: this model has no projection.npz and {note}. "
            "Write one with `python -m vae_core.evaluate <model folder>`.")
    st.stop()
if live:
    st.info(f"This model has no projection.npz: below is a live PCA of {proj.num_points:,} images. UMAP coordinates "
            "come with `python -m vae_core.evaluate <model folder>`.")
c1, c2 = st.columns([1, 2])
kind = c1.radio("Coordinates", ["UMAP", "PCA"] if proj.umap is not None else ["PCA"], horizontal=True)
varying = [n for k, n in enumerate(proj.factor_names) if len(np.unique(proj.factors[:, k])) > 1]
with c2:
    uploads = widgets.upload_image("Place your own images on the map", "map_upload", h, multiple=True)
coords = proj.umap if kind == "UMAP" else proj.pca
placed = None
if uploads:
    placed = place_points(encode_means(h.model, np.stack([u.image for u in uploads]))[0], proj.means, coords)
map_chart.show(coords, proj, map_chart.colour_choices(varying, dataset), varying[0] if varying else map_chart.NO_COLOUR,
               placed, [u.name for u in uploads], kind, "map_chart",
               on_select=lambda: st.session_state.update(  # kept when it redraws
                   map_selection={**(st.session_state["map_chart"]["selection"] or {}), "model": h.name}),
               pictures_key=(h.path, models.folder_stamp(Path(h.path)), live), dataset=dataset)
pictured = min(proj.num_points, map_chart.MAX_PICTURES)
st.caption(f"Pictures on the map need the model's data: {note}." if dataset is None else
           "Hover over a point to see its image; zoom in (or tick \"pictures\") for a map of pictures"
           + ("." if pictured == proj.num_points else
              f" ({pictured:,} of the {proj.num_points:,} points, drawn at random, carry theirs)."))
st.caption("How to read it: nearby points have similar codes. UMAP keeps neighbourhoods, not distances: the gaps "
           "between clusters, their sizes and their positions mean little. PCA is a linear shadow: distances along "
           "its two axes are real, but points far apart in the other dimensions can land on top of each other. "
           + (f"PCA here explains {proj.pca_explained.sum():.0%} of the variance." if kind == "PCA" else ""))
selection = st.session_state.get("map_selection") or {}
mine = selection.get("model", h.name) == h.name
if mine and (centre := charts.selection_centre(selection)) is not None:
    # the map as a canvas: the latent under the centre of what was drawn, from the nearest points on the map
    z = place_points(np.array([centre]), coords, proj.means, k=8)[0].astype(np.float32)
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    with c1:
        widgets.show_image(decode(h.model, z[None])[0], f"decoded at ({centre[0]:.1f}, {centre[1]:.1f})", px=160)
    with c2:
        st.caption("Decoded at the centre of your box or lasso: the latent there is the distance-weighted mean "
                   "of the 8 nearest points' latents on the map. Draw anywhere, even between clusters.")
        if st.button("Open this point in Explore"):
            state.send_to_explore(z, None)
rows = charts.selected_rows(selection, proj.num_points) if mine else []
if not rows:
    st.caption("Drag a box or a lasso on the map (or click a point) to see the images there.")
    st.stop()
st.subheader(f"{len(rows)} selected" + (" (showing 24)" if len(rows) > 24 else ""))
if dataset is None:
    st.info(f"The images cannot be shown: {note}.")
    st.stop()
shown = rows[:24]
widgets.show_images(images_for_rows(dataset, proj, shown), [widgets.factor_text(dataset, proj, r, varying) for r in shown],
                    px=96)
images = images_for_rows(dataset, proj, rows[:2])
b1, b2 = st.columns(2)
if b1.button("Open the first in Explore"):
    point = widgets.Picked(f"map point {rows[0]}", images[0], proj.means[rows[0]], proj.logvars[rows[0]])
    state.send_to_explore(point.z, point.posterior())
if b2.button("Interpolate between the first two", disabled=len(rows) < 2):
    state.send_to_interpolate({"label": f"map point {rows[0]}", "image": images[0]},
                              {"label": f"map point {rows[1]}", "image": images[1]})
