"""The sidebar's model card: what the chosen model is, and the figures its card.json holds.

Everything here comes from a model folder, which anyone may have sent: a figure is formatted only as a number,
and text is left out of the markdown.
"""

from __future__ import annotations

from app import family
from app.models import Handle
from app.text import plain
from vae_core.checkpoints import steps_in_all
from vae_core.evaluate import KL_ROW, SUMMARY_ROWS

MISSING = "n/a"  # a figure the card does not have (a bare "-" would render as a bullet in st.table)


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else plain(value)


def card_value(card: dict, get) -> str:
    """One figure of a card (an extractor of vae_core.evaluate.SUMMARY_ROWS), formatted; MISSING when absent."""
    try:
        value = get(card)
    except (AttributeError, TypeError, KeyError):
        value = None
    return MISSING if value is None else _fmt(value)


def card_markdown(h: Handle) -> str:
    """The card as a short text: what the model is, then the figures it has (missing ones left out)."""
    card, t = h.card, h.config.train
    colour = "colour" if h.channels == 3 else "grey"
    beta = f" · β = {_fmt(t.beta)}" if h.objective_info.has_kl else ""
    if h.kind_info.trained_here:
        trained = f"{t.objective}{beta} · {_fmt(steps_in_all(card) or '?')} steps"
    else:  # how it was trained is its own code's business
        trained = f"{h.kind_info.display_name} ({'ONNX folder' if h.model.source == 'onnx' else 'Python code'})"
    head = f"**{plain(t.dataset)}** · {trained}  \n{_latent_line(h)} · {h.image_size}px {colour}"
    hidden = {"steps", "beta"} | (set() if h.objective_info.has_kl else {KL_ROW})
    rows = [f"| {label} | {card_value(card, get)} |" for label, get in SUMMARY_ROWS
            if label not in hidden and card_value(card, get) != MISSING]
    return head + ("\n\n| figure | value |\n| --- | --- |\n" + "\n".join(rows) if rows else "")


def _latent_line(h: Handle) -> str:
    return family.card_line(h) or f"{h.latent_dim} latent dims"
