"""A model folder's README.md, written from its card.json and config.json, so that it cannot drift from them.

`python -m vae_core.model_card [FOLDER ...]` (default: every folder in pretrained/) writes each folder's README.md:
YAML front matter as model hubs read it (tags, dataset, metrics), then what the model is, its figures, what each
latent carries (from the card's factor-by-latent mutual information, `vae_core.naming`), how it was trained (its
zoo recipe, the steps it saw in all) and its history (the card's `history`: one line per stage of its training, in
order). `--check` writes nothing and fails when a README differs from what the card says (the tests run it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import checkpoints as ckpt
from .evaluate import SUMMARY_ROWS
from .explore import dim_order
from .kinds import kind, objective, weights_text
from .naming import name_latents

README = "README.md"
METRICS = (("mig", "MIG", ("mig", "score")), ("factor_vae", "FactorVAE score", ("factor_vae", "score")),
           ("beta_vae", "beta-VAE score", ("beta_vae", "score")), ("dci_disentanglement", "DCI disentanglement",
                                                                   ("dci", "disentanglement")),
           ("sap", "SAP", ("sap", "score")))
DATA = {"dsprites": "procedural dSprites", "faces": "procedural cartoon faces", "digits": "procedural digits",
        "faces-expressive": "procedural cartoon faces drawn with a bigger mouth, teeth and brows that follow it"}


def _number(value, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.1f}"
    return "–"  # a card's text is not a figure


def _metric(card: dict, path: tuple[str, str]):
    section = card.get("metrics", {}).get(path[0]) if isinstance(card.get("metrics"), dict) else None
    value = section.get(path[1]) if isinstance(section, dict) else None
    return round(float(value), 4) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def latent_lines(card: dict, exp) -> list[str]:
    """One line per active latent (most KL first): the factor it carries, its share of that factor's information
    and its gap to the next latent (vae_core.naming); empty without factors or figures."""
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    figures = card.get("evaluation", card.get("final", {}))
    try:
        mi = np.asarray(metrics.get("mi_matrix"), dtype=np.float64)
        kl = np.asarray(figures.get("kl_per_dim"), dtype=np.float64)
    except (TypeError, ValueError, AttributeError):
        return []
    sizes = dict(zip(exp.dataset.factor_names, exp.dataset.factor_sizes))
    names = [n for n in metrics.get("factor_names", []) if isinstance(n, str)]
    if mi.ndim != 2 or kl.shape != (exp.model.latent_dim,) or mi.shape != (len(names), exp.model.latent_dim):
        return []
    order, active = dim_order(kl, exp.model.latent_dim)
    named = name_latents(mi, names, np.array([np.log(max(sizes.get(n, 2), 2)) for n in names]), active)
    lines = []
    for d in order:
        n = named[d]
        if not active[d]:
            continue
        carried = (f"{n.name} (share {n.share:.2f} of {n.factors[0]}'s information, gap {n.gap:+.2f})"
                   if n.factors else n.name)
        lines.append(f"- z{d} ({kl[d]:.2f} nats): {carried}")
    inactive = [f"z{d}" for d in order if not active[d]]
    if inactive:
        lines.append(f"- inactive (collapsed): {', '.join(inactive)}")
    return lines


def render(folder: str | Path) -> str:
    """The README.md of a model folder, from its card and config."""
    from .zoo import STORED_AS_FLOAT16, ZOO

    folder = Path(folder)
    exp, card = ckpt.load_config(folder), ckpt.read_card(folder)
    name, t, m = folder.name, exp.train, exp.model
    trained = objective(t.objective)
    record = kind(m.kind)
    total = ckpt.steps_in_all(card)
    metrics = [(key, label, _metric(card, path)) for key, label, path in METRICS]
    tags = dict.fromkeys((record.name, t.objective, t.dataset))
    front = ["---", "library_name: vae-explorer", "license: mit", "tags:", *(f"- {tag}" for tag in tags),
             "datasets:", f"- {t.dataset}"]
    if any(v is not None for _, _, v in metrics):
        front += ["model-index:", f"- name: {name}", "  results:", "  - task:", "      type: representation-learning",
                  "      name: disentanglement", "    dataset:", f"      name: {t.dataset}", f"      type: {t.dataset}",
                  "    metrics:"]
        front += [f"    - type: {key}\n      value: {value}" for key, _, value in metrics if value is not None]
    front.append("---")
    weights = weights_text(exp)  # a plain VAE's "β = 1" goes without saying
    beta = f" ({weights})" if weights and not (trained.default_beta == 1.0 and weights == "β = 1") else ""
    latent = f"{m.latent_dim} latent dimensions" if record.continuous_latent else "a grid of discrete codes"
    before = card.get("steps_before", 0)
    steps = (f"{_number(total)} steps" + (f" in all ({_number(before)} of them before it was fine-tuned from "
                                          f"`{Path(t.init_from).name}`)" if before and t.init_from else "")
             if total is not None else "an unknown number of steps")
    body = [f"# {name}", "",
            (f"A {trained.title or trained.name}{beta} with {latent}, trained on "
            f"{DATA.get(t.dataset, t.dataset)} ({m.image_size}x{m.image_size}, {m.channels} channel"
            f"{'s' if m.channels > 1 else ''}), for {steps}. Written from card.json by `python -m vae_core.model_card`"
            "; edit the card, not this file."), "", "## Figures", "",
            ("From `python -m vae_core.evaluate` (reconstruction and KL over 10,000 fresh images; metrics by the "
            "disentanglement_lib protocol)."), "", "| figure | value |", "| --- | --- |"]
    for label, get in SUMMARY_ROWS:
        try:
            value = get(card)
        except (AttributeError, TypeError, KeyError):
            value = None
        if value is not None and _number(value) != "–":
            body.append(f"| {label} | {_number(value)} |")
    lines = latent_lines(card, exp)
    if lines:
        body += ["", "## What each latent carries", "",
                 ("Named by the factor whose information it holds most of (its share of that factor's entropy), from "
                 "the card's factor-by-latent mutual information; the gap is how much more of it this latent holds "
                 "than any other does."), "", *lines]
    body += ["", "## How it was trained", ""]
    stored = card.get("stored_as") if isinstance(card.get("stored_as"), dict) else {}
    if name in ZOO:
        body += ["```", f"python -m vae_core.train {ZOO[name]} --out pretrained/{name}"]
        if name in STORED_AS_FLOAT16:
            body.append(f"python -m vae_core.evaluate pretrained/{name} --store-float16")
        body += ["```", ""]
    rates = "".join(f", {rate:g} from step {step:,}" for step, rate in t.lr_changes)
    detail = [f"batch {t.batch_size}", f"learning rate {t.lr:g}{rates}", f"seed {t.seed}"]
    if t.optimizer_resets:
        detail.append("Adam restarted at step " + ", ".join(f"{s:,}" for s in t.optimizer_resets))
    hardware, date = card.get("hardware"), card.get("date")
    if isinstance(hardware, str):
        detail.append(f"last run on {hardware}" + (f" ({date})" if isinstance(date, str) else ""))
    if stored.get("dtype") == "float16" and isinstance(stored.get("largest_weight_change"), float):
        detail.append(f"weights stored as float16 (no weight moved by more than {stored['largest_weight_change']:.1g});"
                      " the figures above are those of the stored weights")
    body.append("; ".join(detail) + ".")
    history = [h for h in card.get("history", []) if isinstance(h, str)] if isinstance(card.get("history"), list) else []
    if history:
        body += ["", "## History", "", *(f"- {h}" for h in history)]
    body += ["", "## Use", "", (f"`make app`, then choose **{name}** in the sidebar (or open `/?model={name}`). "
             "Continue its training with the line above and `--resume`.")]
    return "\n".join(front + [""] + body) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.model_card", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="model folders (default: every one in pretrained/)")
    parser.add_argument("--check", action="store_true", help="write nothing; fail when a README differs")
    args = parser.parse_args(argv)
    folders = args.folders or sorted(p for p in ckpt.PRETRAINED_DIR.iterdir() if (p / ckpt.CONFIG_FILE).exists())
    stale = []
    for folder in folders:
        text = render(folder)
        path = folder / README
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("out of date (run `python -m vae_core.model_card`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
