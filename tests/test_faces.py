"""Faces: the grid, determinism, that every factor is visible where it should be, and a picture of it all."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vae_core.data import faces as faces_module
from vae_core.data import get_dataset
from vae_core.data.faces import Faces
from vae_core.imaging import encode_png, image_grid

MOUTH = 5
GAZE = 4
EYE_ROWS = slice(22, 34)  # eyes are centred at y = 27 with half-height up to 5.1; eyebrows lie above
MOUTH_BOX = (slice(33, 48), slice(18, 46))  # rows, columns: the lower middle of the face


@pytest.fixture(scope="module")
def ds():
    return Faces()


@pytest.fixture(scope="module")
def bases(ds):
    """Base points to vary one factor from: both corners of the grid and a few random points."""
    sizes = np.asarray(ds.factor_sizes)
    return np.concatenate([np.zeros((1, 7), np.int64), sizes[None] - 1, ds.sample_factors(4, np.random.default_rng(3))])


def _sweep(ds, base, k):
    """Images of every value of factor k, the others fixed at `base`: (size_k, 3, 64, 64)."""
    factors = np.tile(base, (ds.factor_sizes[k], 1))
    factors[:, k] = np.arange(ds.factor_sizes[k])
    return ds.images_from_factors(factors)


def test_grid_and_interface(ds):
    assert (ds.name, ds.channels, ds.image_size, ds.label_names) == ("faces", 3, 64, ())
    assert ds.factor_names == ("face_shape", "skin_tone", "hair_colour", "eye_size", "gaze", "mouth", "background")
    assert ds.factor_sizes == (3, 4, 4, 3, 3, 5, 4)
    assert 5_000 <= ds.num_images <= 50_000
    assert ds.varying_factors == list(range(7))
    for k, size in enumerate(ds.factor_sizes):
        values = ds.factor_values(k)
        assert values.shape == (size,) and (np.diff(values) > 0).all()
    mouth = ds.factor_values(MOUTH)
    assert len(mouth) >= 5 and mouth[0] < 0 < mouth[-1] and 0 in mouth  # frown, neutral, smile
    assert np.diff(ds.factor_values(GAZE)).min() >= 2.0  # pupils move at least 2 px per step
    assert isinstance(get_dataset("faces"), Faces)


def test_colours_are_distinguishable():
    """Skin, hair and background colours differ pairwise, so each colour factor is visible in any combination."""
    colours = np.array(faces_module.SKIN_TONES + faces_module.HAIR_COLOURS + faces_module.BACKGROUNDS, float)
    dist = np.sqrt(((colours[:, None] - colours[None]) ** 2).sum(-1))
    assert dist[~np.eye(len(colours), dtype=bool)].min() > 55


def test_index_factor_round_trip(ds):
    index = np.random.default_rng(0).integers(0, ds.num_images, 1000)
    assert (ds.factors_to_index(ds.index_to_factors(index)) == index).all()
    sizes = np.asarray(ds.factor_sizes)
    corners = np.array(np.meshgrid(*[[0, s - 1] for s in sizes], indexing="ij")).reshape(7, -1).T  # (128, 7)
    corner_index = ds.factors_to_index(corners)
    assert (ds.index_to_factors(corner_index) == corners).all()
    assert corner_index.min() == 0 and corner_index.max() == ds.num_images - 1
    assert ds.index_to_factors(np.array([1, ds.factor_bases[0]])).tolist() == [[0, 0, 0, 0, 0, 0, 1],
                                                                               [1, 0, 0, 0, 0, 0, 0]]
    with pytest.raises(ValueError):
        ds.index_to_factors(np.array([ds.num_images]))


def test_shape_dtype_range_and_bad_factors(ds):
    images, factors = ds.sample(32, np.random.default_rng(1))
    assert images.shape == (32, 3, 64, 64) and images.dtype == np.float32 and factors.shape == (32, 7)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert ds.images_from_factors(np.zeros((0, 7), np.int64)).shape == (0, 3, 64, 64)
    for bad in ([[0, 0, 0, 0, 0, 5, 0]], [[0, -1, 0, 0, 0, 0, 0]], [[3, 0, 0, 0, 0, 0, 0]], [[0] * 6], [[0] * 8],
                [0] * 7):
        with pytest.raises(ValueError):
            ds.images_from_factors(np.array(bad))


def test_render_is_deterministic_and_batch_independent(ds):
    factors = ds.sample_factors(48, np.random.default_rng(2))
    a = ds.images_from_factors(factors)
    b = ds.images_from_factors(factors)
    one_by_one = np.concatenate([ds.images_from_factors(factors[i:i + 1]) for i in range(len(factors))])
    assert a.tobytes() == b.tobytes() == one_by_one.tobytes()
    faces_module._basis.cache_clear()  # render the supersampled layers again from scratch
    try:
        assert ds.images_from_factors(factors).tobytes() == a.tobytes()
    finally:
        faces_module._basis.cache_clear()


def test_images_are_anti_aliased(ds):
    """Edges get intermediate values: far more distinct levels than the ~20 flat colours of a face."""
    image = ds.images_from_factors(np.array([[1, 1, 1, 1, 1, 4, 1]]))[0]
    assert len(np.unique(image[0])) > 60


def test_every_factor_changes_the_image(ds, bases):
    for base in bases:
        for k, name in enumerate(ds.factor_names):
            images = _sweep(ds, base, k)
            changed = (np.abs(np.diff(images, axis=0)).max(axis=1) > 0.1).sum(axis=(1, 2))  # pixels per step
            assert (changed >= 20).all(), f"{name} barely changes from {base}: {changed}"


def test_factors_change_their_own_region(ds, bases):
    """Background changes the corners but not the face; skin the chin but not the corners; and so on."""
    corner, chin, hair = (0, 0), (46, 32), (9, 32)  # (row, column)
    where = {"background": (corner, chin), "skin_tone": (chin, corner), "hair_colour": (hair, chin),
             "face_shape": (None, corner), "eye_size": (None, corner), "gaze": (None, corner),
             "mouth": (None, hair)}
    for base in bases:
        for k, name in enumerate(ds.factor_names):
            images = _sweep(ds, base, k)
            changes, stays = where[name]
            if changes is not None:
                assert np.abs(np.diff(images[:, :, changes[0], changes[1]], axis=0)).max(axis=1).min() > 0.05, name
            assert np.ptp(images[:, :, stays[0], stays[1]], axis=0).max() == 0, name


def test_smile_changes_the_lower_middle_of_the_face(ds, bases):
    rows, cols = MOUTH_BOX
    for base in bases:
        images = _sweep(ds, base, MOUTH)
        diff = np.abs(np.diff(images, axis=0)).sum(axis=1)  # (4, 64, 64)
        inside = diff[:, rows, cols].sum(axis=(1, 2))
        assert (inside >= 0.99 * diff.sum(axis=(1, 2))).all()
        assert (inside > 10.0).all()  # and clearly: tens of pixels change fully at every step


def _ink_row(image, cols, rows=slice(33, 45)):
    """Darkness-weighted mean row in the given columns, above the chin's outline: where the mouth line lies."""
    darkness = np.clip(0.6 - image[:, rows, cols].mean(axis=0), 0, None)  # the mouth is far darker than skin
    return (darkness.sum(axis=1) * np.arange(rows.start, rows.stop)).sum() / darkness.sum()


