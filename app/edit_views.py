"""A model's counterfactual edits on a page (vae_core.edits): for a factor, the four ways to change it side by side
(the ceiling, the learned edit, the attribute vector, the best single latent) with their measured shares, the edit's
move per latent, and a strip of held-out images edited from one value to the next. Used by the Disentanglement page
and the smile lesson."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import charts, models, widgets
from app.text import plain
from vae_core.edits import apply_edit
from vae_core.explore import decode
from vae_core.imaging import image_grid

ROWS = ("ceiling (twin's latent)", "edit", "attribute vector")  # then the best single latent, named by its latent


def figures(h: models.Handle, factor: str) -> dict | None:
    """The stored figures of `factor`'s edit (edits.json), or None; the file is anyone's: read as a dict or not."""
    _, card, _ = models.edits(h)
    info = card.get("factors", {}).get(factor) if isinstance(card.get("factors"), dict) else None
    return info if isinstance(info, dict) else None


def shares(info: dict) -> dict[str, tuple[float, float]]:
    """{way of changing the factor: (on target, side effects)} for the ways whose figures are numbers: the ceiling,
    the edit, the attribute vector, the best single latent, then any other."""
    rows = info.get("rows") if isinstance(info.get("rows"), dict) else {}
    out = {}
    for label, row in sorted(rows.items(), key=lambda item: next(
            (i for i, name in enumerate(ROWS) if str(item[0]).startswith(name)), len(ROWS))):
        on, side = widgets.number(row, "on_target"), widgets.number(row, "side_effects")
        if on is not None and side is not None:
            out[str(label)] = (on, side)
    return out


def best_latent_row(info: dict) -> tuple[str, tuple[float, float]] | None:
    """(its label, its shares) of the best single latent's row."""
    return next(((k, v) for k, v in shares(info).items() if k.startswith("best single latent")), None)


def moves(info: dict, latent_dim: int) -> np.ndarray | None:
    """The edit's mean absolute move per latent, or None where edits.json has no such list of numbers."""
    raw = info.get("move_per_latent")
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return values if values.shape == (latent_dim,) and np.isfinite(values).all() else None


def turn_note(info: dict | None) -> str:
    """A sentence where the edit was allowed to turn the sprite (trained with a turn cost: `vae_core.edit_recipes.recipe`),
    else nothing."""
    if widgets.number(info or {}, "turn_cost") is None:
        return ""
    return (" It may also turn the sprite (a few grid steps): this model's latent does not say a heart's heading "
            "closely, and asked for the exact heading the edit drew a blob.")


def comparison(h: models.Handle, factor: str, key: str) -> None:
    """The table of the four ways and the bar chart of the edit's move per latent."""
    info = figures(h, factor)
    if info is None:
        st.caption(f"No stored edit of {plain(factor)} for {plain(h.name)}: "
                   f"`python -m vae_core.edits <model folder> --factor {plain(factor)}` learns one.")
        return
    table = shares(info)
    target = widgets.number(info, "target")
    value_names = getattr(models.dataset_for(h)[0], f"{factor}_names", None)
    asked = value_names[int(target)] if value_names and target is not None and 0 <= target < len(value_names) \
        else (f"value {target:g}" if target is not None else "the target")
    st.dataframe(pd.DataFrame({"on target": [f"{on:.0%}" for on, _ in table.values()],
                               "side effects": [f"{side:.0%}" for _, side in table.values()]},
                              index=list(table)), width="content")
    st.caption(f"Held-out images edited so that {plain(factor)} becomes {plain(asked)}: on target, the share a judge "
               "reads as asked; side effects, the share whose other factors read differently. The ceiling decodes the "
               "true twin's own latent: no edit can make the model draw better than that." + turn_note(info))
    moves_chart(h, factor, key)


def moves_chart(h: models.Handle, factor: str, key: str) -> None:
    """The bar chart of the edit's move per latent (one bar: the factor lives on one latent)."""
    info = figures(h, factor)
    if info is not None and (move := moves(info, h.latent_dim)) is not None:
        st.plotly_chart(charts.edit_moves(move, factor), key=f"{key}_moves")
    else:
        st.caption(f"{plain(h.name)} has no stored edit of {plain(factor)} with its moves.")


def strip(h: models.Handle, factor: str, count: int = 4) -> None:
    """Held-out images of the grid, one a row, edited to each value of `factor` in turn (left to right)."""
    nets, _, _ = models.edits(h)
    dataset, note = models.dataset_for(h)
    if factor not in nets or dataset is None or not hasattr(dataset, "images_from_factors"):
        st.caption(f"No strip: {note or 'no stored edit of ' + plain(factor)}.")
        return
    images = edited_rows(h, factor, count)
    names = getattr(dataset, f"{factor}_names", None) or [str(v) for v in range(nets[factor].values)]
    st.image(widgets.png(image_grid(images, count, nets[factor].values), px=96 * nets[factor].values),
             caption=f"each row: one held-out image edited to each {plain(factor)}, left to right: "
                     + ", ".join(plain(n) for n in names), width="content")


@st.cache_data(max_entries=16, show_spinner=False)
def _edited(path: str, stamp: float, factor: str, count: int) -> np.ndarray:
    h = models.handle_at(path, stamp)
    net = models.edits(h)[0][factor]
    dataset, _ = models.dataset_for(h)
    k = list(dataset.factor_names).index(factor)
    source = figures(h, factor) or {}
    starts = [int(v) for v in source.get("source_values", [])
              if isinstance(v, int) and 0 <= v < dataset.factor_sizes[k]] or [0]
    factors = dataset.sample_factors(64 * count, np.random.default_rng(7))
    factors = factors[np.isin(factors[:, k], starts)][:count]
    from vae_core.edits import means

    z = means(h.model, dataset, factors)
    edited = np.stack([apply_edit(net, z, v) for v in range(net.values)], 1)  # (count, values, latent)
    return decode(h.model, edited.reshape(-1, h.latent_dim).astype(np.float32))


def edited_rows(h: models.Handle, factor: str, count: int) -> np.ndarray:
    """(count x values) decoded images: `count` grid images that start at the edit's source values (the frowns),
    each edited to every value of `factor`."""
    return _edited(h.path, h.stamp, factor, count)


def along(dataset, factor: str, net, z: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(the factor's value names, the point `z` edited to each value in turn: (values, latent_dim))."""
    names = [str(v) for v in (getattr(dataset, f"{factor}_names", None) or range(net.values))]
    return names, apply_edit(net, np.repeat(np.asarray(z, np.float32)[None], net.values, 0), np.arange(net.values))


def on_image(h: models.Handle, z: np.ndarray, what: str) -> None:
    """Each stored edit applied to one's own image's latent `z`: a strip from the factor's first value to its last
    ("make it smile": a drawn face from frown to smile), decoded on the server."""
    nets, _, _ = models.edits(h)
    dataset, _ = models.dataset_for(h)
    for factor, net in nets.items():
        names, edited = along(dataset, factor, net, z)
        title = "Make it smile" if factor == "mouth" else f"Change its {plain(factor)}"
        st.markdown(f"**{title}**: {plain(what)}'s latent moved by the learned {plain(factor)} edit, the rest kept")
        widgets.show_images(decode(h.model, edited), [plain(n) for n in names], px=112)
