"""Guided lessons a teacher opens with one link (`?lesson=beta&step=3`): what each step shows, and the question it
asks, with the answer read from the model (never written down here).

A step names the models it needs by folder name; a server without them says which are missing. The widgets are
the pages' own (app.widgets, app.charts); the answers come from the cards and from vae_core.naming.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app import models
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
    show: str  # "traversals", "kl", "figures", "sweep"
    question: Question | None = None


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
