"""The beta sweep on dSprites: `python -m vae_core.sweep` (`make beta-sweep`).

It trains one beta-VAE per beta with the same seed, steps and settings, then measures each on the same fresh
images: reconstruction and KL (as `vae_core.evaluate` does) and MIG (the metric protocol's 10,000 samples).
The points go to pretrained/beta_sweep.json, which the Disentanglement page plots: what beta buys in
disentanglement and what it costs in reconstruction. The trained folders stay in the runs folder; only the
summary ships, so the sweep costs the zoo no space.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from . import card_figures
from . import checkpoints as ckpt
from .data import get_dataset
from .evaluate import RECON_SAMPLES
from .kinds import objective
from .zoo import resumable_training

SWEEP_BETAS: tuple[float, ...] = (1, 2, 4, 8, 16)
SWEEP_OBJECTIVE = "beta-vae"  # the runs differ only in --beta, its KL weight
SWEEP_SETTINGS = f"--dataset dsprites --objective {SWEEP_OBJECTIVE} --seed 0 --steps 26000"
SWEEP_FILE = "beta_sweep.json"
DEFAULT_RUNS_DIR = Path("runs") / "beta-sweep"


def run_folder(runs_dir: Path, beta: float) -> Path:
    return runs_dir / f"beta-{beta:g}"


def train_command(beta: float, runs_dir: Path) -> list[str]:
    """The training command for one beta, resuming whatever its folder already holds."""
    return resumable_training(f"{SWEEP_SETTINGS} --beta {beta:g}", run_folder(runs_dir, beta), log_every=500)


def sweep_point(folder: str | Path, recon_samples: int = RECON_SAMPLES, seed: int = 0) -> dict:
    """One trained folder's point: beta, reconstruction and KL over fresh images, MIG and its per-factor gaps."""
    from .metrics import FactorCodes, mig, representation_from_model

    loaded = ckpt.load_model(folder)
    exp = loaded.config
    trained = objective(exp.train.objective)
    if trained.loss is None or not trained.has_kl:  # a VAE objective, not the autoencoder or a family kind
        raise ValueError(f"{folder} is a {exp.train.objective} model: a beta sweep point needs a VAE objective")
    dataset = get_dataset(exp.train.dataset, exp.train.data_root, exp.model.image_size, exp.model.channels)
    figures = card_figures.figures(loaded.model, dataset, exp, recon_samples, seed + 1)  # evaluate's images and seed
    scored = mig(FactorCodes(dataset, representation_from_model(loaded.model), cache=False), seed)
    return {
        "beta": exp.train.beta,
        "recon": round(figures["recon"], 3),
        "kl": round(figures["kl"], 3),
        "active_dims": figures["active_dims"],
        "mig": round(scored["score"], 4),
        "mig_per_factor": dict(zip([dataset.factor_names[k] for k in dataset.varying_factors],
                                   [round(g, 4) for g in scored["per_factor"]])),
        "mig_protocol": {"protocol": scored["protocol"], "samples": scored["samples"], "seed": seed},
        "recon_samples": recon_samples,
        "objective": exp.train.objective,
        "dataset": dataset.name,
        "steps": loaded.card.get("steps"),
        "seed": exp.train.seed,
        "hardware": loaded.card.get("hardware"),
    }


def describe(points: list[dict]) -> str:
    """One sentence on how the points were made, from what they record (older files may record less)."""
    def common(key):
        values = {str(p.get(key)) for p in points}
        return values.pop() if len(values) == 1 and "None" not in values else None

    made = ", ".join(x for x in (common("dataset"), common("steps") and f"{int(common('steps')):,} steps",
                                 common("seed") and f"seed {common('seed')}", common("hardware")) if x)
    return (f"One β-VAE per β{' (' + made + ')' if made else ''}; reconstruction and KL on fresh images, MIG by "
            "the disentanglement_lib protocol. One seed per β: MIG moves from seed to seed, so read the trend "
            "rather than any one point.")


def shipped_points() -> tuple[list[dict], str | None]:
    """(the points of the first beta_sweep.json on the model folders' path, by beta; why it cannot be read, or
    None). No file: no points and no problem."""
    path = next((d / SWEEP_FILE for d in ckpt.model_dirs() if (d / SWEEP_FILE).is_file()), None)
    if path is None:
        return [], None
    try:
        points = sorted((p for p in json.loads(path.read_text()) if {"beta", "recon", "mig"} <= set(p)),
                        key=lambda p: float(p["beta"]))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return [], f"{path} cannot be read: {exc}"
    return points, None


def write_sweep(points: list[dict], path: Path) -> None:
    """The summary the app reads: a list of points sorted by beta, written atomically."""
    ckpt.atomic_write_json(path, sorted(points, key=lambda p: p["beta"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, help="where the sweep's models train")
    parser.add_argument("--out", type=Path, default=ckpt.PRETRAINED_DIR / SWEEP_FILE)
    parser.add_argument("--betas", type=float, nargs="+", default=list(SWEEP_BETAS))
    parser.add_argument("--no-train", action="store_true", help="summarise the folders already trained")
    parser.add_argument("--recon-samples", type=int, default=RECON_SAMPLES)
    args = parser.parse_args(argv)
    points = []
    for beta in args.betas:
        folder = run_folder(args.runs_dir, beta)
        if not args.no_train:
            print(f"== beta {beta:g}: {SWEEP_SETTINGS} --beta {beta:g}", flush=True)
            subprocess.run(train_command(beta, args.runs_dir), check=True)
        began = time.perf_counter()
        point = sweep_point(folder, args.recon_samples)
        print(f"beta {beta:g}: recon {point['recon']:.2f} nats/image, KL {point['kl']:.2f} nats, "
              f"MIG {point['mig']:.3f} ({time.perf_counter() - began:.0f} s)", flush=True)
        points.append(point)
    write_sweep(points, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
