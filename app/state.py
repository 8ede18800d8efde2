"""What the pages share through the session: the sidebar's model picker (its card is app.card), the Explore point, and
hand-offs from one page to another (a map selection sent to Explore or Interpolate)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import card, links, models
from app.models import Handle, open_model
from app.text import plain
from vae_core.checkpoints import CheckpointError, list_models, missing_model_dirs

HANDLE_KEY = "_handle"
MODEL_KEY = "model"  # the sidebar's picker, and the address's `model=`
MODEL_REQUEST_KEY = "_model_request"
SHOWN_MODEL_KEY = "_sidebar_model"  # the model the sidebar showed last (not a widget's state: it survives a switch)
NAMES_PARAM, NAMES_HIDDEN = "names", "hidden"  # ?names=hidden: no latent named, for a class to find the factors
NAMES_KEY = models.NAMES_SHOWN_KEY
LINK_NOTE_KEY = "_link_note"
STEP = 0.05  # slider step; points are rounded to it so the sliders show them exactly
DEFAULT_MODEL = "dsprites-beta-vae"  # the class's first sight: factors it has pulled apart, one slider each


def sidebar() -> Handle | None:
    """The model picker (its choice in the address), the chosen model's card, and the folders that cannot be used."""
    entries = list_models()
    usable = [e for e in entries if e.error is None]
    broken = [e for e in entries if e.error]
    handle = None
    with st.sidebar:
        if usable:
            names = model_labels(usable)
            note = links.model_note(names, {e.name: e.error for e in broken})
            choose_model(names)
            name = st.selectbox("Model", names, key=MODEL_KEY, help="Model folders from pretrained/ and "
                                "$VAE_EXPLORER_MODELS")
            st.query_params[MODEL_KEY] = name  # every link names its model, the default one too
            if st.session_state.get(SHOWN_MODEL_KEY) not in (None, name):
                links.forget_model_params()
            st.session_state[SHOWN_MODEL_KEY] = name
            if note:  # shown until another model is chosen
                st.session_state[LINK_NOTE_KEY] = (note, name)
            saved = st.session_state.get(LINK_NOTE_KEY)
            if saved and saved[1] == name:
                st.warning(f"{saved[0]} Showing **{plain(name)}** instead.")
            else:
                st.session_state.pop(LINK_NOTE_KEY, None)
            try:
                handle = open_model(usable[names.index(name)])
            except CheckpointError as exc:
                st.error(f"**{plain(name)}** cannot be loaded: {plain(exc, 300)}")
        else:
            st.info("No usable model in pretrained/ or $VAE_EXPLORER_MODELS. Train one with "
                    "`python -m vae_core.train --out pretrained/NAME`.")
        if handle is not None:
            names_switch()
            st.markdown(card.card_markdown(handle))
        for path in missing_model_dirs():
            st.warning(f"$VAE_EXPLORER_MODELS names {plain(path, 200)}, which is not a folder: no model is read "
                       "from it. Check the path and restart the app.")
        if broken:
            with st.expander(f"Unavailable models ({len(broken)})", expanded=not usable):
                for entry in broken:
                    st.warning(f"**{plain(entry.name)}** is unavailable: {plain(entry.error, 300)}")
    st.session_state[HANDLE_KEY] = handle
    return handle


def choose_model(names: list[str]) -> None:
    """Before the picker is drawn: the model a page asked for (`request_model`), else on a session's first run the
    link's `model=`, else the default. The picker is not bound to the address (a bound widget cannot be handed to
    another page's address, and Streamlit leaves a default value out of it): the sidebar writes `model=` itself."""
    requested = st.session_state.pop(MODEL_REQUEST_KEY, None)
    if requested in names:
        st.session_state[MODEL_KEY] = requested
    elif st.session_state.get(MODEL_KEY) not in names:
        # the picker's own state goes when a page switch interrupts a run (a point sent from the map to Explore):
        # the model this session showed last is kept apart from it
        kept, asked = st.session_state.get(SHOWN_MODEL_KEY), st.query_params.get(MODEL_KEY)
        st.session_state[MODEL_KEY] = next((n for n in (kept, asked) if n in names), names[default_index(names)])


def request_model(name: str) -> None:
    """Show model `name` in the sidebar from the next run (a lesson's step is about it); the page reruns."""
    st.session_state[MODEL_REQUEST_KEY] = name
    st.rerun()


def names_switch() -> None:
    """The teacher's switch: every latent's name (the factor it carries) shown, or hidden so that a class discovers
    the factors first. Kept in the address (`?names=hidden`), like the point, so one link opens a lesson that way."""
    if NAMES_KEY not in st.session_state:
        st.session_state[NAMES_KEY] = st.query_params.get(NAMES_PARAM) != NAMES_HIDDEN
    shown = st.toggle("Name the latents", key=NAMES_KEY, help="Each slider named by the factor it carries, with "
                      "its share of that factor's information. Off: plain z0, z1, ... for a class to discover the "
                      "factors first (kept in the page address).")
    if shown:
        st.query_params.pop(NAMES_PARAM, None)
    else:
        st.query_params[NAMES_PARAM] = NAMES_HIDDEN


