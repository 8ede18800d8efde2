"""Traversals: every latent dimension (rows, by KL) swept across a range (columns) from a starting point."""

import numpy as np
import streamlit as st

from app import family, models, state, widgets
from app.family import cvae
from app.text import plain
from vae_core.imaging import encode_gif, encode_labelled_png, image_grid
from vae_core.latent import traversal_values
from vae_core.naming import truth_sweep

h = state.require_model()
family.not_for(h, "Traversals")
order, active, kl = models.dims(h)
names = models.latent_names(h)
st.title("Traversals")
cvae.condition_note(h)
st.caption("Each row moves one latent dimension from left to right while all the others stay at the starting "
           "point. In a disentangled model each row changes one thing (position, size, shape...).")
left, right = st.columns(2, gap="large")
with left:
    extra = {"Prior mean": widgets.Picked("the prior mean", None, np.zeros(h.latent_dim, np.float32))}
    if (explored := state.explore_point(h)) is not None:
        extra["Explore's point"] = widgets.Picked("the point on Explore", None, explored)
    # a dataset example first where the model has data: the prior mean of many models (dsprites-vae's, a CVAE's)
    # decodes to an empty frame, and so would half the rows
    start = widgets.pick_image("trav", h, ("Dataset example", "Upload"), extra, default="Dataset example")
means = models.data_means(h)
with right:  # only the ranges this starting point has: an encoded image's posterior, the model's data
    ranges = ["prior quantiles", *(["posterior mean ± k σ"] if start is not None and start.logvar is not None
                                   else []), *(["data range"] if means is not None else [])]
    kind = st.radio("Range", ranges, horizontal=True)
    if start is not None and start.logvar is None:
        st.caption("The range of the posterior (mean ± k σ) needs an encoded image: a dataset example or an upload.")
    steps = st.slider("Steps", 3, 15, 9)
    only_active = st.checkbox("Only active dimensions (KL > 0.01 nats)", value=False)
    dataset, _ = models.dataset_for(h)
    truth = names is not None and hasattr(dataset, "images_from_factors") and st.checkbox(
        "Beside each named row, the data's own sweep of that factor", value=True,
        help="The dataset rendered from its factors: the starting example with only the row's factor moved over "
             "its whole range. A disentangled row changes what its sweep changes, and nothing else.")
    quantile = st.slider("Central prior mass", 0.50, 0.99, 0.95, disabled=kind != "prior quantiles")
    k = st.slider("k (posterior σ)", 0.5, 6.0, 3.0, disabled=kind != "posterior mean ± k σ")
if start is None:
    st.info("Upload an image, or choose another starting point.")
    st.stop()
values = traversal_values(steps, kind.split()[0], quantile=quantile, k=k, latent_dim=h.latent_dim,
                          mu=models.as_tensor(start.z), logvar=models.as_tensor(start.logvar),
                          data_means=models.as_tensor(means))
rows = [d for d in order if active[d] or not only_active] or order
images = models.traversal(h, start.z, values, rows)
st.caption(f"{len(rows)} dimensions × {steps} steps, from {plain(start.label)}")
if truth:  # the starting example's own factors where it is one, else the middle of the grid
    number = st.session_state.get("trav_n", 0) if st.session_state.get("trav_src") == "Dataset example" else None
    start_factors = models.example_factors(h, number) if number is not None else None
    if start_factors is None:
        start_factors = np.asarray(dataset.factor_sizes) // 2
    st.caption("Right: the data's own sweep of the factor each row is named after, from "
               + (f"dataset example #{number}" if number is not None else "the middle of the factor grid") + ".")
for r, d in enumerate(rows):  # the label's column holds a whole factor name on a line ("hair_colour")
    label, strip, sweep = st.columns([2, 6, 5] if truth else [2, 9, 0.01], vertical_alignment="center")
    label.markdown(widgets.dim_label(d, kl, active[d], names))
    with strip:
        widgets.show_image(image_grid(images[r * steps:(r + 1) * steps], 1, steps), px=min(1100, 110 * steps))
    if truth and names[d].factors:
        with sweep:
            truth_images, _ = truth_sweep(dataset, start_factors, names[d].factors[0], steps)
            widgets.show_image(image_grid(truth_images, 1, steps, pad_value=0.9), f"data: {names[d].factors[0]}",
                               fit=True)
c1, c2 = st.columns(2)  # the files are made when a button is pressed; no rerun (a rerun would race them)
row_labels = [f"z{d} {names[d].name}" if names else f"z{d}" for d in rows]  # burned into the files
c1.download_button("Download the grid (PNG)", lambda: encode_labelled_png(
    image_grid(images, len(rows), steps), row_labels, len(rows), scale=2), "traversal.png", "image/png",
    on_click="ignore")
c2.download_button("Download as animation (GIF)", lambda: encode_gif(  # frame t: every row at step t
    np.stack([image_grid(images[t::steps], len(rows), 1) for t in range(steps)]), scale=2, labels=row_labels),
    "traversal.gif", "image/gif", on_click="ignore")
