import itertools

import numpy as np
import pytest

from vae_core.data import DSprites, dataset_names, get_dataset


@pytest.fixture(scope="module")
def ds():
    return DSprites()


def test_grid_matches_the_original(ds):
    assert ds.factor_names == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == (1, 3, 6, 40, 32, 32)
    assert ds.num_images == 737_280
    assert ds.factor_bases.tolist() == [737280, 245760, 40960, 1024, 32, 1]
    assert ds.varying_factors == [1, 2, 3, 4, 5]
    orientation = ds.factor_values(3)
    assert orientation[0] == 0 and np.isclose(orientation[-1], 2 * np.pi)  # both ends, as in the original
    assert np.allclose(ds.factor_values(2), np.linspace(0.5, 1, 6))


def test_index_factor_round_trip(ds):
    rng = np.random.default_rng(0)
    index = rng.integers(0, ds.num_images, 1000)
    factors = ds.index_to_factors(index)
    assert (ds.factors_to_index(factors) == index).all()
    assert ds.index_to_factors(np.array([0, 1, 32, ds.num_images - 1])).tolist() == [
        [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0], [0, 2, 5, 39, 31, 31]]
    with pytest.raises(ValueError):
        ds.index_to_factors(np.array([ds.num_images]))
    with pytest.raises(ValueError):
        ds.factors_to_index(np.array([[0, 3, 0, 0, 0, 0]]))


def test_render_is_binary_deterministic_and_batch_independent(ds):
    factors = ds.sample_factors(64, np.random.default_rng(1))
    a = ds.images_from_factors(factors)
    b = np.concatenate([ds.images_from_factors(factors[i:i + 1]) for i in range(64)])
    assert a.shape == (64, 1, 64, 64) and a.dtype == np.float32
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert np.array_equal(a, b)
    assert (a.reshape(64, -1).sum(1) > 20).all()  # every sprite is visible


def _centroid(image):
    ys, xs = np.nonzero(image[0])
    return xs.mean(), ys.mean()


def test_rendered_image_matches_its_factors(ds):
    """Position moves the centroid where the documented geometry says; scale grows the area; shapes differ."""
    base = np.array([0, 1, 5, 0, 0, 0])
    for px, py in [(0, 0), (31, 0), (0, 31), (16, 8)]:
        f = base.copy()
        f[4], f[5] = px, py
        cx, cy = _centroid(ds.images_from_factors(f[None])[0])
        assert abs(cx - (16 + 32 * px / 31)) < 1.0 and abs(cy - (16 + 32 * py / 31)) < 1.0
    areas = [ds.images_from_factors(np.array([[0, 0, s, 0, 16, 16]]))[0].sum() for s in range(6)]
    assert all(a < b for a, b in itertools.pairwise(areas))
    square, ellipse, heart = ds.images_from_factors(np.array([[0, s, 5, 0, 16, 16] for s in range(3)]))
    assert not np.array_equal(square, ellipse) and not np.array_equal(ellipse, heart)
    # the ellipse's long axis is horizontal at orientation 0 and vertical at a quarter turn
    wide = ds.images_from_factors(np.array([[0, 1, 5, 0, 16, 16]]))[0, 0]
    tall = ds.images_from_factors(np.array([[0, 1, 5, 10, 16, 16]]))[0, 0]
    assert np.ptp(np.nonzero(wide)[1]) > 1.5 * np.ptp(np.nonzero(wide)[0])
    assert np.ptp(np.nonzero(tall)[0]) > 1.5 * np.ptp(np.nonzero(tall)[1])
    # the square has 90-degree symmetry: orientation index 10 (a quarter turn) looks like 0
    q0 = ds.images_from_factors(np.array([[0, 0, 5, 0, 16, 16], [0, 0, 5, 10, 16, 16]]))
    assert np.abs(q0[0] - q0[1]).sum() <= 8


def test_every_sprite_stays_inside_the_frame(ds):
    factors = np.array([[0, s, 5, o, x, y] for s in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)])
    images = ds.images_from_factors(factors)[:, 0]
    border = images[:, 0, :].sum() + images[:, -1, :].sum() + images[:, :, 0].sum() + images[:, :, -1].sum()
    assert border == 0


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="dsprites"):
        get_dataset("celeba")
    assert "dsprites" in dataset_names()
