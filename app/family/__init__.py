"""What the pages show for the rest of the VAE family, one module per kind: `cvae` (the condition selector and
notes), `vqvae` (the code grid; its Explore and Reconstruct are their own pages, views/vq_*.py), `vaegan`
(sharpness beside the plain VAE).

Each kind's module declares itself, and the router, the pages and the card read the declarations, never a kind's
name or capability standing for it:

- `RECORD`: the kind's record in `vae_core.kinds`, which it is the pages of;
- `PAGES`: the pages it replaces, title -> its page file (the address stays the page's own);
- `NOT_FOR`: the pages that do not apply to it, title -> why, in words a student can follow;
- `card_line(h)`: its line on the sidebar's card (the latent's description), where it has one.
"""

from __future__ import annotations

import streamlit as st

from app import models
from app.family import cvae, vaegan, vqvae
from app.text import plain

FAMILY = {module.RECORD.name: module for module in (cvae, vqvae, vaegan)}


def page_file(h: models.Handle | None, title: str, default: str) -> str:
    """The page file for `title` and the chosen model: its kind's own where it replaces that page."""
    module = FAMILY.get(h.kind) if h is not None else None
    return getattr(module, "PAGES", {}).get(title, default)


def not_applicable(h: models.Handle, title: str) -> str | None:
    """Why page `title` does not apply to this model's kind, or None when it does."""
    return getattr(FAMILY.get(h.kind), "NOT_FOR", {}).get(title)


def not_for(h: models.Handle, title: str) -> None:
    """Stop the page (under its title) with the reason when it does not apply to this kind of model."""
    reason = not_applicable(h, title)
    if reason is not None:
        st.title(title)
        st.info(f"**{plain(h.name)}** is a {h.kind_info.display_name}. This page does not apply: {reason}")
        st.stop()


def card_line(h: models.Handle) -> str:
    """The kind's description of the latent for the card ("" where the kind has none of its own)."""
    line = getattr(FAMILY.get(h.kind), "card_line", None)
    return line(h) if line is not None else ""
