"""The conditional VAE on the pages: the condition beside the sliders, the point under every condition, and what
the card measured of the content-versus-style lesson."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from app import models, widgets
from app.text import plain
from vae_core.explore import decode_under_each_condition
from vae_core.models.cvae import KIND as RECORD
from vae_core.models.cvae import ConditionError, condition_index

__all__ = ["RECORD", "card_line"]


def card_line(h: models.Handle) -> str:
    """The card's description of the latent: its size and the condition beside it."""
    options = h.config.model.options
    return (f"{h.latent_dim} latent dims · conditioned on {plain(options.condition)} "
            f"({plain(', '.join(options.condition_names))})")


def condition_selector(h: models.Handle) -> None:
    """The condition beside the sliders, bound to the URL (?condition=NAME); a bad value gets a message."""
    options = h.config.model.options
    names = list(options.condition_names)
    key = models.condition_key(h)
    asked = st.query_params.get("condition")
    if asked is not None and asked != st.session_state.get("_condition_seen"):
        st.session_state["_condition_seen"] = asked
        try:
            st.session_state[key] = condition_index(tuple(names), asked)
        except ConditionError as exc:
            st.error(f"The address asks for condition {plain(repr(asked))}: {plain(exc, 300)}")

    def chosen():
        st.session_state[key] = names.index(st.session_state[f"{key}::box"])
        st.session_state["_condition_seen"] = st.query_params["condition"] = st.session_state[f"{key}::box"]

    st.session_state[f"{key}::box"] = names[int(st.session_state.get(key, 0))]
    condition = plain(options.condition)  # names from a model folder: text, never markdown
    st.selectbox(f"Condition: {condition}", names, key=f"{key}::box", on_change=chosen,
                 help="The decoder is told this value; the sliders hold everything else.")
    st.caption(f"**Content versus style.** The condition tells both networks the {condition}, so the latent need "
               f"not encode it: switch the condition and the {condition} changes while the sliders keep the rest "
               "(on dSprites: position, scale and rotation). The latent holds the style; the condition is the "
               f"content. An encoded image is encoded under the condition its ELBO prefers.{_swap_measured(h)}")


def under_each_condition(h: models.Handle, z: np.ndarray) -> np.ndarray:
    """The point decoded under every value of the condition, in one pass of the decoder: (K, C, H, W)."""
    return decode_under_each_condition(h.loaded.model, z)


def condition_strip(h: models.Handle, images: np.ndarray) -> None:
    """The point under every value of the condition (`under_each_condition`): content versus style at a glance."""
    options = h.config.model.options
    st.caption(f"The same latent point under each {plain(options.condition)}:")
    widgets.show_images(images, [plain(name) for name in options.condition_names], px=64)


def _swap_measured(h: models.Handle) -> str:
    """What the card measured of the content-versus-style lesson, in words ("" for a card without it)."""
    condition = plain(h.config.model.options.condition)
    swap, leak = h.card.get("swap"), h.card.get("leak")
    accuracy, decodes, chance = (widgets.number(swap, key) for key in ("accuracy", "decodes", "chance"))
    if None in (accuracy, decodes, chance):
        return ""
    per_value = swap.get("per_value") if isinstance(swap.get("per_value"), dict) else {}
    shown = ", ".join(f"{plain(k, 40)} {widgets.number(per_value, k):.0%}" for k in per_value
                      if widgets.number(per_value, k) is not None)
    text = (f" How far this model has learned it: with an image's latent fixed, switching to another {condition} "
            f"draws that {condition} in **{accuracy:.0%}** of {int(decodes):,} decodes "
            f"({shown + '; ' if shown else ''}chance {chance:.0%})")
    judge, own = widgets.number(swap, "judge_accuracy"), widgets.number(swap, "own")
    if judge is not None and own is not None:
        text += (f", as judged by a classifier that tells the real images' {condition} {judge:.1%} of the time; "
                 f"under the image's own {condition}, {own:.0%} are judged right")
    text += "."
    probe, probe_chance = widgets.number(leak, "accuracy"), widgets.number(leak, "chance")
    if probe is not None and probe_chance is not None:
        text += (f" A probe reads the {condition} back from the latent for {probe:.0%} of held-out images "
                 f"(chance {probe_chance:.0%}): what the latent still holds of it, the decoder can redraw "
                 "whatever the condition says.")
    if h.config.model.options.has_adversary:
        text += (f" This model trained beside an adversary that learned to read the {condition} from the latent, "
                 f"the encoder paying {h.config.model.options.adversary:g} times what it could read.")
    return text


def condition_note(h: models.Handle) -> None:
    """On pages that decode: which condition their images are decoded under."""
    if h.kind_info.conditional:
        st.caption(f"Conditional VAE: images are decoded under {plain(h.config.model.options.condition)} = "
                   f"**{plain(h.model.condition_name)}** (choose it on Explore); encoded images under the condition "
                   "their ELBO prefers.")


def inferred_condition_note(h: models.Handle, image: np.ndarray) -> None:
    """Which condition the CVAE reconstructs an image under: the one whose ELBO is best (a classifier)."""
    with torch.inference_mode():
        scores = h.loaded.model.condition_scores(torch.from_numpy(image[None]).float())[0].numpy()
    options = h.config.model.options
    names = [plain(name, 40) for name in options.condition_names]
    ranked = ", ".join(f"{names[i]} {scores[i]:,.1f}" for i in np.argsort(scores))
    st.caption(f"Reconstructed under {plain(options.condition)} = **{names[int(scores.argmin())]}**, the condition "
               f"with the best ELBO (−ELBO in nats: {ranked}). The CVAE used this way is a classifier.")
