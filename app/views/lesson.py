"""Lessons: a guided sequence of steps for a class, opened with one link (`?lesson=beta&step=3`); the step is in
the address, so a teacher can put one on the projector."""

import numpy as np
import pandas as pd
import streamlit as st

from app import card, charts, edit_views, models, state, widgets
from app.lessons import LESSONS, sweep_points
from app.text import plain
from vae_core.checkpoints import CheckpointError, list_models
from vae_core.evaluate import SUMMARY_ROWS
from vae_core.explore import traversal_images
from vae_core.imaging import image_grid
from vae_core.kinds import weights_text
from vae_core.latent import traversal_values

keys = list(LESSONS)
asked = st.query_params.get("lesson")
if asked is not None and asked not in LESSONS:
    st.warning(f"There is no lesson {plain(repr(asked))}; the lessons are: {', '.join(keys)}.")
lesson = st.selectbox("Lesson", keys, index=keys.index(asked) if asked in LESSONS else 0,
                      format_func=lambda k: LESSONS[k][0], key="lesson_pick")
title, steps = LESSONS[lesson]
try:
    number = min(max(int(st.query_params.get("step", "1")), 1), len(steps))
except ValueError:
    number = 1
st.query_params.update({"lesson": lesson, "step": str(number)})
step = steps[number - 1]
st.title(title)
st.progress(number / len(steps), text=f"Step {number} of {len(steps)}: {step.title}")
st.markdown(step.text)

entries = {e.name: e for e in list_models() if e.error is None}
missing = [name for name in step.models if name not in entries]
if missing:
    st.info(f"This step needs {', '.join(missing)}, which this server does not have (see `make pretrained`).")
    st.stop()
try:
    handles = [models.open_model(entries[name]) for name in step.models]
except CheckpointError as exc:
    st.error(f"A model of this step cannot be loaded: {plain(exc, 300)}")
    st.stop()
# the sidebar's card follows the model the step is about (once per step: a person may then choose another)
if step.models and st.session_state.get(state.MODEL_KEY) not in step.models and \
        st.session_state.get("_lesson_sidebar_step") != (lesson, number):
    st.session_state["_lesson_sidebar_step"] = (lesson, number)
    state.request_model(step.models[0])

q = step.question
pick_key = f"lesson::{lesson}::{number}"
# a question whose answer is a latent's name hides the rows' names until it is answered (or its answer shown)
open_question = q is not None and q.hides_names and not (
    st.session_state.get(pick_key) == q.answer(handles) or st.session_state.get(f"{pick_key}::reveal"))
if step.show == "traversals":
    for h in handles:
        order, active, kl = models.dims(h)
        names = None if open_question else models.latent_names(h)
        example = models.dataset_example(h, 0)
        z = widgets.encode_one(h, example, "").z if example is not None else np.zeros(h.latent_dim, np.float32)
        values = traversal_values(7, "prior", quantile=0.98, latent_dim=h.latent_dim)
        images = traversal_images(h.model, z, values, order)
        st.caption(f"**{plain(h.name)}**: one row per dimension, most informative first")
        for r, d in enumerate(order):
            label, strip = st.columns([1, 4], vertical_alignment="center")
            label.markdown(widgets.dim_label(d, kl, active[d], names))
            with strip:
                widgets.show_image(image_grid(images[r * 7:(r + 1) * 7], 1, 7), px=560)
elif step.show == "kl":
    for i, h in enumerate(handles):
        order, _, kl = models.dims(h)
        if kl is not None:
            weights = weights_text(h.config)
            st.caption(f"**{plain(h.name)}** ({plain(h.objective_info.title or h.config.train.objective)}"
                       f"{', ' + weights if weights else ''})")
            st.plotly_chart(charts.kl_bars(kl, order), key=f"lesson_kl_{i}")
elif step.show == "sweep":
    points = sweep_points()
    if not points:
        st.info("This server has no beta sweep (`make beta-sweep` writes pretrained/beta_sweep.json).")
        st.stop()
    st.plotly_chart(charts.beta_sweep(points), key="lesson_sweep")
elif step.show == "edits":
    for i, h in enumerate(handles):
        edit_views.comparison(h, step.factor, f"lesson_edits_{i}")
        edit_views.strip(h, step.factor)
elif step.show == "edit_moves":
    for i, h in enumerate(handles):
        st.caption(f"**{plain(h.name)}**")
        edit_views.moves_chart(h, step.factor, f"lesson_moves_{i}")
elif step.show == "figures":
    rows = [(label, get) for label, get in SUMMARY_ROWS if label in ("recon (nats/image)", "KL (nats)", "MIG",
                                                                    "FactorVAE score", "steps")]
    st.table(pd.DataFrame({h.name: [card.card_value(h.card, get) for _, get in rows] for h in handles},
                          index=[label for label, _ in rows]))

if q is not None and q.answer(handles) == "—":  # the figures it is checked against are missing here
    st.info("This step's question needs figures these models do not have (their edits: "
            "`python -m vae_core.edits <model folder> --factor ...`).")
elif q is not None:
    st.subheader("Question")
    choice = st.radio(q.text, q.choices(handles), index=None, key=pick_key, horizontal=True)
    if choice is not None:
        if choice == q.answer(handles):
            st.success(f"Right. {q.why(handles)}")
        else:
            st.warning("Not quite: look at the picture again, or try another answer.")
            if st.button("Show the answer", key=f"{pick_key}::reveal"):
                st.info(plain(f"{q.answer(handles)}. {q.why(handles)}", 400))  # "10. The ..." is no list

back, ahead = st.columns(2)
if back.button("Back", disabled=number == 1):
    st.query_params["step"] = str(number - 1)
    st.rerun()
if ahead.button("Next step", disabled=number == len(steps), type="primary"):
    st.query_params["step"] = str(number + 1)
    st.rerun()
