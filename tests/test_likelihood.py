"""The importance-weighted bound (Burda et al. 2016): k = 1 is the ELBO, it rises with k towards log p(x)."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from vae_core.data import get_dataset
from vae_core.likelihood import dataset_bound, elbo_estimate, image_bounds, iwae_bound, log_weights
from vae_core.models.vae import VAE
from vae_core.objectives import reconstruction_nll
from vae_core.train import train

from .helpers import tiny_config


@pytest.fixture(scope="module")
def model_1d(tmp_path_factory):
    """A briefly trained 1-D-latent VAE of the digits, so log p(x) can be integrated on a grid."""
    folder = tmp_path_factory.mktemp("iwae")
    exp = tiny_config(image_size=32, latent_dim=1, steps=40, lr=2e-3)
    train(exp, folder, progress=False, dataset=get_dataset("digits"))
    from vae_core import checkpoints as ckpt

    return ckpt.load_model(folder).model.eval()


@pytest.fixture(scope="module")
def images():
    return torch.from_numpy(get_dataset("digits").sample(4, np.random.default_rng(3))[0])


@torch.inference_mode()
def exact_log_px(model, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log int p(x | z) N(z; 0, 1) dz by the trapezoid rule (1-D latent only): (B,).

    The grid joins a wide one over the prior with a fine one around the encoder's posterior, where a sharp
    true posterior puts its mass.
    """
    mu, logvar = model.encode(x)
    out = []
    for b, image in enumerate(x):
        sigma = float(torch.exp(0.5 * logvar[b, 0]))
        z = torch.cat([torch.linspace(-9, 9, 1801), torch.linspace(-12, 12, 2001) * sigma + mu[b, 0]]).sort().values
        nll = reconstruction_nll(model.decode(z[:, None]), image.expand(len(z), *image.shape), "bernoulli")
        log_f = (-nll + Normal(0, 1).log_prob(z)).double()
        dz = (z[1:] - z[:-1]).double()
        pair = torch.logaddexp(log_f[1:], log_f[:-1]) - math.log(2)
        out.append(torch.logsumexp(pair + torch.log(dz.clamp_min(1e-30)), 0))
    return torch.stack(out)


def test_with_k_1_it_is_the_elbo_of_the_same_sample(model_1d, images):
    log_w = log_weights(model_1d, images, 1, torch.Generator().manual_seed(7))
    with torch.inference_mode():
        mu, logvar = model_1d.encode(images)
        eps = torch.randn((len(images), 1, 1), generator=torch.Generator().manual_seed(7))[:, 0]
        z = mu + torch.exp(0.5 * logvar) * eps
        q = Normal(mu, torch.exp(0.5 * logvar))
        elbo = (-reconstruction_nll(model_1d.decode(z), images, "bernoulli")
                - (q.log_prob(z) - Normal(0, 1).log_prob(z)).sum(1))
    torch.testing.assert_close(iwae_bound(log_w), elbo, atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(elbo_estimate(log_w), elbo, atol=1e-3, rtol=1e-5)


def test_averaged_k_1_matches_the_closed_form_elbo(model_1d, images):
    bounds = image_bounds(model_1d, images.numpy(), k=1, seed=1, batch_size=1)
    many = image_bounds(model_1d, np.repeat(images.numpy(), 200, 0), k=1, seed=2)["iwae"].reshape(4, 200).mean(1)
    with torch.inference_mode():
        mu, logvar = model_1d.encode(images)
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1)
        gen = torch.Generator().manual_seed(0)
        recon = torch.stack([reconstruction_nll(model_1d.decode(model_1d.reparameterize(mu, logvar, gen)), images,
                                                "bernoulli") for _ in range(200)]).mean(0)
    np.testing.assert_allclose(many, (-recon - kl).numpy(), rtol=0.01)
    assert bounds["iwae"].shape == (4,) and np.allclose(bounds["iwae"], bounds["elbo"])


def test_it_rises_with_k_and_stays_below_log_px(model_1d, images):
    exact = exact_log_px(model_1d, images).numpy()
    means, errors = {}, {}
    for k in (1, 10, 100, 1000):
        runs = np.stack([image_bounds(model_1d, images.numpy(), k=k, seed=s)["iwae"] for s in range(10)])
        means[k] = runs.mean(0)
        errors[k] = runs.mean(1).std(ddof=1) / math.sqrt(len(runs))  # standard error of the image average
    ks = sorted(means)
    for small, large in itertools.pairwise(ks):  # on average it does not decrease, up to Monte-Carlo error
        tolerance = 3 * math.hypot(errors[small], errors[large]) + 1e-4
        assert means[large].mean() >= means[small].mean() - tolerance, (small, large, means, errors)
    assert means[1000].mean() > means[1].mean() + 4 * math.hypot(errors[1], errors[1000])  # it does rise
    assert (means[1] < exact).all() and (means[1000] <= exact + 0.02).all(), (means, exact)
    gap_1, gap_1000 = (exact - means[1]).mean(), (exact - means[1000]).mean()
    assert gap_1000 < 0.25 * gap_1 + 0.05, (gap_1, gap_1000)  # most of the ELBO's gap is closed


