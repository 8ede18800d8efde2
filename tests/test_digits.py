"""Real handwritten digits shipped inside scikit-learn, and the learned-manifold figure of a 2-D latent."""

import socket

import numpy as np
import pytest
import torch
from scipy.stats import norm

from vae_core.data import dataset_names, get_dataset
from vae_core.manifold import grid_position, manifold_grid, manifold_latents
from vae_core.models.vae import VAE

from .helpers import tiny_config


def test_digits_load_with_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the digits tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    ds = get_dataset("digits")
    assert "digits" in dataset_names()
    assert ds.num_images == 1797 and ds.images.shape == (1797, 1, 32, 32) and ds.images.dtype == np.float32
    assert (ds.channels, ds.image_size) == (1, 32)
    assert sorted(np.unique(ds.labels).tolist()) == list(range(10)) and len(ds.label_names) == 10
    assert 0 <= ds.images.min() and ds.images.max() == pytest.approx(1.0)
    # the digit sits in the middle three quarters with an empty border, as in padded MNIST
    assert (ds.images[:, :, :4].max(), ds.images[:, :, :, -4:].max()) == (0.0, 0.0)
    assert ds.images[:, :, 4:28, 4:28].mean() > 0.2
    images, labels = ds.sample(6, np.random.default_rng(0))
    assert images.shape == (6, 1, 32, 32) and labels.shape == (6,)


def test_digits_keep_their_identity_when_enlarged():
    from sklearn.datasets import load_digits

    raw = load_digits()
    ds = get_dataset("digits", image_size=64)
    assert ds.images.shape == (1797, 1, 64, 64)
    # shrinking the 48x48 digit back to 8x8 gives the original grey levels
    inner = torch.from_numpy(ds.images[:50, :, 8:56, 8:56])
    back = torch.nn.functional.avg_pool2d(inner, 6).numpy()[:, 0] * 16
    assert np.abs(back - raw.images[:50]).mean() < 1.5
    assert ds.labels[:50].tolist() == raw.target[:50].tolist()


def test_manifold_latents_sit_at_the_prior_quantiles():
    grid = manifold_latents(5)
    assert grid.shape == (5, 5, 2)
    q = (np.arange(5) + 0.5) / 5
    np.testing.assert_allclose(grid[0, :, 0], norm.ppf(q), atol=1e-6)  # z_0 rises left to right
    np.testing.assert_allclose(grid[:, 0, 1], norm.ppf(q)[::-1], atol=1e-6)  # z_1 rises bottom to top
    assert (grid[:, :, 0] == grid[0, :, 0]).all() and (grid[:, :, 1].T == grid[:, 0, 1]).all()
    for bad in (1, 0, 41, 2.5, True):
        with pytest.raises(ValueError, match="cells per side"):
            manifold_latents(bad)


@pytest.mark.parametrize("n", [3, 12])
def test_manifold_grid_has_the_requested_shape(n):
    model = VAE(tiny_config(image_size=32, latent_dim=2).model).eval()
    images, latents = manifold_grid(model, n)
    assert images.shape == (n * n, 1, 32, 32) and latents.shape == (n, n, 2)
    assert 0 <= images.min() and images.max() <= 1
    with torch.inference_mode():
        cell = model.decode_image(torch.from_numpy(latents[1, 2][None])).numpy()[0]
    np.testing.assert_allclose(images[1 * n + 2], cell, atol=1e-6)  # row-major, top row first


def test_manifold_needs_a_2d_latent():
    model = VAE(tiny_config(image_size=32, latent_dim=4).model).eval()
    with pytest.raises(ValueError, match="2-D latent; this model has 4"):
        manifold_grid(model, 5)


def test_a_point_is_marked_on_its_cell():
    n = 7
    grid = manifold_latents(n)
    for i, j in [(0, 0), (3, 5), (6, 2)]:
        col, row = grid_position(grid[i, j], n)
        assert (col, row) == pytest.approx((j, i), abs=1e-5)
    assert grid_position([0.0, 0.0], n) == pytest.approx((3, 3))
    assert grid_position([-50.0, 50.0], n) == (-0.5, -0.5)  # far outside: at the figure's corner


def test_umap_of_a_sample_with_repeats_places_each_repeat_on_its_original():
    """10,000 draws from 1,797 digits repeat images; UMAP is fitted on the distinct points."""
    from vae_core.projection import fit_umap

    rng = np.random.default_rng(0)
    distinct = np.concatenate([rng.normal(c, 0.3, (40, 3)) for c in (-3, 0, 3)]).astype(np.float32)
    draws = rng.integers(0, len(distinct), 400)
    draws[:len(distinct)] = rng.permutation(len(distinct))  # every point appears, in a shuffled order
    coords = fit_umap(distinct[draws], seed=0)
    assert coords.shape == (400, 2)
    for i in range(len(distinct)):
        rows = np.flatnonzero(draws == i)
        assert (coords[rows] == coords[rows[0]]).all()
    first = draws[np.sort(np.unique(draws, return_index=True)[1])]
    np.testing.assert_array_equal(coords[:len(distinct)], fit_umap(distinct[first], seed=0))
    # the three clusters stay apart: the map is not a scatter of tiny islands
    centres = np.stack([coords[np.isin(draws, np.arange(k * 40, k * 40 + 40))].mean(0) for k in range(3)])
    spread = max(coords[np.isin(draws, np.arange(k * 40, k * 40 + 40))].std(0).max() for k in range(3))
    assert min(np.linalg.norm(centres[a] - centres[b]) for a, b in ((0, 1), (1, 2), (0, 2))) > 2 * spread
