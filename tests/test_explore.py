"""vae_core.explore: the model maths behind the app's pages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_core.data import DSprites
from vae_core.explore import (
    decode,
    dim_order,
    elbo_terms,
    error_floor,
    percentile_rank,
    prior_sample,
    slider_limits,
    traversal_images,
    upscale_factor,
)
from vae_core.latent import traversal_values
from vae_core.models.vae import VAE
from vae_core.objectives import gaussian_kl_per_dim, reconstruction_nll

from .helpers import tiny_config


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VAE(tiny_config().model).eval()


def test_elbo_terms_match_the_objectives(model):
    images = DSprites().sample(5, np.random.default_rng(0))[0]
    terms = elbo_terms(model, images, batch_size=2)  # batches join up
    x = torch.from_numpy(images)
    mu, logvar = model.encode(x)
    expected = reconstruction_nll(model.decode(mu), x, "bernoulli").detach().numpy()
    np.testing.assert_allclose(terms["recon"], expected, rtol=1e-5)
    np.testing.assert_allclose(terms["kl"], gaussian_kl_per_dim(mu, logvar).sum(1).detach().numpy(), rtol=1e-5)
    assert terms["reconstruction"].shape == images.shape and terms["mu"].shape == (5, 4)
    assert not any(p.grad is not None for p in model.parameters())


def test_decode_and_traversal_images(model):
    z = prior_sample(4, seed=3)
    np.testing.assert_array_equal(z, prior_sample(4, seed=3))
    assert decode(model, z).shape == (1, 1, 64, 64)
    values = traversal_values(3, "prior", latent_dim=4)
    grid = traversal_images(model, z, values, [2, 0])
    assert grid.shape == (6, 1, 64, 64)
    moved = z.copy()
    moved[0] = values[0, 2].item()
    np.testing.assert_allclose(grid[5], decode(model, moved)[0], atol=1e-6)  # row 2 sweeps z0, last step


def test_percentile_rank():
    ref = np.arange(100.0)
    assert percentile_rank(49.5, ref) == 50.0
    assert percentile_rank(1000, ref) == 100.0 and percentile_rank(-1, ref) == 0.0
    assert percentile_rank(10.0, ref) == pytest.approx(10.5)  # ties count half
    assert np.isnan(percentile_rank(1.0, np.array([])))


def test_slider_limits_hold_the_data():
    assert list(slider_limits(None, 3)) == [4.0, 4.0, 4.0]
    limits = slider_limits(np.array([[0.5, -7.2], [1.0, 2.0]]), 2)
    assert limits[0] == 4.0 and limits[1] >= 7.2 and limits[1] == int(limits[1])


def test_dim_order_by_kl():
    order, active = dim_order(np.array([0.5, 0.001, 2.0]), 3)
    assert order == [2, 0, 1] and list(active) == [True, False, True]
    order, active = dim_order(None, 2)
    assert order == [0, 1] and active.all()


def test_upscale_factor():
    assert upscale_factor(64, 384) == 6 and upscale_factor(32, 384) == 12 and upscale_factor(500, 100) == 1


def test_class_vectors_move_a_point_by_the_difference_of_class_means():
    """Labelled data has no twins: its attribute vectors are class means, and their fit is the share of points
    whose nearest class mean is their own."""
    from vae_core.latent import class_fit, class_means, nearest_class, toward_classes

    means = np.array([[0.0, 0.0], [0.2, 0.0], [4.0, 0.0], [4.2, 0.0], [0.0, 3.0], [2.8, 0.0]])
    labels = np.array([0, 0, 1, 1, 2, 0])
    centres = class_means(means, labels, 4)
    np.testing.assert_allclose(centres[:3], [[1.0, 0], [4.1, 0], [0, 3]])
    assert np.isnan(centres[3]).all()  # a class without points
    z = np.array([0.5, 0.5])
    moved = toward_classes(z, centres)
    assert nearest_class(z, centres)[0] == 0
    np.testing.assert_allclose(moved[0], z, atol=1e-6)  # its own class: it stays
    np.testing.assert_allclose(moved[1], z + centres[1] - centres[0], atol=1e-6)
    np.testing.assert_allclose(moved[3], z, atol=1e-6)  # no points: no vector
    assert class_fit(means, labels, centres) == 5 / 6  # [2.8, 0] is nearer class 1's mean than its own


def test_a_drawings_outline_allowance_comes_off_its_error_before_the_comparison():
    from vae_core.explore import DRAWING_ALLOWANCE, near_data_factor

    image = np.zeros((1, 64, 64), np.float32)  # black and white: no floor, every nat is the model's
    neighbours, their_errors = np.zeros((4, 1, 64, 64), np.float32), np.array([10.0, 20.0, 30.0, 40.0])
    allowance = DRAWING_ALLOWANCE * image.size  # 102.4 nats for a 64 x 64 grey image
    assert near_data_factor(image, allowance, neighbours, their_errors, "bernoulli") == 0.0
    assert near_data_factor(image, allowance + 250.0, neighbours, their_errors, "bernoulli") == pytest.approx(10.0, rel=1e-3)
    colour = np.full((3, 64, 64), 0.5, np.float32)  # a grey level's own uncertainty is no model's error
    floor = float(error_floor(colour[None], "bernoulli")[0])
    neighbours = np.repeat(colour[None], 4, 0)
    assert floor > 0 and near_data_factor(colour, floor + DRAWING_ALLOWANCE * colour.size + 125.0, neighbours,
                                          floor + their_errors, "bernoulli") == pytest.approx(5.0, rel=1e-3)
