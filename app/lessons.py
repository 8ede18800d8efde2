"""Guided lessons a teacher opens with one link (`?lesson=beta&step=3`): what each step shows, and the question it
asks, with the answer read from the model (never written down here).

A step names the models it needs by folder name; a server without them says which are missing. The widgets are
the pages' own (app.widgets, app.charts); the answers come from the cards and from vae_core.naming.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app import edit_views, models
from vae_core.sweep import shipped_points


@dataclass(frozen=True)
class Question:
    text: str
    choices: Callable[[list[models.Handle]], list[str]]  # what a student picks from
    answer: Callable[[list[models.Handle]], str]  # the right choice, read from the models
    why: Callable[[list[models.Handle]], str]  # said once answered
    hides_names: bool = False  # the answer is a latent's name: the rows are not named until it is answered


@dataclass(frozen=True)
class Step:
    title: str
    text: str  # for students: short, plain
    models: tuple[str, ...]  # folders in pretrained/ (or $VAE_EXPLORER_MODELS)
    show: str  # "traversals", "kl", "figures", "sweep", "edits" (of `factor`), "edit_moves" (of `factor`)
    question: Question | None = None
    factor: str | None = None  # the factor whose edits "edits" and "edit_moves" show


def active_count(h: models.Handle) -> int:
    _, active, _ = models.dims(h)
    return int(np.sum(active))


def _count_choices(hs) -> list[str]:
    return [str(n) for n in range(hs[0].latent_dim + 1)]


def _carrier(factor: str):
    """The latent carrying most of `factor` (its largest share), as 'z3'."""
    def answer(hs) -> str:
        names = models.latent_names(hs[0])
        if not names:
            return "—"
        return f"z{max(names, key=lambda n: n.share if factor in n.factors[:1] else -1).dim}"
    return answer


def sweep_points() -> list[dict]:
    """The shipped beta sweep's points, by beta (vae_core.sweep); empty when there is none or it cannot be read."""
    return shipped_points()[0]


def _best_beta(hs) -> str:
    points = sweep_points()
    return f"{max(points, key=lambda p: p['mig'])['beta']:g}" if points else "—"


def _best_beta_why(hs) -> str:
    """What the sweep says about its best β, and nothing about a β it did not train."""
    points = sorted(sweep_points(), key=lambda p: p["beta"])
    if not points:
        return "—"
    best, first, last = max(points, key=lambda p: p["mig"]), points[0], points[-1]
    cost = (f"reconstruction costs {best['recon']:.1f} nats per image there, against {first['recon']:.1f} at "
            f"β = {first['beta']:g}" if best is not first else "")
    if best is last:
        return (f"β = {best['beta']:g}, the largest trained here: {cost}. Whether a larger β would do better, this "
                "sweep cannot say.")
    return f"β = {best['beta']:g}: {cost}; above it, up to β = {last['beta']:g}, MIG is lower."


def _edit_shares(h: models.Handle, factor: str, row: str) -> tuple[float, float] | None:
    """(on target, side effects) of one way of changing `factor` (a row of the model's edits.json: "edit",
    "attribute vector", "best single latent"...), or None where the model has no such figures."""
    info = edit_views.figures(h, factor)
    shares = edit_views.shares(info) if info else {}
    return next((v for k, v in shares.items() if k.startswith(row)), None)


def _single_latent(factor: str):
    """The latent that changes `factor` alone (its row reaches 80% on target with at most 10% side effects), or
    "none of them"."""
    def answer(hs) -> str:
        info = edit_views.figures(hs[0], factor) or {}
        best = edit_views.best_latent_row(info)
        if best is None:
            return "—"
        on, side = best[1]
        return best[0].split("(")[-1].rstrip(")") if on >= 0.8 and side <= 0.1 else "none of them"
    return answer


def _single_latent_why(factor: str):
    def why(hs) -> str:
        best = edit_views.best_latent_row(edit_views.figures(hs[0], factor) or {})
        if best is None:
            return "—"
        (label, (on, side)) = best
        return (f"The {label}, set to its mean over the data at the target: {on:.0%} of the held-out faces read as "
                f"asked, and {side:.0%} change another factor.")
    return why


SHARE_BUCKETS = ("under 10%", "10 to 50%", "50 to 80%", "over 80%")


def _bucket(share: float) -> str:
    return SHARE_BUCKETS[int(np.searchsorted([0.1, 0.5, 0.8], share, side="right"))]


def _row_bucket(factor: str, row: str):
    def answer(hs) -> str:
        shares = _edit_shares(hs[0], factor, row)
        return "—" if shares is None else _bucket(shares[0])
    return answer


