"""FactorVAE: its terms against values worked by hand, the permutation, the training-only critic, and a short run
from the training command that resumes exactly and ships a folder the app opens as a VAE."""

import csv
import math
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from vae_core import checkpoints as ckpt
from vae_core.models.factorvae import Critic, FactorVAE, FactorVAEOptions, critic_network
from vae_core.models.vae import VAE
from vae_core.objectives import (
    critic_loss,
    critic_total_correlation,
    factor_vae_loss,
    gaussian_kl_per_dim,
    permute_dims,
    reconstruction_nll,
)
from vae_core.resume import TRAINING_ONLY

from .helpers import tiny_config

SMALL_CRITIC = {"critic_width": 16, "critic_layers": 2}


def test_permute_dims_shuffles_each_column_on_its_own():
    z = torch.arange(64 * 5, dtype=torch.float32).reshape(64, 5)  # every value distinct
    permuted = permute_dims(z, torch.Generator().manual_seed(0))
    for d in range(5):  # each column holds its own values, in another order
        assert torch.equal(permuted[:, d].sort().values, z[:, d])
        assert not torch.equal(permuted[:, d], z[:, d])
    rows = (permuted - z[0]) // 5  # the source row of each entry: the columns were not shuffled together
    assert not all(torch.equal(rows[:, 0], rows[:, d]) for d in range(1, 5))
    assert torch.equal(permute_dims(z, torch.Generator().manual_seed(0)), permuted)  # a function of the draw


def test_the_critics_total_correlation_is_the_papers_log_ratio_on_a_hand_case():
    # a fixed critic: logit 0 = z_0, logit 1 = 0.5, so D(z) = sigmoid(z_0 - 0.5)
    critic = nn.Linear(2, 2)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
        critic.bias.copy_(torch.tensor([0.0, 0.5]))
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    with torch.no_grad():
        logits = critic(z)
    d = torch.softmax(logits, 1)[:, 0]
    paper = torch.log(d / (1 - d)).mean()  # Kim & Mnih: TC ~ E_q(z)[log D(z) / (1 - D(z))]
    assert float(critic_total_correlation(logits)) == pytest.approx(float(paper), abs=1e-6)
    assert float(critic_total_correlation(logits)) == pytest.approx((1 + 0 - 1) / 3 - 0.5)  # by hand

    g = torch.Generator().manual_seed(1)
    x = (torch.rand(3, 1, 4, 4, generator=g) > 0.5).float()
    out, mu, logvar = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 2, generator=g), torch.zeros(3, 2)
    terms = factor_vae_loss(out, x, mu, logvar, logits, "bernoulli", gamma=10.0)
    recon = reconstruction_nll(out, x, "bernoulli").mean()
    kl = gaussian_kl_per_dim(mu, logvar).mean(0).sum()
    assert float(terms["tc"]) == pytest.approx(-0.5)
    assert float(terms["total"]) == pytest.approx(float(recon + kl + 10.0 * -0.5), rel=1e-6)
    half = factor_vae_loss(out, x, mu, logvar, logits, "bernoulli", gamma=10.0, beta=0.5)
    assert float(terms["total"] - half["total"]) == pytest.approx(0.5 * float(kl), rel=1e-5)


def test_the_critics_loss_is_its_cross_entropy_by_hand():
    undecided = torch.zeros(4, 2)
    assert float(critic_loss(undecided, undecided)) == pytest.approx(math.log(2))
    sure = critic_loss(torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]]))  # right on both, by a margin of 3
    assert float(sure) == pytest.approx(math.log1p(math.exp(-3)))
    wrong = critic_loss(torch.tensor([[0.0, 3.0]]), torch.tensor([[3.0, 0.0]]))
    assert float(wrong) == pytest.approx(math.log1p(math.exp(3)))


