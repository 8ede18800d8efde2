"""The beta sweep: its recipe, its points and the summary that ships in pretrained/."""

import dataclasses
import json
import shlex

import numpy as np
import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core.data import get_dataset
from vae_core.evaluate import evaluate_folder
from vae_core.metrics import FactorCodes, mig, representation_from_model
from vae_core.models.vae import VAE
from vae_core.sweep import (
    SWEEP_BETAS,
    SWEEP_FILE,
    SWEEP_OBJECTIVE,
    SWEEP_SETTINGS,
    describe,
    main,
    sweep_point,
    train_command,
)
from vae_core.train import build_parser, config_from_args

from .helpers import tiny_config

SHIPPED = ckpt.PRETRAINED_DIR / SWEEP_FILE


def _folder(root, name, objective="beta-vae", beta=4.0, seed=0):
    torch.manual_seed(seed)
    exp = tiny_config(objective=objective, beta=beta)
    model = VAE(exp.model).eval()
    ckpt.save_model(root / name, model, exp, {"objective": objective, "steps": 10, "hardware": "test"})
    return root / name


@pytest.mark.parametrize("beta", SWEEP_BETAS)
def test_every_beta_is_a_valid_training_command(beta, tmp_path):
    command = train_command(beta, tmp_path)
    args = build_parser().parse_args(command[3:])
    exp = config_from_args(args, get_dataset(args.dataset))
    assert exp.train.beta == beta and exp.train.objective == SWEEP_OBJECTIVE and "--resume" in command
    assert args.out.endswith(f"beta-{beta:g}")


def test_a_point_measures_what_evaluate_and_the_metric_suite_measure(tmp_path):
    folder = _folder(tmp_path, "b4", beta=4.0)
    point = sweep_point(folder, recon_samples=256)
    card = evaluate_folder(folder, metrics=False, projection=False, recon_samples=256, iwae_k=0, log=lambda *_: None)
    assert point["recon"] == pytest.approx(card["evaluation"]["recon"], abs=1e-3)
    assert point["kl"] == pytest.approx(card["evaluation"]["kl"], abs=1e-3)
    loaded = ckpt.load_model(folder)
    dataset = get_dataset("dsprites")
    expected = mig(FactorCodes(dataset, representation_from_model(loaded.model), cache=False), 0)
    assert point["mig"] == pytest.approx(expected["score"], abs=1e-4)
    assert list(point["mig_per_factor"]) == [dataset.factor_names[k] for k in dataset.varying_factors]
    assert point["beta"] == 4.0 and point["steps"] == 10 and point["hardware"] == "test"


def test_an_autoencoder_is_no_sweep_point(tmp_path):
    with pytest.raises(ValueError, match="needs a VAE objective"):
        sweep_point(_folder(tmp_path, "ae", objective="ae", beta=0.0), recon_samples=64)


def test_the_summary_is_sorted_by_beta_and_readable_by_the_app(tmp_path):
    for beta in (8, 2):
        _folder(tmp_path / "runs", f"beta-{beta}", beta=float(beta), seed=beta)
    out = tmp_path / "beta_sweep.json"
    assert main(["--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--betas", "8", "2", "--no-train",
                 "--recon-samples", "64"]) == 0
    points = json.loads(out.read_text())
    assert [p["beta"] for p in points] == [2.0, 8.0]
    assert all({"beta", "recon", "mig"} <= set(p) for p in points)  # what the Disentanglement page plots


def test_the_shipped_sweep_shows_the_trade_off():
    """Every beta of the recipe, trained alike; more beta costs reconstruction and buys a smaller KL."""
    points = json.loads(SHIPPED.read_text())
    assert [p["beta"] for p in points] == list(SWEEP_BETAS)
    steps = int(shlex.split(SWEEP_SETTINGS)[shlex.split(SWEEP_SETTINGS).index("--steps") + 1])
    assert {p["steps"] for p in points} == {steps} and {p["seed"] for p in points} == {0}
    recon, kl = np.array([p["recon"] for p in points]), np.array([p["kl"] for p in points])
    assert np.all(np.diff(recon) > 0) and np.all(np.diff(kl) < 0)
    assert all(0.0 <= p["mig"] <= 1.0 for p in points)
    assert points[-1]["mig"] > points[0]["mig"]  # beta 16 disentangles more than beta 1


def test_the_sweep_trains_the_zoo_beta_vae_but_for_its_steps():
    """The sweep's models are the zoo's architecture: only beta differs from dsprites-beta-vae."""
    args = build_parser().parse_args([*shlex.split(SWEEP_SETTINGS), "--out", "x"])
    exp = config_from_args(args, get_dataset("dsprites"))
    zoo_args = build_parser().parse_args(["--dataset", "dsprites", "--objective", "beta-vae", "--out", "y"])
    zoo = config_from_args(zoo_args, get_dataset("dsprites"))
    assert exp.model == zoo.model
    assert dataclasses.replace(exp.train, steps=zoo.train.steps) == zoo.train


def test_the_caption_says_how_the_points_were_made_and_what_is_unknown():
    points = [{"beta": b, "recon": 1.0, "mig": 0.1, "dataset": "dsprites", "steps": 26000, "seed": 0} for b in (1, 4)]
    assert "(dsprites, 26,000 steps, seed 0)" in describe(points)
    points[1]["steps"] = 9000  # the points disagree: the caption claims no step count
    assert "steps" not in describe(points) and "(dsprites, seed 0)" in describe(points)
    assert describe([{"beta": 1, "recon": 1.0, "mig": 0.1}]).startswith("One β-VAE per β;")
