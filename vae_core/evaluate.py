"""Evaluate a model folder: `python -m vae_core.evaluate pretrained/NAME`, or `--compare A B ...`.

Computes, on fresh samples of the model's own dataset, the reconstruction (nats per image) and KL (total and per
dimension), active units, and, where the dataset has ground-truth factors, the disentanglement metrics by the
disentanglement_lib protocol (`vae_core.metrics`) and the factor-by-latent mutual-information matrix, and for
VAEs the importance-weighted likelihood bound (`vae_core.likelihood`, `--iwae-k` samples per image). It prints a
table and writes everything into the folder's card.json; with `--projection` (the default) it also writes
projection.npz (posterior means of a fixed sample, factors, UMAP and PCA coordinates) for the app's map.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import card_figures
from . import checkpoints as ckpt
from .data import get_dataset
from .data.own import each_once
from .kinds import KINDS, kind, objective
from .likelihood import DEFAULT_IMAGES, DEFAULT_K, dataset_bound

RECON_SAMPLES = 10_000


def evaluate_folder(folder: str | Path, seed: int = 0, metrics: bool = True, projection: bool = True,
                    recon_samples: int = RECON_SAMPLES, metric_counts: dict | None = None, log=print,
                    iwae_k: int = DEFAULT_K, iwae_samples: int = DEFAULT_IMAGES, judge_steps: int | None = None) -> dict:
    """Evaluate one model folder and merge the results into its card; returns the updated card.

    Args:
        metric_counts: per-metric sample counts overriding the protocol's (tests only; recorded in the card).
        iwae_k, iwae_samples: the importance-weighted bound's samples per image and images (k = 0: skip it).
        judge_steps: training steps of a CVAE's swap judge (default `vae_core.condition_eval.JUDGE_STEPS`; fewer in tests).
    """
    loaded = ckpt.load_model(folder)
    exp = loaded.config
    dataset = get_dataset(exp.train.dataset, exp.train.data_root, exp.model.image_size, exp.model.channels)
    began = time.perf_counter()
    drawn, recon_n = each_once(dataset, recon_samples, seed + 1)
    results: dict = {"evaluation": card_figures.figures(loaded.model, drawn, exp, recon_n, seed + 1)}
    log(f"{loaded.name}: reconstruction and KL on {recon_n:,} "
        f"{'fresh images' if recon_n == recon_samples else 'images, each of the set once'} "
        f"({time.perf_counter() - began:.1f} s)")
    if iwae_k > 0:
        drawn, iwae_n = each_once(dataset, iwae_samples, seed + 2)
        results["iwae"] = likelihood_figures(loaded, drawn, iwae_k, iwae_n, seed, log)
    info = kind(exp.model.kind)
    if info.conditional:
        from .condition_eval import JUDGE_STEPS, condition_leak, swap_accuracy

        began = time.perf_counter()
        results["swap"] = swap_accuracy(loaded.model, dataset, exp.model.options.condition, seed=seed,
                                        judge_steps=judge_steps or JUDGE_STEPS)
        results["leak"] = condition_leak(loaded.model, dataset, exp.model.options.condition, seed=seed)
        log(f"{loaded.name}: condition swap accuracy {results['swap'].get('accuracy', 'n/a')}, a probe reads the "
            f"condition from z with accuracy {results['leak']['accuracy']:.3f} ({time.perf_counter() - began:.1f} s)")
    results["sharpness"] = card_figures.sharpness(loaded.model, dataset)
    log(f"{loaded.name}: sharpness {results['sharpness']['reconstructions']:.4g} (reconstructions), "
        f"{results['sharpness']['data']:.4g} (data)")
    if not info.continuous_latent:  # a grid of discrete codes: no posterior means to score or project
        metrics = projection = False
        results["metrics"] = {"unavailable": f"a {info.display_name}'s code is not a vector of continuous latents; "
                                             "the disentanglement metrics do not apply"}
    if metrics:
        from .metrics import MetricsUnavailable, compute_all_metrics, representation_from_model

        began = time.perf_counter()
        try:
            scored, represent = dataset, representation_from_model(loaded.model)
            if info.conditional:  # z given the true condition: does the latent hold the rest apart?
                from .condition_eval import true_condition_representation

                scored, represent = true_condition_representation(loaded.model, dataset,
                                                                               exp.model.options.condition)
            results["metrics"] = compute_all_metrics(scored, represent, seed=seed, **(metric_counts or {}))
            if info.conditional:
                results["metrics"]["representation"] = (f"posterior mean given the true {exp.model.options.condition} "
                                                        "(the condition both networks see)")
            results["metrics_seconds"] = round(time.perf_counter() - began, 1)
            log(f"{loaded.name}: disentanglement metrics ({results['metrics_seconds']} s)")
        except MetricsUnavailable as exc:
            log(f"{loaded.name}: {exc}")
            results["metrics"] = {"unavailable": str(exc)}
    if projection:
        from .projection import write_projection

        began = time.perf_counter()
        write_projection(folder, loaded.model, dataset, seed=seed, progress=log is print)
        log(f"{loaded.name}: projection.npz ({time.perf_counter() - began:.1f} s)")
    if "final" not in loaded.card:  # a run stopped part-way: its final weights are the ones just evaluated
        results["final"] = results["evaluation"]
    return ckpt.update_card(folder, results)


def likelihood_figures(loaded, dataset, k: int, n: int, seed: int = 0, log=print) -> dict:
    """The card's IWAE section: the bound on n fresh images, or why a model has none (a plain autoencoder)."""
    name = loaded.config.train.objective
    if objective(name).autoencoder:
        return {"unavailable": "a plain autoencoder has no posterior variance (it was never trained), so an "
                               "importance-weighted likelihood bound says nothing about it"}
    if objective(name).iwae is None:
        return {"unavailable": f"the bound here is for Gaussian-posterior VAEs, not the {name} objective"}
    conditional = objective(name).iwae == "conditional"
    began = time.perf_counter()
    figures = dataset_bound(loaded.model, dataset, k=k, n=n, seed=seed + 2,
                            condition=loaded.config.model.options.condition if conditional else None)
    figures["seconds"] = round(time.perf_counter() - began, 1)
    log(f"{loaded.name}: IWAE bound (k={k}, {n} images): {figures['nll_nats_per_image']:.2f} nats/image "
        f"({figures['seconds']} s)")
    return figures