def _row_why(factor: str, row: str, after: str):
    def why(hs) -> str:
        shares = _edit_shares(hs[0], factor, row)
        if shares is None:
            return "—"
        return f"{shares[0]:.0%} read as asked, and {shares[1]:.0%} changed another factor. {after}"
    return why


MOVED = 0.1  # a latent the edit moves by more than this, on average, counts as moved


def _moved(h: models.Handle, factor: str) -> list[int]:
    info = edit_views.figures(h, factor) or {}
    move = edit_views.moves(info, h.latent_dim)
    return [] if move is None else [int(d) for d in np.flatnonzero(move > MOVED)]


def _one_axis(factor: str):
    """The model whose edit of `factor` is most one latent's: the largest share of its move on one latent."""
    def share(h) -> float:
        move = edit_views.moves(edit_views.figures(h, factor) or {}, h.latent_dim)
        return -1.0 if move is None or move.sum() <= 0 else float(move.max() / move.sum())

    def answer(hs) -> str:
        return max(hs, key=share).name if max(map(share, hs)) >= 0 else "—"

    def why(hs) -> str:
        parts = []
        for h in hs:
            move = edit_views.moves(edit_views.figures(h, factor) or {}, h.latent_dim)
            if move is not None and move.sum() > 0:
                parts.append(f"{h.name} moves z{int(move.argmax())} for {share(h):.0%} of its whole move")
        return "; ".join(parts) + "."
    return answer, why


def _recon(h: models.Handle) -> float:
    figures = h.card.get("evaluation") or h.card.get("final") or {}
    value = figures.get("recon") if isinstance(figures, dict) else None
    return float(value) if isinstance(value, (int, float)) else float("inf")