def test_the_critic_is_disentanglement_libs_mlp():
    net = critic_network(10, 1000, 6)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 1000)] + [(1000, 1000)] * 5 + [(1000, 2)]
    assert all(m.negative_slope == 0.2 for m in net if isinstance(m, nn.LeakyReLU))
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in linears)
    assert FactorVAEOptions() == FactorVAEOptions(tc_weight=10.0, critic_width=1000, critic_layers=6, critic_lr=1e-4)


def test_the_critic_stays_out_of_the_networks_weights():
    config = tiny_config(model={"kind": "factor-vae", "options": SMALL_CRITIC}, objective="factor-vae").model
    model = FactorVAE(config)
    model.critic_for(seed=0)
    plain = VAE(replace(config, kind="vae", options=None))
    assert model.state_dict().keys() == plain.state_dict().keys()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())
    assert model.training_state() and FactorVAE(config).training_state() == {}


def test_the_critics_state_round_trips_exactly():
    options = FactorVAEOptions(**SMALL_CRITIC)
    g = torch.Generator().manual_seed(3)
    a = Critic(3, options, seed=5, device=torch.device("cpu"))
    for _ in range(3):
        z = torch.randn(8, 3, generator=g)
        a.step(z, permute_dims(z, g))
    b = Critic(3, options, seed=99, device=torch.device("cpu"))
    b.load(a.state())
    z = torch.randn(8, 3, generator=g)
    assert torch.equal(a.step(z, permute_dims(z, torch.Generator().manual_seed(0))),
                       b.step(z, permute_dims(z, torch.Generator().manual_seed(0))))
    sa, sb = a.state(), b.state()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _weights(folder):
    return load_file(str(folder / ckpt.WEIGHTS_FILE))


@pytest.mark.slow  # a short CPU run from the command (make test-all); the terms are checked by hand above
def test_factor_vae_trains_from_the_command_resumes_exactly_and_ships_a_plain_vae(tmp_path):
    from vae_core.train import main as train_main
    from vae_core.train import train

    straight = tmp_path / "straight"
    assert train_main(["--out", str(straight), "--objective", "factor-vae", "--steps", "12", "--batch-size", "8",
                       "--log-every", "2", "--checkpoint-every", "4", "--latent-dim", "3", "--critic-width", "16",
                       "--critic-layers", "2", "--quiet"]) == 0
    exp = ckpt.load_config(straight)
    assert exp.model.kind == "factor-vae" and exp.model.options == FactorVAEOptions(**SMALL_CRITIC)
    with safe_open(str(straight / ckpt.RESUME_FILE), "pt") as f:  # the critic and its Adam, in the resume file only
        names = list(f.keys())
    assert any(k.startswith(TRAINING_ONLY + "opt.") for k in names)
    resumed = tmp_path / "resumed"
    train(exp, resumed, progress=False, stop_after=7)
    partial = _weights(resumed)
    train(exp, resumed, resume=True, progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert any(not torch.equal(partial[k], a[k]) for k in a)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logs = [list(csv.DictReader((folder / ckpt.LOG_FILE).open())) for folder in (straight, resumed)]
    for row in (*logs[0], *logs[1]):
        del row["elapsed_s"]
    assert logs[0] == logs[1] and logs[0][0]["tc"] != "" and logs[0][0]["disc"] != ""

    loaded = ckpt.load_model(straight)  # what the app opens: a VAE's weights, no critic
    plain = VAE(replace(exp.model, kind="vae", options=None))
    plain.load_state_dict(loaded.model.state_dict(), strict=True)
    assert loaded.model.critic is None and set(a) == set(plain.state_dict())
    assert loaded.card["steps"] == 12 and loaded.card["final"]["active_dims"] >= 0

    (straight / ckpt.RESUME_FILE).unlink()  # the critic is not shipped: no continuing from the weights alone
    with pytest.raises(ckpt.CheckpointError, match="resume file"):
        train(replace(exp, train=replace(exp.train, steps=14, optimizer_resets=(12,))), straight, resume=True,
              progress=False)
