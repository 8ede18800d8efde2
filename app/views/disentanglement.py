"""Disentanglement: two models side by side, their traversals, KL per dimension, factor-latent MI, metrics."""


import pandas as pd
import streamlit as st

from app import card, charts, edit_views, family, models, state, widgets
from app.family import cvae
from app.text import plain
from vae_core.checkpoints import CheckpointError, list_models, steps_in_all
from vae_core.evaluate import SUMMARY_ROWS, row_meaning
from vae_core.imaging import encode_gif
from vae_core.latent import traversal_values
from vae_core.sweep import describe as sweep_caption
from vae_core.sweep import shipped_points

st.title("Disentanglement")
st.markdown("A **β-VAE** weighs the KL term β times: it pays for every nat its code carries, so it keeps few "
            "dimensions and tends to give each generating factor its own (disentanglement), at the price of "
            "blurrier reconstructions. A dimension whose KL falls to about zero has **collapsed** to the prior: "
            "the encoder ignores it and its traversal row does not change. Compare the rows, the KL bars and the "
            "factor-by-latent mutual information (one dark cell per row is the disentangled ideal).")
usable = [e for e in list_models() if e.error is None]
names = state.model_labels(usable)
if len(names) < 2:
    st.info("A comparison needs two usable models.")
    st.stop()
sidebar_model = st.session_state.get(state.HANDLE_KEY)
defaults = card.contrasting_pair(usable, names, sidebar_model.config.train.dataset if sidebar_model else None)
handles, cols = [], st.columns(2, gap="large")
chosen = []  # (index, column, name, handle): both models are opened first, so their heatmaps share one scale
for i, col in enumerate(cols):
    with col:
        name = st.selectbox(f"Model {'AB'[i]}", names, index=names.index(defaults[i]), key=f"dis_{i}")
        try:
            chosen.append((i, col, name, models.open_model(usable[names.index(name)])))
        except CheckpointError as exc:
            st.error(f"{plain(name)} cannot be loaded: {plain(exc, 300)}")
matrices = {i: models.mi_matrix(h) if h.kind_info.continuous_latent else None for i, _, _, h in chosen}
mi_top = max((float(m[0].max()) for m in matrices.values() if m is not None), default=1.0) or 1.0
for i, col, name, h in chosen:
    with col:
        handles.append(h)
        if (reason := family.not_applicable(h, "Disentanglement")) is not None:
            st.info(f"**{plain(name)}** is a {h.kind_info.display_name}: {reason}")
            continue
        cvae.condition_note(h)
        order, active, kl = models.dims(h)
        example = models.dataset_example(h, 0)
        z = widgets.encode_one(h, example, "").z if example is not None else [0.0] * h.latent_dim
        values = traversal_values(7, "prior", quantile=0.98, latent_dim=h.latent_dim)
        names = models.latent_names(h)
        labels = [f"z{d} {names[d].name}" if names else f"z{d}" for d in order]  # what each row carries
        st.image(models.traversal_sheet(h, z, values, order, labels), "traversals, one row per dimension by KL (±2.3 σ of the "
                 "prior), named by the factor each carries", width="stretch")
        if kl is not None:
            st.plotly_chart(charts.kl_bars(kl, order), key=f"kl_{i}")
        if (log := models.training_log(h)) is not None:
            st.plotly_chart(charts.training_curves(log), key=f"training_{i}")
            if (per_dim := charts.kl_per_dim_curves(log)) is not None:
                st.plotly_chart(per_dim, key=f"training_kl_{i}")
        if (mi := matrices[i]) is not None:
            st.plotly_chart(charts.mi_heatmap(mi[0][:, order], mi[1], [f"z{d}" for d in order],
                                              "share of each factor carried by each latent (MI / H), one scale for both",
                                              zmax=mi_top), key=f"mi_{i}", on_select="rerun", selection_mode="points")
            st.caption(f"Mutual information {mi[2]}. Click a cell to play its latent's traversal.")
            clicked = charts.clicked_latent(st.session_state.get(f"mi_{i}"), h.latent_dim)
            if clicked is not None:
                row = models.traversal(h, z, traversal_values(15, "prior", quantile=0.98, latent_dim=h.latent_dim),
                                       [clicked])
                st.image(encode_gif(row, scale=3, duration_ms=120), caption=f"z{clicked}'s traversal, playing",
                         width=192)
        for factor in models.edits(h)[0]:
            with st.expander(f"Editing {plain(factor)}: a single latent, a vector, or a learned edit"):
                edit_views.comparison(h, factor, f"dis_edit_{i}_{factor}")
st.subheader("Metrics from the model cards")
values = {h.name: [card.card_value(h.card, get) for _, get in SUMMARY_ROWS] for h in handles}
shown = [i for i in range(len(SUMMARY_ROWS)) if any(v[i] != card.MISSING for v in values.values())]  # not n/a twice
table = pd.DataFrame({name: [v[i] for i in shown] for name, v in values.items()},
                     index=[SUMMARY_ROWS[i][0] for i in shown])
table["what it measures"] = [row_meaning(SUMMARY_ROWS[i][0], [h.config.dataset for h in handles]) for i in shown]
st.table(table)
steps = {h.name: steps_in_all(h.card) for h in handles}
if len(handles) == 2 and len(set(steps.values())) == 2 and all(isinstance(s, int) for s in steps.values()):
    a, b = handles
    st.caption(f"These two trained for different lengths ({plain(a.name)}: {steps[a.name]:,} steps, "
               f"{plain(b.name)}: {steps[b.name]:,}): part of any difference is training, not the objective.")
st.caption("Rows that neither card has are left out; missing figures (n/a) come with "
           "`python -m vae_core.evaluate <model folder>`.")
for h in handles:  # a model of data without known factors has no metrics at all: say so, not just "n/a"
    reason = h.card.get("metrics", {}).get("unavailable") if isinstance(h.card.get("metrics"), dict) else None
    if reason:
        st.caption(f"{plain(h.name)}: no disentanglement metrics. {plain(reason, 300)}")
points, problem = shipped_points()
if problem:
    st.warning(plain(problem, 300))
elif points:
    st.subheader("The β trade-off: reconstruction against disentanglement (MIG)")
    st.plotly_chart(charts.beta_sweep(points), key="sweep")
    st.caption(sweep_caption(points))
