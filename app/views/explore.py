"""Explore: one slider per latent dimension, ordered by KL; the decoded image follows the sliders."""

import numpy as np
import streamlit as st

from app import charts, edit_views, links, live, models, state, widgets
from app.family import cvae
from app.text import plain
from vae_core.edits import apply_edit
from vae_core.explore import decode, prior_sample
from vae_core.latent import toward_classes
from vae_core.manifold import grid_position

h = state.require_model()
order, active, kl = models.dims(h)
names = models.latent_names(h)  # each slider named by the factor it carries, where the data has factors
limits = models.limits(h)
dataset, note = models.dataset_for(h)
st.title("Explore the latent space")
st.caption("Each slider is one latent dimension, most informative (highest KL) first. Dimensions below 0.01 "
           "nats are inactive: the encoder ignores them and moving them changes nothing (posterior collapse). "
           "The point is in the page address: copy it to share this exact picture.")
for up in widgets.upload_image("Start from your own image", "explore_upload", h):
    if st.session_state.get("explore_upload_id") != up.file_id:
        st.session_state["explore_upload_id"] = up.file_id
        p = widgets.encode_one(h, up.image, up.name)
        state.set_point(p.z, limits, p.posterior())


def from_dataset(number: int | None = None):
    """The posterior mean of a dataset example (a random one unless `number` is given)."""
    number = int(np.random.default_rng().integers(100_000)) if number is None else number
    p = widgets.encode_one(h, models.dataset_example(h, number), f"dataset example #{number}")
    state.set_point(p.z, limits, p.posterior())


def first_point():
    """A model opens on a dataset example where it has data: the prior mean of many models (an autoencoder's,
    a CVAE's, dsprites-vae's) decodes to an empty frame. A link's point starts from the prior mean."""
    if dataset is None or asked:
        state.set_point(np.zeros(h.latent_dim), limits)
    else:
        from_dataset(0)


asked = links.point_from_link(h.latent_dim, limits)
state.prepare_point(h, limits, start=first_point, asked=asked)


def server_sliders(post: dict | None):
    """The fallback: Streamlit sliders, decoded on the server at each release."""
    left, right = st.columns([3, 2], gap="large")
    with left:
        if h.kind_info.conditional:
            cvae.condition_selector(h)
        if post:
            st.caption(f"Encoded {plain(post['source'])}: under each slider, the posterior mean μ and spread σ of its code.")
        for d in order:
            st.slider(widgets.dim_label(d, kl, active[d], names), -limits[d], limits[d], step=state.STEP, key=f"z{d}",
                      format="%.2f")
            if post:
                st.caption(f"μ {post['mu'][d]:+.2f} · σ {post['sigma'][d]:.2f}")
    z = state.current_point(h)
    links.write_point(z)  # the point is in the address: a link reproduces the picture
    # a conditional VAE's picture is its strip's image under the chosen condition: one pass of the decoder
    strip = cvae.under_each_condition(h, z) if h.kind_info.conditional else None
    with right:
        widgets.show_image(decode(h.model, z[None])[0] if strip is None else strip[h.model.condition],
                           "decoded image", px=384)
        if strip is not None:
            cvae.condition_strip(h, strip)
        if post and post.get("image") is not None:
            widgets.show_image(post["image"], f"input: {post['source']}", px=128)


def factor_edits(controls: bool):
    """One control per factor with a stored edit (vae_core.edits): choose a value, and the point moves to the edited
    latent, where that factor takes it and the rest stay (learned from the grid's twins). Without `controls` (the
    live sliders draw the edits as sliders of their own), only why there are none."""
    nets, card, why = models.edits(h)
    if why:
        st.caption(f"No factor edits: {why}.")
    if (vectors := models.class_vectors(h)) is not None:
        class_vector(vectors, controls)
    for factor, net in nets.items() if controls else ():
        value_names = [str(v) for v in getattr(dataset, f"{factor}_names", range(net.values))] if dataset else \
            [str(v) for v in range(net.values)]
        key = f"edit::{h.name}::{factor}"

        def moved(factor=factor, net=net, key=key):
            value = st.session_state.get(key)
            if value is not None:
                state.set_point(apply_edit(net, state.current_point(h), value), limits,
                                st.session_state.get("explore_posterior"))
                st.session_state[key] = None  # a choice is a move, not a state: the same value can be asked again

        rows = (card["factors"][factor].get("rows") or {}) if isinstance(card["factors"][factor], dict) else {}
        figures = rows.get("edit") if isinstance(rows, dict) else None  # edits.json is anyone's: numbers or nothing
        on_target, side_effects = widgets.number(figures, "on_target"), widgets.number(figures, "side_effects")
        measured = (f" On held-out images it reached the asked {plain(factor)} for {on_target:.0%}, changing another "
                    f"factor for {side_effects:.0%}." if on_target is not None and side_effects is not None else "")
        control = st.segmented_control if net.values <= 8 else st.selectbox  # posX's 32 values: a list
        control(f"Edit {plain(factor)}: move the point so that its {plain(factor)} becomes",
                list(range(net.values)), format_func=lambda v, names=value_names: plain(names[v], 40), key=key,
                on_change=moved, help="A counterfactual edit learned from the data's twins (images that differ in "
                f"{plain(factor)} only): the other factors stay.{measured}"
                f"{edit_views.turn_note(card['factors'][factor] if isinstance(card['factors'][factor], dict) else None)}",
                **({} if net.values <= 8 else {"index": None, "placeholder": "choose a value"}))


def class_vector(vectors: models.ClassVectors, controls: bool) -> None:
    """Labelled images have no twins (images that differ in the class alone), so no edit can be learned: the class
    attribute vectors instead, with how well they fit."""
    st.caption(f"Move toward a class with its attribute vector: the class's mean code minus that of the class nearest "
               f"the point. Its fit: the nearest class mean names {vectors.fit:.0%} of the data's codes right. A "
               "learned edit needs twins (images that differ in the class alone), which real images do not have.")
    if not controls:
        return
    key = f"class::{h.name}"

    def moved():
        value = st.session_state.get(key)
        if value is not None:
            state.set_point(toward_classes(state.current_point(h), vectors.centres)[value], limits,
                            st.session_state.get("explore_posterior"))
            st.session_state[key] = None

    st.segmented_control("Move the point toward the class", list(range(len(vectors.names))),
                         format_func=lambda v: plain(vectors.names[v], 40), key=key, on_change=moved)


@st.fragment
def explorer():
    b = st.columns(3)
    b[0].button("Reset to the prior mean", on_click=state.set_point, args=(np.zeros(h.latent_dim), limits))
    b[1].button("Randomise (prior sample)", on_click=lambda: state.set_point(
        prior_sample(h.latent_dim, np.random.default_rng().integers(2**31)), limits))
    b[2].button("Dataset example", on_click=from_dataset, disabled=dataset is None, help=note)
    post = st.session_state.get("explore_posterior")
    if live.explorer(h, order, active, kl, limits, post, names):
        factor_edits(controls=False)
    else:
        factor_edits(controls=True)
        server_sliders(post)
    if h.latent_dim == 2:
        z = state.current_point(h)
        uri, size_px, latents = models.manifold(h)
        st.subheader("The learned manifold")
        st.caption("The decoder over the whole prior: cell (row, column) decodes the point at the prior's "
                   f"quantiles, {len(latents)} equal-probability steps per axis (z0 left to right, z1 bottom to "
                   "top). The red ring is your point: it follows the sliders (on release).")
        st.plotly_chart(charts.manifold_figure(uri, size_px, latents,
                                                grid_position(z, len(latents))), key="manifold")


explorer()
