"""Denoising and sparse autoencoders: input corruption, the L1 code penalty, and what training them achieves."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core.config import ConfigError, TrainConfig
from vae_core.corruption import code_sparsity, corrupt, corrupt_array
from vae_core.data import get_dataset
from vae_core.explore import elbo_terms
from vae_core.models.vae import VAE
from vae_core.train import main, train

from .helpers import tiny_config

NOISE = 0.4


def _mse(a, b) -> float:
    return float(((np.asarray(a) - np.asarray(b)) ** 2).mean())


def _train_ae(folder, steps: int, **train_kw):
    """A small digits autoencoder (a little wider than the tiny config, so it learns in a few hundred steps)."""
    exp = tiny_config(image_size=32, latent_dim=10, objective="ae", steps=steps, batch_size=32, lr=2e-3,
                      log_every=50, checkpoint_every=10_000, **train_kw)
    exp = replace(exp, model=replace(exp.model, conv_channels=(8, 8, 16, 16), hidden_dim=64))
    train(exp, folder, progress=False, dataset=get_dataset("digits"))
    return ckpt.load_model(folder).model.eval()


@pytest.fixture(scope="module")
def digits_sample():
    return get_dataset("digits").sample(256, np.random.default_rng(11))[0]


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dae")
    return {
        "plain": _train_ae(root / "plain", 300),
        "sparse": _train_ae(root / "sparse", 300, l1=0.5),
        "denoising": _train_ae(root / "denoising", 300, corruption="gaussian", corruption_level=NOISE),
    }


def test_gaussian_noise_has_its_std_and_stays_in_range():
    x = torch.full((4, 1, 32, 32), 0.5)
    noisy = corrupt(x, "gaussian", 0.1, torch.Generator().manual_seed(0))
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.05)
    again = corrupt(x, "gaussian", 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)


def test_masking_drops_that_fraction_of_whole_pixels():
    x = torch.rand((8, 3, 32, 32), generator=torch.Generator().manual_seed(1)) + 0.1
    masked = corrupt(x, "mask", 0.3, torch.Generator().manual_seed(2))
    dropped = masked == 0
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.02)
    assert (dropped.all(1) == dropped.any(1)).all()  # a pixel loses all its channels together
    assert torch.equal(masked[~dropped], x[~dropped])
    assert torch.equal(corrupt(x, "none", 0.0), x) and torch.equal(corrupt(x, "mask", 0.0), x)


def test_bad_corruption_is_refused_with_the_choices():
    x = torch.zeros((1, 1, 32, 32))
    with pytest.raises(ValueError, match="none, gaussian, mask"):
        corrupt(x, "salt", 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(x, "mask", 1.5)
    with pytest.raises(ConfigError, match="objective 'ae'"):
        TrainConfig(objective="vae", corruption="mask", corruption_level=0.5)
    with pytest.raises(ConfigError, match="objective 'ae'"):
        TrainConfig(objective="beta-vae", l1=0.1)
    with pytest.raises(ConfigError, match="corruption_level above 0"):
        TrainConfig(objective="ae", corruption="gaussian")
    with pytest.raises(ConfigError, match="corruption_level"):
        TrainConfig(objective="ae", corruption="mask", corruption_level=2.0)


def test_training_feeds_the_corrupted_batch_and_scores_against_the_clean_one(tmp_path, monkeypatch):
    seen = []
    forward = VAE.forward

    def spy(self, x, generator=None, sample=True):
        seen.append(x.detach().clone())
        return forward(self, x, generator, sample)

    targets = []
    from vae_core import train as train_module

    compute_loss = train_module.compute_loss

    def loss_spy(outputs, x, *args):
        targets.append(x.detach().clone())
        return compute_loss(outputs, x, *args)

    monkeypatch.setattr(VAE, "forward", spy)
    monkeypatch.setattr(train_module, "compute_loss", loss_spy)
    dataset = get_dataset("digits")
    exp = tiny_config(image_size=32, objective="ae", steps=2, corruption="mask", corruption_level=0.5)
    train(exp, tmp_path / "m", progress=False, dataset=dataset)
    from vae_core.train import batch_for_step

    clean = batch_for_step(dataset, exp.train.batch_size, exp.train.seed, 0, 0)
    assert seen[0].shape == clean.shape and not torch.equal(seen[0], clean)
    assert torch.equal(targets[0], clean)
    kept = seen[0] != 0
    assert torch.equal(seen[0][kept], clean[kept])  # masked pixels only
    assert (clean[~kept] > 0).any()  # and some ink was masked out


def test_the_command_line_records_the_options(tmp_path):
    out = tmp_path / "dae"
    status = main(["--dataset", "digits", "--objective", "ae", "--corruption", "gaussian", "--corruption-level",
                   "0.3", "--l1", "0.01", "--steps", "2", "--batch-size", "4", "--out", str(out), "--quiet"])
    assert status == 0
    t = ckpt.load_config(out).train
    assert (t.corruption, t.corruption_level, t.l1) == ("gaussian", 0.3, 0.01)
    assert ckpt.read_card(out)["schedule"]["corruption"] == "gaussian"


def test_the_denoising_model_cleans_a_noisy_input(short_runs, digits_sample):
    noisy = corrupt_array(digits_sample, "gaussian", NOISE, seed=5)
    cleaned = elbo_terms(short_runs["denoising"], noisy)["reconstruction"]
    assert _mse(cleaned, digits_sample) < 0.5 * _mse(noisy, digits_sample)


def test_the_sparse_code_has_more_near_zero_entries(short_runs, digits_sample):
    plain = elbo_terms(short_runs["plain"], digits_sample)["mu"]
    sparse = elbo_terms(short_runs["sparse"], digits_sample)["mu"]
    assert code_sparsity(sparse) > code_sparsity(plain) + 0.1
    # not merely a smaller code: the measure is relative to each image's largest entry
    assert code_sparsity(plain * 0.01) == code_sparsity(plain)


@pytest.mark.slow
def test_denoising_training_beats_a_plain_autoencoder_on_noisy_inputs(tmp_path, digits_sample):
    plain = _train_ae(tmp_path / "plain", 1500)
    denoising = _train_ae(tmp_path / "denoising", 1500, corruption="gaussian", corruption_level=0.5)
    noisy = corrupt_array(digits_sample, "gaussian", 0.5, seed=5)
    err_plain = _mse(elbo_terms(plain, noisy)["reconstruction"], digits_sample)
    err_denoising = _mse(elbo_terms(denoising, noisy)["reconstruction"], digits_sample)
    assert err_denoising < 0.8 * err_plain


@pytest.mark.parametrize("args, message", [
    (["--objective", "vae", "--l1", "0.1"], "objective 'ae'"),
    (["--objective", "ae", "--corruption", "mask", "--corruption-level", "1.5"], "corruption_level=1.5"),
    (["--objective", "ae", "--corruption", "blur", "--corruption-level", "0.2"], "invalid choice: 'blur'"),
])
def test_bad_options_exit_with_a_clear_message(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", *args, "--steps", "1", "--out", str(tmp_path / "m")])
    assert message in capsys.readouterr().err
