import math

import numpy as np
import pytest
import torch

from vae_core import kinds
from vae_core.config import ModelConfig, TrainConfig
from vae_core.objectives import (
    beta_tcvae_loss,
    beta_vae_loss,
    capacity_at,
    compute_loss,
    gaussian_kl_per_dim,
    kl_weight,
    reconstruction_nll,
)


def test_kl_is_zero_for_the_prior_and_matches_a_hand_value():
    assert torch.equal(gaussian_kl_per_dim(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3, 5))
    kl = gaussian_kl_per_dim(torch.tensor([[1.0]]), torch.tensor([[math.log(4.0)]]))
    assert kl.item() == pytest.approx(0.5 * (4 + 1 - 1 - math.log(4)))


def test_bernoulli_nll_is_summed_binary_cross_entropy():
    x = torch.tensor([[[[1.0, 0.0]]]])
    logits = torch.tensor([[[[0.0, 0.0]]]])
    assert reconstruction_nll(logits, x, "bernoulli").item() == pytest.approx(2 * math.log(2))


def test_gaussian_nll_is_smallest_at_the_data():
    x = torch.full((1, 1, 2, 2), 0.25)
    at_data = reconstruction_nll(torch.logit(x), x, "gaussian", 0.1)
    off = reconstruction_nll(torch.logit(x + 0.2), x, "gaussian", 0.1)
    assert at_data < off


def test_beta_weights_only_the_kl():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 1, 8, 8, generator=g) > 0.5).float()
    logits, mu, logvar = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 3)
    one = beta_vae_loss(logits, x, mu, logvar, "bernoulli", beta=1.0)
    four = beta_vae_loss(logits, x, mu, logvar, "bernoulli", beta=4.0)
    assert torch.allclose(four["total"] - one["total"], 3 * one["kl"])
    assert torch.allclose(one["kl_per_dim"].sum(), one["kl"])


def test_free_bits_floor_each_dimension():
    x = torch.zeros(2, 1, 4, 4)
    logits = torch.full((2, 1, 4, 4), -5.0)
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)  # KL exactly zero in every dimension
    terms = beta_vae_loss(logits, x, mu, logvar, "bernoulli", beta=1.0, free_bits=0.5)
    assert terms["kl"].item() == 0
    assert (terms["total"] - terms["recon"]).item() == pytest.approx(1.5)


def test_schedules():
    assert kl_weight(0, warmup_steps=100) == 0 and kl_weight(50, warmup_steps=100) == 0.5
    assert kl_weight(500, warmup_steps=100) == 1
    # 4 cycles over 400 steps: rises over 50 steps, holds for 50
    assert [kl_weight(s, cycles=4, total_steps=400) for s in (0, 25, 50, 99, 100)] == [0, 0.5, 1, 1, 0]
    assert capacity_at(0, 25, 1000) == 0 and capacity_at(500, 25, 1000) == 12.5 and capacity_at(5000, 25, 1000) == 25


def test_tcvae_decomposition_sums_to_the_sampled_kl_estimate():
    """mi + tc + dwkl = E[log q(z|x) - log p(z)], whatever the estimator of q(z)."""
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(16, 4, generator=g), 0.3 * torch.randn(16, 4, generator=g)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(16, 4, generator=g)
    x = torch.zeros(16, 1, 4, 4)
    t = beta_tcvae_loss(torch.zeros(16, 1, 4, 4), x, z, mu, logvar, "bernoulli", dataset_size=1000, beta=1.0)
    log_q = (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).sum(1)
    log_p = (-0.5 * (math.log(2 * math.pi) + z**2)).sum(1)
    assert (t["mi"] + t["tc"] + t["dwkl"]).item() == pytest.approx((log_q - log_p).mean().item(), rel=1e-4)
    assert t["tc"].item() > -1e-4  # total correlation estimate is non-negative here up to estimator noise
    heavier = beta_tcvae_loss(torch.zeros(16, 1, 4, 4), x, z, mu, logvar, "bernoulli", 1000, beta=6.0)
    assert (heavier["total"] - t["total"]).item() == pytest.approx(5 * t["tc"].item(), rel=1e-4)


@pytest.mark.parametrize("objective, own_terms", [("ae", set()), ("vae", set()), ("beta-vae", set()),
                                                  ("capacity-vae", set()), ("beta-tcvae", {"mi", "tc", "dwkl"})])
