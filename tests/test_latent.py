import math

import pytest
import torch

from vae_core.latent import active_dims, interpolate, rank_dims_by_kl, traversal_values, traverse


def test_traversal_changes_one_dimension_per_row():
    z = torch.tensor([0.1, -0.2, 0.3])
    values = traversal_values(5, "prior", quantile=0.95, latent_dim=3)
    grid = traverse(z, values, dims=[2, 0]).reshape(2, 5, 3)
    assert torch.allclose(grid[0, :, 2], values[2]) and torch.equal(grid[0, :, :2], z[:2].expand(5, 2))
    assert torch.allclose(grid[1, :, 0], values[0]) and torch.equal(grid[1, :, 1:], z[1:].expand(5, 2))
    assert values[0, 0].item() == pytest.approx(-1.95996, abs=1e-4)


def test_posterior_and_data_ranges():
    mu, logvar = torch.tensor([1.0, 0.0]), torch.tensor([0.0, math.log(4.0)])
    v = traversal_values(3, "posterior", mu=mu, logvar=logvar, k=2)
    assert torch.allclose(v, torch.tensor([[-1.0, 1.0, 3.0], [-4.0, 0.0, 4.0]]))
    data = torch.tensor([[0.0, 5.0], [2.0, -1.0]])
    assert torch.allclose(traversal_values(2, "data", data_means=data), torch.tensor([[0.0, 2.0], [-1.0, 5.0]]))
    with pytest.raises(ValueError):
        traversal_values(4, "weird", latent_dim=2)


@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_interpolation_hits_both_endpoints(method):
    z0, z1 = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([-1.0, 3.0, 0.5])
    path = interpolate(z0, z1, 7, method)
    assert path.shape == (7, 3)
    assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[-1], z1, atol=1e-6)


def test_slerp_keeps_the_norm_where_lerp_shrinks_it():
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([-3.0, 0.1])
    assert interpolate(z0, z1, 5, "linear")[2].norm() < 0.2
    assert interpolate(z0, z1, 5, "spherical")[2].norm() == pytest.approx(3.0, rel=1e-3)


def test_ranking_and_active_dims():
    kl = torch.tensor([0.001, 2.0, 0.5, 0.0])
    assert rank_dims_by_kl(kl) == [1, 2, 0, 3]
    assert active_dims(kl).tolist() == [False, True, True, False]