LESSONS: dict[str, tuple[str, tuple[Step, ...]]] = {
    "beta": ("What β buys", (
        Step("A plain VAE", "Each row is one latent dimension, moved from left to right while the others stay put. "
             "A plain VAE (β = 1) uses its dimensions for whatever reconstructs best: watch how several rows move "
             "the shape at once.", ("dsprites-vae",), "traversals",
             Question("How many of its dimensions are active (KL above 0.01 nats)?", _count_choices,
                      lambda hs: str(active_count(hs[0])),
                      lambda hs: f"{active_count(hs[0])} of its {hs[0].latent_dim} rows carry more than 0.01 nats "
                                 "(each row's label gives its KL); the others are marked inactive.")),
        Step("Turn β up", "A β-VAE pays β times for every nat its code carries, so it keeps only the dimensions worth "
             "their price. Compare its active dimensions (the blue bars, below) with the plain VAE's (above).",
             ("dsprites-vae", "dsprites-beta-vae"), "kl",
             Question("How many dimensions does the β-VAE keep active?", _count_choices,
                      lambda hs: str(active_count(hs[-1])),
                      lambda hs: f"{active_count(hs[-1])}: the others collapsed to the prior (the plain VAE keeps "
                                 f"{active_count(hs[0])}).")),
        Step("One factor per slider", "β-TCVAE penalises only the total correlation between dimensions, the part of "
             "the KL that ties them together. Look for the row that moves the shape left and right and nothing else.",
             ("dsprites-beta-tcvae",), "traversals",
             Question("Which dimension moves the shape left and right?",
                      lambda hs: [f"z{d}" for d in models.dims(hs[0])[0]], _carrier("posX"),
                      lambda hs: f"{_carrier('posX')(hs)} carries the most of posX (the factor-by-latent "
                                 "mutual information).", hides_names=True)),
        Step("What β costs", "Pulling factors apart is paid for in reconstruction: the pixels the code no longer "
             "describes. Compare the three models' reconstruction error (nats per image, lower is better).",
             ("dsprites-vae", "dsprites-beta-vae", "dsprites-beta-tcvae"), "figures",
             Question("Which model reconstructs best?", lambda hs: [h.name for h in hs],
                      lambda hs: min(hs, key=_recon).name,
                      lambda hs: ", ".join(f"{h.name} {_recon(h):.1f}" for h in hs) + " nats per image.")),
        Step("The β sweep", "The same β-VAE trained at several values of β (those on the axes), one seed each: "
             "reconstruction gets worse as β grows, and disentanglement (MIG) does not simply follow. Locatello et al. (2019) found the seed "
             "matters about as much as β, so one run per β is a hint, not a law.", (), "sweep",
             Question("Which β gave the highest MIG in this sweep?",
                      lambda hs: [f"{p['beta']:g}" for p in sweep_points()], _best_beta, _best_beta_why)),
    )),
    "smile": ("A smile slider", (
        Step("Look for a smile slider", "Each row is one latent of a plain VAE of faces, moved from left to right while "
             "the others stay. Is there a row that turns a frown into a smile and changes nothing else?",
             ("faces-vae",), "traversals",
             Question("Which latent turns a frown into a smile, and changes nothing else?",
                      lambda hs: [f"z{d}" for d in models.dims(hs[0])[0] if models.dims(hs[0])[1][d]]
                      + ["none of them"], _single_latent("mouth"), _single_latent_why("mouth"), hides_names=True)),
        Step("Try the attribute vector", "The classic recipe (White 2016): the mean latent of the smiling faces minus "
             "that of the frowning ones, added to a frowning face's latent. The table measures it on 500 faces the "
             "model never saw, beside a learned edit and the best the model can draw (the ceiling).",
             ("faces-vae",), "edits",
             Question("What share of the frowning faces did the attribute vector turn into smiles?",
                      lambda hs: list(SHARE_BUCKETS), _row_bucket("mouth", "attribute vector"),
                      _row_why("mouth", "attribute vector", "The faces differ in many other ways, so the mean "
                               "difference is short and points partly elsewhere.")), factor="mouth"),
        Step("The learned edit", "The data is drawn by a program, so every face has twins that differ in the mouth "
             "alone. A small network learned, from such pairs, how to move a latent point so that only the mouth "
             "changes. The strip shows faces it never saw, edited from frown to smile; the bars, how far it moves "
             "each latent.", ("faces-vae",), "edits",
             Question("How many latents does the edit move by more than 0.1 on average?",
                      lambda hs: [str(n) for n in range(hs[0].latent_dim + 1)],
                      lambda hs: str(len(_moved(hs[0], "mouth"))),
                      lambda hs: f"{', '.join(f'z{d}' for d in _moved(hs[0], 'mouth')) or 'none'}: the smile is "
                                 "spread over several latents, so no one slider could draw it."), factor="mouth"),
        Step("One axis or many", "The same edit learned for a β-VAE of the same faces. Compare the bars: where a "
             "factor has a latent of its own, the edit is a move along that one axis.",
             ("faces-vae", "faces-beta-vae"), "edit_moves",
             Question("In which model does the smile live on one latent?", lambda hs: [h.name for h in hs],
                      _one_axis("mouth")[0], _one_axis("mouth")[1]), factor="mouth"),
        Step("A slider that is the smile", "A β-TCVAE (it penalises only the dependence between latents) trained on "
             "the same faces drawn with a bigger mouth, a band of teeth and brows that follow it: the same seven "
             "factors, the mood now moving more of the picture. Each row is one of its latents, moved from left to "
             "right. Is there now a row that turns a frown into a smile and changes nothing else?",
             ("faces-beta-tcvae",), "traversals",
             Question("Which latent turns a frown into a smile, and changes nothing else?",
                      lambda hs: [f"z{d}" for d in models.dims(hs[0])[0] if models.dims(hs[0])[1][d]]
                      + ["none of them"], _single_latent("mouth"), _single_latent_why("mouth"), hides_names=True)),
        Step("When no edit is needed", "Position on dSprites: a β-TCVAE gives posX a latent of its own, a plain VAE "
             "spreads it. The bars show each model's learned posX edit.",
             ("dsprites-vae", "dsprites-beta-tcvae"), "edit_moves",
             Question("Which model's posX could one slider move?", lambda hs: [h.name for h in hs],
                      _one_axis("posX")[0], _one_axis("posX")[1]), factor="posX"),
    )),
    "collapse": ("Posterior collapse", (
        Step("Dimensions that say nothing", "A dimension whose KL is about zero has collapsed: the encoder gives "
             "every image the same code there (the prior), so the decoder learns to ignore it.",
             ("dsprites-beta-vae",), "kl",
             Question("How many dimensions have collapsed?", _count_choices,
                      lambda hs: str(hs[0].latent_dim - active_count(hs[0])),
                      lambda hs: f"{hs[0].latent_dim - active_count(hs[0])} bars sit at zero.")),
        Step("Move a collapsed dimension", "The last rows are the collapsed dimensions. Moving them changes "
             "nothing in the picture: the decoder never learned to use them.", ("dsprites-beta-vae",), "traversals",
             Question("Does moving a collapsed dimension change the image?", lambda hs: ["yes", "no"],
                      lambda hs: "no", lambda hs: "No: its rows are the same image from left to right.")),
        Step("Keeping dimensions alive", "Two remedies you can try with `python -m vae_core.train`: KL warm-up "
             "(`--warmup-steps`, the KL weight grows from 0 so the code is used before it is priced) and free "
             "bits (`--free-bits`, each dimension's first nats are free). Both trade a little disentanglement for "
             "fewer collapsed dimensions.", ("dsprites-beta-vae",), "kl"),
    )),
}