def test_dataset_bound_records_k_and_the_sample_count(model_1d):
    figures = dataset_bound(model_1d, get_dataset("digits"), k=4, n=10, seed=3)
    assert (figures["k"], figures["samples"], figures["seed"]) == (4, 10, 3)
    assert figures["nll_nats_per_image"] == pytest.approx(-figures["iwae"])
    assert figures["iwae"] >= figures["elbo_same_samples"] and figures["stderr"] > 0
    again = dataset_bound(model_1d, get_dataset("digits"), k=4, n=10, seed=3)
    assert again["iwae"] == figures["iwae"]


def test_k_must_be_positive(model_1d, images):
    with pytest.raises(ValueError, match="k >= 1"):
        log_weights(model_1d, images, 0)


def test_a_shapes_error_names_the_expected_input():
    model = VAE(tiny_config(image_size=64, latent_dim=2).model)
    with pytest.raises(ValueError, match="takes images of shape"):
        image_bounds(model, np.zeros((2, 1, 32, 32), np.float32), k=2)


def test_evaluate_records_the_bound_on_the_card(tmp_path, capsys):
    from vae_core import checkpoints as ckpt
    from vae_core.evaluate import main

    folder = tmp_path / "digits-tiny"
    train(tiny_config(image_size=32, latent_dim=3, steps=4, dataset="digits"), folder, progress=False, dataset=get_dataset("digits"))
    assert main([str(folder), "--no-projection", "--no-metrics", "--recon-samples", "64", "--iwae-k", "8",
                 "--iwae-samples", "40"]) == 0
    card = ckpt.read_card(folder)["iwae"]
    assert (card["k"], card["samples"]) == (8, 40) and card["nll_nats_per_image"] > 0
    assert card["iwae"] >= card["elbo_same_samples"]
    assert "-IWAE (nats/image)" in capsys.readouterr().out

    ae = tmp_path / "digits-ae"
    train(tiny_config(image_size=32, objective="ae", steps=2, dataset="digits"), ae, progress=False, dataset=get_dataset("digits"))
    assert main([str(ae), "--no-projection", "--no-metrics", "--recon-samples", "16", "--iwae-k", "2"]) == 0
    assert "no posterior variance" in ckpt.read_card(ae)["iwae"]["unavailable"]


def test_a_conditional_bound_gives_both_networks_each_images_condition():
    from vae_core.config import ModelConfig
    from vae_core.models.cvae import CVAE
    from vae_core.objectives import gaussian_log_density

    torch.manual_seed(0)
    cvae = CVAE(ModelConfig(image_size=64, conv_channels=(4, 4, 8, 8), hidden_dim=16, latent_dim=3, kind="cvae",
                            options={"condition": "shape", "condition_names": ("a", "b", "c")})).eval()
    x = torch.rand(4, 1, 64, 64).round()
    c = torch.tensor([0, 1, 2, 1])
    log_w = log_weights(cvae, x, 5, torch.Generator().manual_seed(3), condition=c, chunk=7)
    with torch.inference_mode():  # by hand: z ~ q(z | x, c), decoded under c
        mu, logvar = cvae.encode(x, c)
        z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * torch.randn((4, 5, 3),
                                                                          generator=torch.Generator().manual_seed(3))
        expected = torch.stack([
            -reconstruction_nll(cvae.decode(z[b], int(c[b])), x[b].expand(5, 1, 64, 64), "bernoulli")
            + gaussian_log_density(z[b], torch.zeros_like(z[b]), torch.zeros_like(z[b])).sum(-1)
            - gaussian_log_density(z[b], mu[b], logvar[b]).sum(-1) for b in range(4)])
    assert torch.allclose(log_w, expected, atol=1e-4)
    wrong = log_weights(cvae, x, 5, torch.Generator().manual_seed(3), condition=(c + 1) % 3)
    assert not torch.equal(log_w, wrong)  # (an untrained network leans on the condition only a little)
    figures = dataset_bound(cvae, get_dataset("dsprites"), k=3, n=6, seed=1, condition="shape")
    assert "given the true shape" in figures["method"] and figures["samples"] == 6