def default_index(names: list[str]) -> int:
    """Which of the picker's models a session opens on."""
    return names.index(DEFAULT_MODEL) if DEFAULT_MODEL in names else 0


def default_handle() -> Handle | None:
    """The model a new session opens on, loaded (None when no folder is usable); raises CheckpointError."""
    usable = [e for e in list_models() if e.error is None]
    return open_model(usable[default_index(model_labels(usable))]) if usable else None


def model_labels(entries) -> list[str]:
    """Folder names, with the parent folder added where two folders share a name."""
    counts = {}
    for e in entries:
        counts[e.name] = counts.get(e.name, 0) + 1
    return [e.name if counts[e.name] == 1 else f"{e.name} ({e.path.parent})" for e in entries]


def require_model() -> Handle:
    """The model chosen in the sidebar; stops the page with a note when there is none."""
    handle = st.session_state.get(HANDLE_KEY)
    if handle is None:
        st.info("Choose a usable model in the sidebar.")
        st.stop()
    return handle


# ---- the Explore point: one slider per dimension, keys z0, z1, ... bound to the URL

def as_point(value, latent_dim: int) -> np.ndarray | None:
    """`value` as a point of `latent_dim` finite numbers, or None: what a browser component sends is anyone's (NaN,
    strings, huge or nested values, the wrong length)."""
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != latent_dim:
        return None
    if not all(isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) for v in value):
        return None
    try:
        point = np.asarray(value, dtype=np.float64)
    except (OverflowError, ValueError, TypeError):
        return None
    return point if point.shape == (latent_dim,) and np.isfinite(point).all() else None


def set_point(z, limits: np.ndarray, posterior: dict | None = None) -> None:
    """Move the Explore sliders to z (clipped, rounded to the slider step); `posterior` describes its source.
    A z that is not a point of this model (see `as_point`) leaves the sliders as they are."""
    z = as_point(z, len(limits))
    if z is None:
        return
    z = np.clip(z, -limits, limits)
    for d, value in enumerate(z):
        st.session_state[f"z{d}"] = round(round(float(value) / STEP) * STEP, 2)
    st.session_state["explore_point"] = [st.session_state[f"z{d}"] for d in range(len(z))]
    st.session_state["explore_posterior"] = posterior


def prepare_point(h: Handle, limits: np.ndarray, start=None, asked: dict[int, float] | None = None) -> None:
    """Before the sliders are drawn: start afresh for a new model (from `start()`, else the prior mean), apply a
    point sent from another page, then the dimensions a link asks for (`asked`), and keep every value inside its
    slider's range."""
    if st.session_state.get("explore_model") != h.name:
        start() if start is not None else set_point(np.zeros(h.latent_dim), limits)
    st.session_state["explore_model"] = h.name
    request = st.session_state.pop("explore_request", None)
    if request is not None:
        set_point(request["z"], limits, request.get("posterior"))
    saved = st.session_state.get("explore_point") or []
    for d in range(h.latent_dim):
        value = st.session_state.get(f"z{d}", saved[d] if d < len(saved) else 0.0)
        st.session_state[f"z{d}"] = float(np.clip(asked.get(d, value) if asked else value, -limits[d], limits[d]))


def current_point(h: Handle) -> np.ndarray:
    z = np.array([float(st.session_state.get(f"z{d}", 0.0)) for d in range(h.latent_dim)], dtype=np.float32)
    st.session_state["explore_point"] = z.tolist()
    return z


def explore_point(h: Handle) -> np.ndarray | None:
    """The last point shown on Explore for this model, for other pages to start from."""
    saved = st.session_state.get("explore_point")
    if st.session_state.get("explore_model") != h.name or not saved or len(saved) != h.latent_dim:
        return None
    return np.asarray(saved, dtype=np.float32)


def send_to_explore(z, posterior: dict | None = None) -> None:
    st.session_state["explore_request"] = {"z": np.asarray(z).tolist(), "posterior": posterior}
    switch_page("views/explore.py")


def send_to_interpolate(a: dict, b: dict) -> None:
    """a, b: {"label": str, "image": (C, H, W)} endpoints from the map."""
    st.session_state["interp_from_map"] = {"A": a, "B": b}
    st.session_state["interp_A_src"] = st.session_state["interp_B_src"] = "From the map"
    switch_page("views/interpolate.py")


def switch_page(path: str) -> None:
    """st.switch_page, keeping the URL-bound widgets: its default clears the query string, which Streamlit
    refuses while widgets are bound to it; an empty mapping clears it quietly and the bound widgets put their
    values back on the next run."""
    st.switch_page(path, query_params={})