def test_every_objective_returns_named_finite_terms(objective, own_terms):
    g = torch.Generator().manual_seed(2)
    outputs = {"mu": torch.randn(8, 3, generator=g), "logvar": torch.randn(8, 3, generator=g) * 0.1,
               "z": torch.randn(8, 3, generator=g), "logits": torch.randn(8, 1, 16, 16, generator=g)}
    x = (torch.rand(8, 1, 16, 16, generator=g) > 0.5).float()
    terms = compute_loss(outputs, x, ModelConfig(), TrainConfig(objective=objective, beta=4.0), 10, 737280)
    for key in ("recon", "kl", "kl_per_dim", "total"):
        assert torch.isfinite(terms[key]).all(), key
    assert terms["kl_per_dim"].shape == (3,)
    if kinds.objective(objective).autoencoder:
        assert terms["total"] == terms["recon"]
    assert own_terms <= set(terms)


def test_dip_vae_regularises_the_covariance_of_the_means_as_written_by_hand():
    """Kumar et al. 2018, as disentanglement_lib computes it, on two latents and three images."""
    from vae_core.objectives import covariance, dip_regulariser, dip_vae_loss

    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0], [2.0, 1.0]])
    # means (1, 1); E[z z^T] = [[5/3, 2/3], [2/3, 5/3]]; covariance = [[2/3, -1/3], [-1/3, 2/3]]
    cov = covariance(mu)
    torch.testing.assert_close(cov, torch.tensor([[2 / 3, -1 / 3], [-1 / 3, 2 / 3]]))
    # off-diagonal: 2 * (1/3)^2 = 2/9; diagonal: 2 * (2/3 - 1)^2 = 2/9
    assert float(dip_regulariser(cov, 10.0, 100.0)) == pytest.approx(10 * 2 / 9 + 100 * 2 / 9)
    logvar = torch.log(torch.tensor([[0.5, 1.0], [0.5, 1.0], [0.5, 1.0]]))
    x = torch.full((3, 1, 2, 2), 0.5)
    logits = torch.zeros(3, 1, 2, 2)
    one = dip_vae_loss(logits, x, mu, logvar, "bernoulli", "i", 10.0, 100.0)
    two = dip_vae_loss(logits, x, mu, logvar, "bernoulli", "ii", 10.0, 10.0)
    assert float(one["dip"]) == pytest.approx(10 * 2 / 9 + 100 * 2 / 9, rel=1e-5)
    # II: the diagonal gains the mean variances (0.5, 1): 2/3 + 0.5 = 7/6 and 5/3: (1/6)^2 + (2/3)^2
    assert float(two["dip"]) == pytest.approx(10 * 2 / 9 + 10 * ((1 / 6) ** 2 + (2 / 3) ** 2), rel=1e-5)
    assert float(one["total"]) == pytest.approx(float(one["recon"] + one["kl"] + one["dip"]), rel=1e-6)


def test_the_mmd_is_zero_for_the_same_samples_and_as_written_by_hand():
    from vae_core.objectives import gaussian_kernel, info_vae_loss, mmd

    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert float(mmd(a, a)) == pytest.approx(0.0, abs=1e-7)
    b = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    # k = exp(-mean_d (a - b)^2 / D), D = 2
    k = lambda u, v: np.exp(-np.mean((np.array(u) - np.array(v)) ** 2) / 2)
    aa = (k([0, 0], [0, 0]) + 2 * k([0, 0], [1, 1]) + k([1, 1], [1, 1])) / 4
    bb = (k([0, 0], [0, 0]) + 2 * k([0, 0], [0, 2]) + k([0, 2], [0, 2])) / 4
    ab = (k([0, 0], [0, 0]) + k([0, 0], [0, 2]) + k([1, 1], [0, 0]) + k([1, 1], [0, 2])) / 4
    assert float(gaussian_kernel(a, b)[1, 1]) == pytest.approx(k([1, 1], [0, 2]))
    assert float(mmd(a, b)) == pytest.approx(aa + bb - 2 * ab, rel=1e-5)
    x, logits = torch.full((2, 1, 2, 2), 0.5), torch.zeros(2, 1, 2, 2)
    terms = info_vae_loss(logits, x, a, a, torch.zeros_like(a), "bernoulli", 0.0, 1000.0, b)
    assert float(terms["total"]) == pytest.approx(float(terms["recon"]) + 1000 * (aa + bb - 2 * ab), rel=1e-5)


@pytest.mark.slow  # a short CPU run of each (make test-all); their terms are checked by hand above
@pytest.mark.parametrize("objective", ["dip-vae-i", "dip-vae-ii", "info-vae"])
def test_the_new_objectives_train_a_tiny_model_from_the_command(objective, tmp_path):
    from vae_core.train import main as train_main

    out = tmp_path / objective
    assert train_main(["--out", str(out), "--objective", objective, "--steps", "4", "--batch-size", "8",
                       "--log-every", "2", "--latent-dim", "3", "--quiet"]) == 0
    from vae_core import checkpoints as ckpt

    loaded = ckpt.load_model(out)
    assert loaded.config.train.objective == objective and loaded.card["steps"] == 4
