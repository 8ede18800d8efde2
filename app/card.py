"""The sidebar's model card: what the chosen model is, and the figures its card.json holds.

Everything here comes from a model folder, which anyone may have sent: a figure is formatted only as a number,
and text is left out of the markdown.
"""

from __future__ import annotations

from app import family, widgets
from app.models import Handle
from app.text import plain
from vae_core.checkpoints import steps_in_all
from vae_core.data import drawn_like
from vae_core.evaluate import KL_ROW, SUMMARY_ROWS
from vae_core.kinds import objective, weights_text

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
    weights = weights_text(h.config)
    if h.kind_info.trained_here:
        trained = f"{t.objective}{' · ' + weights if weights else ''} · {_fmt(steps_in_all(card) or '?')} steps"
    else:  # how it was trained is its own code's business
        trained = f"{h.kind_info.display_name} ({'ONNX folder' if h.model.source == 'onnx' else 'Python code'})"
    head = f"**{plain(t.dataset)}** · {trained}  \n{_latent_line(h)} · {h.image_size}px {colour}"
    hidden = {"steps", "beta"} | (set() if h.objective_info.has_kl else {KL_ROW})
    rows = [f"| {label} | {card_value(card, get)} |" for label, get in SUMMARY_ROWS
            if label not in hidden and card_value(card, get) != MISSING]
    return head + ("\n\n| figure | value |\n| --- | --- |\n" + "\n".join(rows) if rows else "")


def _latent_line(h: Handle) -> str:
    return family.card_line(h) or f"{h.latent_dim} latent dims"


MIG = dict(SUMMARY_ROWS)["MIG"]


def contrasting_pair(entries, names: list[str], dataset: str | None) -> list[str]:
    """The pair the page opens on, the lesson its cards show best: the two models of one dataset whose MIGs differ
    most, the lower first (of the sidebar model's `dataset` where two of its models have one, else of any
    dataset); the first two models where no two cards of one dataset have a MIG. A grid drawn another way counts
    as its own (`drawn_like`: the same factors, the same rows of the heatmaps). Autoencoders have a MIG but no
    prior: the lesson is a VAE against one that disentangles, so they are left out of the choice."""
    scored: dict[str, list[tuple[float, str]]] = {}
    for entry, name in zip(entries, names):
        try:
            mig = widgets.number({"mig": MIG(entry.card)}, "mig")  # a card comes from anyone
        except (AttributeError, TypeError, KeyError):
            mig = None
        if mig is not None and entry.config is not None and objective(entry.config.train.objective).has_kl:
            scored.setdefault(drawn_like(entry.config.train.dataset), []).append((mig, name))
    pairs = [(max(s)[0] - min(s)[0], data, [min(s)[1], max(s)[1]]) for data, s in scored.items() if len(s) > 1]
    mine = [p for p in pairs if dataset is not None and p[1] == drawn_like(dataset)]
    return max(mine or pairs)[2] if pairs else names[:2]