def add_sharpness(folder: str | Path) -> dict:
    """Merge only the sharpness figure into a folder's card (the same figure `evaluate_folder` records)."""
    loaded = ckpt.load_model(folder)
    exp = loaded.config
    dataset = get_dataset(exp.train.dataset, exp.train.data_root, exp.model.image_size, exp.model.channels)
    return ckpt.update_card(folder, {"sharpness": card_figures.sharpness(loaded.model, dataset)})


def _score(metrics: dict, name: str, key: str):
    value = metrics.get(name, {})
    return value.get(key) if isinstance(value, dict) else None


# What each row measures, its range and its source, one line each (shown where the metrics are compared); a
# "{chance}" is filled by `row_meaning` from the data of the models compared
ROW_MEANINGS = {
    "recon (nats/image)": "−log p(x | z) per image at a sampled z: lower reconstructs better",
    "KL (nats)": "what the code costs per image, KL(q(z|x) ‖ p(z)): how much the latent carries",
    "-IWAE (nats/image)": "a bound on −log p(x) with k importance samples (Burda et al. 2016): lower is better",
    "active dims": "latents with KL above 0.01 nats; the rest collapsed to the prior",
    "beta-VAE score": "{chance} to 1: a linear classifier tells which factor was held fixed (Higgins et al. 2017)",
    "FactorVAE score": "{chance} to 1: a vote by the latent of least variance tells the fixed factor "
                       "(Kim & Mnih 2018)",
    "MIG": "0 to 1: per factor, the gap in mutual information between its best and second-best latent, over its "
           "entropy (Chen et al. 2018); one latent per factor scores high",
    "DCI disentanglement": "0 to 1: how much each latent is used for one factor only (Eastwood & Williams 2018)",
    "DCI completeness": "0 to 1: how much each factor is captured by one latent only",
    "DCI informativeness": "0 to 1: how well the latents predict the factors (accuracy)",
    "SAP": "0 to 1: per factor, the gap between the two latents that predict it best (Kumar et al. 2018)",
}


def row_meaning(label: str, datasets) -> str:
    """What row `label` measures (ROW_MEANINGS), for models of `datasets` (their `DatasetInfo`s, one per model
    compared): a score that guesses the fixed factor is at chance at one over the number of factors that vary in
    the data (dSprites' 5: 0.20, the faces' 7: 0.14)."""
    text = ROW_MEANINGS.get(label, "")
    if "{chance}" not in text:
        return text
    counts = sorted({sum(size > 1 for size in info.factor_sizes) for info in datasets} - {0, 1})
    chance = " or ".join(f"{1 / n:.2f} (chance, {n} factors)" for n in counts) or "chance"
    return text.replace("{chance}", chance)