def test_smile_bends_the_right_way(ds):
    """From frown to smile the middle of the mouth moves down and its corners up (y down in images)."""
    images = _sweep(ds, np.array([1, 0, 2, 1, 1, 0, 1]), MOUTH)  # light skin, so only the mouth is dark
    middle = [_ink_row(im, slice(30, 34)) for im in images]
    corners = [(_ink_row(im, slice(23, 25)) + _ink_row(im, slice(39, 41))) / 2 for im in images]  # x = 32 -/+ 7.7
    assert (np.diff(middle) > 0.5).all() and (np.diff(corners) < -0.3).all(), (middle, corners)


def test_gaze_moves_the_pupils_at_least_2px():
    """In the supersampled drawing, each gaze step moves each pupil (clipped to its eye) >= 2 px to the right."""
    canvas = faces_module._label_canvas()  # (shape, eye, gaze, mouth, 256, 256) layer ids
    ids = [faces_module.LAYER_ID["pupil"], faces_module.LAYER_ID["glint"]]
    pupils = np.isin(canvas[:, :, :, 0], ids)  # (3, 3, 3, 256, 256): the mouth does not matter
    x = (np.arange(256) + 0.5) / faces_module.SUPERSAMPLE  # in pixels of the 64x64 image
    for half in (slice(0, 128), slice(128, 256)):  # each eye on its own
        columns = pupils[..., half].sum(axis=-2)  # (3, 3, 3, 128)
        centre = (columns @ x[half]) / columns.sum(axis=-1)  # (shape, eye, gaze)
        assert np.diff(centre, axis=-1).min() >= 2.0


def test_gaze_moves_the_dark_of_the_eyes_right(ds):
    """In the images: the ink of each eye (pupil and rim) shifts to the right at every gaze step, by >= 1 px."""
    for eye_size in range(3):
        images = _sweep(ds, np.array([1, 1, 2, eye_size, 0, 2, 1]), GAZE)  # light skin, blonde: only the eyes ink
        ink = np.clip(0.45 - images[:, :, EYE_ROWS].mean(axis=1), 0, None)  # (3, rows, 64)
        for half in (slice(16, 32), slice(32, 48)):  # each eye, between the face's outlines
            profile = ink[:, :, half].sum(axis=1)  # (3, 16)
            centre = profile @ np.arange(64)[half] / profile.sum(axis=1)
            assert np.diff(centre).min() >= 1.0, (eye_size, centre)


def test_factor_grid_png(ds, tmp_path):
    """One row per factor, all its values from a neutral base: the picture to look at after a change."""
    out = Path(__file__).parent / "artifacts" if os.environ.get("VAE_TEST_ARTIFACTS") else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    cols = max(ds.factor_sizes)
    base = np.array([1, 1, 1, 1, 1, 2, 1])
    rows = []
    for k, size in enumerate(ds.factor_sizes):
        row = np.ones((cols, 3, 64, 64), np.float32)
        row[:size] = _sweep(ds, base, k)
        rows.append(row)
    path = out / "faces_factor_grid.png"
    path.write_bytes(encode_png(image_grid(np.concatenate(rows), len(rows), cols), scale=2))
    with Image.open(path) as png:
        assert png.size == (2 * (cols * 66 - 2), 2 * (7 * 66 - 2)) and png.mode == "RGB"


@pytest.mark.slow
def test_renders_fast_enough_to_train_from(ds):
    """At least 5,000 images a second in batches of 256 (the target holds on one core: no threads used)."""
    rng = np.random.default_rng(0)
    batches = [ds.sample_factors(256, rng) for _ in range(20)]
    ds.images_from_factors(batches[0])
    start = time.perf_counter()
    for factors in batches:
        ds.images_from_factors(factors)
    assert 20 * 256 / (time.perf_counter() - start) >= 5_000
