"""Shared links that ask for something this server cannot show: say so, instead of silently showing another thing.

Widgets bound to the URL drop a value they cannot take (Streamlit falls back to the default and removes it from
the address), so a person who opened `?model=mine&z0=abc` would otherwise not learn why they see something else.
Each check reads the address before the widget is drawn and returns a note for the page to show.
"""

from __future__ import annotations

import math
import re

import numpy as np
import streamlit as st

from app.text import plain

POINT_KEY = re.compile(r"^z(\d+)$")
LINK_READ_KEY = "_link_point_read"
MODEL_PARAMS = ("codes", "condition")  # address parameters that belong to one model, beside z0, z1, ...
SHOWN = 60  # characters of a value quoted back; a link can carry a very long one


def _quote(value: str) -> str:
    """A value from the address, quoted for a note: short, and not markdown."""
    return plain(repr(value if len(value) <= SHOWN else value[:SHOWN] + "..."))


def model_note(names: list[str], broken: dict[str, str]) -> str | None:
    """A note when the address names a model that is not in the picker (`broken`: name -> why unavailable)."""
    requested = st.query_params.get("model")
    if requested is None or requested in names:
        return None
    if requested in broken:
        return f"The link asks for the model {_quote(requested)}, which cannot be used: {plain(broken[requested], 300)}"
    return f"The link asks for the model {_quote(requested)}, which is not on this server."


def point_notes(latent_dim: int, limits: np.ndarray) -> tuple[dict[int, float], list[str]]:
    """The address's z0, z1, ... values the Explore sliders can take, and a note on each one they cannot (that
    dimension then keeps its starting value, as a URL-bound slider does with a value it refuses).

    Dimensions the model does not have are also removed from the address, so the note is not repeated.
    """
    values, notes = {}, []
    for key in sorted(st.query_params.keys()):
        match = POINT_KEY.match(key)
        if not match:
            continue
        raw = st.query_params.get(key, "")
        d = int(match.group(1)) if len(match.group(1)) < 6 else latent_dim
        if d >= latent_dim:
            notes.append(f"{key}: this model has {latent_dim} latent dimensions (z0 to z{latent_dim - 1})")
            st.query_params.pop(key, None)
            continue
        try:
            value = float(raw)
        except ValueError:
            notes.append(f"{key}={_quote(raw)} is not a number")
            continue
        if not math.isfinite(value):
            notes.append(f"{key}={_quote(raw)} is not a finite number")
        elif abs(value) > limits[d] + 1e-9:
            notes.append(f"{key}={value:g} is outside its slider's range ±{limits[d]:.2f}")
        else:
            values[d] = value
    return values, notes


def forget_model_params() -> None:
    """After another model is chosen: drop the last model's point, code grid and condition from the address."""
    for key in list(st.query_params.keys()):
        if POINT_KEY.match(key) or key in MODEL_PARAMS:
            st.query_params.pop(key, None)


def point_from_link(latent_dim: int, limits: np.ndarray) -> dict[int, float]:
    """The point a shared link asks for, read once per session (on the first Explore run): later runs write the
    address themselves, so what is in it then is not a link and gets no note. Notes say what was ignored."""
    if st.session_state.get(LINK_READ_KEY):
        return {}
    st.session_state[LINK_READ_KEY] = True
    values, notes = point_notes(latent_dim, limits)
    if notes:
        st.warning("Parts of this link were ignored: " + "; ".join(notes) + ". Those dimensions keep their "
                   "starting value.")
    return values


def write_point(z) -> None:
    """Write the Explore point into the address (z0=..., z1=...), in one message to the browser.

    The sliders are not bound to the address (`bind="query-params"`): a bound widget made for the first time in a
    session takes its value from the address the browser sent with that run, so after a switch of model the new
    model's sliders took the previous model's values over the point the page had just set. The page reads a link's
    point itself (`point_from_link`) and writes the point here after every run.
    """
    st.query_params.update({f"z{d}": str(round(float(value), 2)) for d, value in enumerate(z)})