KL_ROW = "KL (nats)"  # an autoencoder's is of a variance it never trained: pages leave it out
SUMMARY_ROWS = (
    ("steps", ckpt.steps_in_all),  # a fine-tune's with its base's
    ("beta", lambda c: c.get("beta")),
    ("recon (nats/image)", lambda c: c.get("evaluation", c.get("final", {})).get("recon")),
    (KL_ROW, lambda c: c.get("evaluation", c.get("final", {})).get("kl")),
    ("-IWAE (nats/image)", lambda c: c.get("iwae", {}).get("nll_nats_per_image")),
    ("IWAE k", lambda c: c.get("iwae", {}).get("k")),
    *(row for record in KINDS.values() for row in record.card_rows),  # each kind's own (`Kind.card_rows`)
    ("sharpness (recon)", lambda c: c.get("sharpness", {}).get("reconstructions")),
    ("sharpness (data)", lambda c: c.get("sharpness", {}).get("data")),
    ("active dims", lambda c: c.get("evaluation", c.get("final", {})).get("active_dims")),
    ("beta-VAE score", lambda c: _score(c.get("metrics", {}), "beta_vae", "score")),
    ("FactorVAE score", lambda c: _score(c.get("metrics", {}), "factor_vae", "score")),
    ("MIG", lambda c: _score(c.get("metrics", {}), "mig", "score")),
    ("DCI disentanglement", lambda c: _score(c.get("metrics", {}), "dci", "disentanglement")),
    ("DCI completeness", lambda c: _score(c.get("metrics", {}), "dci", "completeness")),
    ("DCI informativeness", lambda c: _score(c.get("metrics", {}), "dci", "informativeness")),
    ("SAP", lambda c: _score(c.get("metrics", {}), "sap", "score")),
)


def format_table(names: list[str], cards: list[dict]) -> str:
    """Models side by side, one row per figure."""
    def fmt(v):
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    width = max(len(r[0]) for r in SUMMARY_ROWS)
    cols = [max(len(n), 10) for n in names]
    lines = [" " * width + "  " + "  ".join(n.rjust(w) for n, w in zip(names, cols))]
    for label, get in SUMMARY_ROWS:
        lines.append(label.ljust(width) + "  " + "  ".join(fmt(get(c)).rjust(w) for c, w in zip(cards, cols)))
    return "\n".join(lines)


def _resolve(name: str) -> Path:
    path = Path(name)
    if path.is_dir():
        return path
    for entry in ckpt.list_models():
        if entry.name == name:
            return entry.path
    raise ckpt.CheckpointError(f"{name}: no such model folder (looked in {', '.join(map(str, ckpt.model_dirs()))})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="model folders (or names in pretrained/) to evaluate")
    parser.add_argument("--compare", nargs="+", metavar="NAME", help="print these models' cards side by side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-metrics", action="store_true", help="skip the disentanglement metrics")
    parser.add_argument("--no-projection", action="store_true", help="skip projection.npz (UMAP)")
    parser.add_argument("--recon-samples", type=int, default=RECON_SAMPLES)
    parser.add_argument("--iwae-k", type=int, default=DEFAULT_K, help="importance samples per image (0: skip)")
    parser.add_argument("--iwae-samples", type=int, default=DEFAULT_IMAGES, help="images for the IWAE bound")
    parser.add_argument("--store-float16", action="store_true",
                        help="first round the weights to float16 in place (half the file), then evaluate those")
    parser.add_argument("--sharpness-only", action="store_true",
                        help="add only the sharpness figure to the cards, keeping their other figures")
    args = parser.parse_args(argv)
    if not args.models and not args.compare:
        parser.error("name at least one model folder, or --compare NAME1 NAME2 ...")
    try:
        folders = [_resolve(m) for m in args.models]
        for folder in folders:
            if args.sharpness_only:
                card = add_sharpness(folder)
                print(f"{folder.name}: sharpness {card['sharpness']}")
                continue
            if args.store_float16:
                stored = ckpt.store_weights_as_float16(folder)
                print(f"{folder.name}: weights stored as float16 (largest change {stored['largest_weight_change']:.2g})")
            card = evaluate_folder(folder, args.seed, not args.no_metrics, not args.no_projection,
                                   args.recon_samples, iwae_k=args.iwae_k, iwae_samples=args.iwae_samples)
            print(format_table([folder.name], [card]))
        if args.compare:
            compare = [_resolve(m) for m in args.compare]
            print(format_table([f.name for f in compare], [ckpt.read_card(f) for f in compare]))
    except (ckpt.CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
