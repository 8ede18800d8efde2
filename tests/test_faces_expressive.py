"""The expressive faces (`faces-expressive`, issue #34) beside the plain ones: the plain images stay byte for
byte what every shipped model, stored edit and test was made from; the expressive mouth moves several times
more pixels."""

import hashlib

import numpy as np
import pytest

from vae_core.data import dataset_names, get_dataset
from vae_core.data import faces as faces_module
from vae_core.data.faces import ExpressiveFaces, Faces

MOUTH = 5
# SHA-256 of the float32 bytes of the plain renderer's images, computed before the expressive option existed
SAMPLE_SHA256 = "161d4124425df468424744edb64c5a4990cb9a8d0410551a7e74f0ae4bcb47bf"  # 16 faces, default_rng(0)
GRID_SHA256 = "8908e71e5338f64c56e1bc2ce93ada04f8e12c817d9a2ae2679d7c65bfa06313"  # all 8,640, in index order


@pytest.fixture(scope="module")
def plain():
    return get_dataset("faces")


@pytest.fixture(scope="module")
def expressive():
    return get_dataset("faces-expressive")


def test_plain_faces_are_byte_identical(plain):
    rng = np.random.default_rng(0)
    sample = np.stack([rng.integers(0, size, size=16) for size in plain.factor_sizes], 1)
    assert hashlib.sha256(plain.images_from_factors(sample).tobytes()).hexdigest() == SAMPLE_SHA256
    digest = hashlib.sha256()
    for start in range(0, plain.num_images, 960):  # the whole grid, a chunk at a time
        index = np.arange(start, min(start + 960, plain.num_images))
        digest.update(plain.images_from_factors(plain.index_to_factors(index)).tobytes())
    assert digest.hexdigest() == GRID_SHA256


def test_expressive_is_the_same_grid_by_another_name(plain, expressive):
    assert isinstance(expressive, ExpressiveFaces) and isinstance(expressive, Faces)
    assert type(plain) is Faces and "faces-expressive" in dataset_names()
    assert (expressive.name, plain.name) == ("faces-expressive", "faces")
    assert expressive.factor_names == plain.factor_names and expressive.factor_sizes == plain.factor_sizes
    for k in range(len(plain.factor_sizes)):
        assert np.array_equal(expressive.factor_values(k), plain.factor_values(k))
    assert expressive.mouth_names == ("strong frown", "frown", "neutral", "smile", "big smile")
    assert plain.expression == faces_module.PLAIN and expressive.expression == faces_module.EXPRESSIVE


def test_expressive_changes_only_the_expression(plain, expressive):
    """The two renderers agree away from the mouth and the eyebrows: background, hair, eyes and neck."""
    factors = plain.sample_factors(64, np.random.default_rng(1))
    a, b = plain.images_from_factors(factors), expressive.images_from_factors(factors)
    differs = np.abs(a - b).max(axis=(0, 1)) > 0  # (64, 64): anywhere in any image
    rows = np.flatnonzero(differs.any(axis=1))
    assert rows.min() >= 12 and rows.max() <= 50  # from the eyebrows down to the chin
    assert not differs[:, :10].any() and not differs[:, 54:].any()  # the background at the sides
    assert not differs[51:].any()  # neck and shoulders


def _pixels_moved(dataset, k, n=400, seed=0):
    """Mean pixels (any channel by more than 0.05) changed between random faces and their twins with factor k
    set to another value: the measure of docs/zoo.md."""
    rng = np.random.default_rng(seed)
    base = dataset.sample_factors(n, rng)
    twin = base.copy()
    twin[:, k] = (base[:, k] + rng.integers(1, dataset.factor_sizes[k], size=n)) % dataset.factor_sizes[k]
    diff = np.abs(dataset.images_from_factors(base) - dataset.images_from_factors(twin)).max(axis=1)
    return float((diff > 0.05).sum(axis=(1, 2)).mean())


def test_expressive_mouth_moves_several_times_more_pixels(plain, expressive):
    before, after = _pixels_moved(plain, MOUTH), _pixels_moved(expressive, MOUTH)
    assert 70 < before < 100  # docs/zoo.md: 85 px, 2.1% of the image
    assert after >= 2.5 * before, (before, after)
    gaze = plain.factor_names.index("gaze")
    assert _pixels_moved(expressive, gaze) == pytest.approx(_pixels_moved(plain, gaze), rel=0.05)


def test_expressive_mouth_bends_further():
    """Frown to smile, in the supersampled drawing: the middle of the mouth (dark lips around a light band of
    teeth) sinks by more than a pixel at every step (y down), and the teeth lie inside the lips."""
    y = (np.arange(256) + 0.5) / faces_module.SUPERSAMPLE
    canvas = faces_module._label_canvas(faces_module.EXPRESSIVE)[1, 1, 1]  # oval, medium eyes, ahead: (5, 256, 256)
    lips, teeth = faces_module.LAYER_ID["mouth"], faces_module.LAYER_ID["teeth"]
    middle_columns = canvas[:, :, 124:132]  # x from 31 to 33
    mouth = (middle_columns == lips) | (middle_columns == teeth)
    rows = mouth.sum(axis=2)  # (5, 256)
    middle = rows @ y / rows.sum(axis=1)
    assert (np.diff(middle) > 1.0).all(), middle
    for drawn in canvas:
        shown = np.nonzero((drawn == teeth).any(axis=1))[0]
        assert len(shown) and (drawn[shown.min() - 1] == lips).any() and (drawn[shown.max() + 1] == lips).any()
    assert not (faces_module._label_canvas(faces_module.PLAIN) == teeth).any()  # the plain faces show none


def test_expressive_brows_follow_the_mouth():
    """In the supersampled drawing: level eyebrows on a neutral face; with a frown their inner ends drop below
    the outer ones (a scowl), with a smile they rise. The plain faces' eyebrows never move."""
    x = (np.arange(256) + 0.5) / faces_module.SUPERSAMPLE
    brow = faces_module.LAYER_ID["brow"]

    def heights(expression):
        canvas = faces_module._label_canvas(expression)[1, 1, 1]  # oval, medium eyes, ahead: (5, 256, 256)
        eye_x = 32.0 - (0.4 * 20.5 * faces_module.FACE_RATIOS[1] + 0.5)  # the image's left eye
        out = []
        for mouth in canvas:
            drawn = mouth == brow
            ys, xs = np.nonzero(drawn)
            ys, xs = x[ys], x[xs]
            inner, outer = ys[(xs > eye_x) & (xs < 32)].mean(), ys[xs < eye_x].mean()
            out.append((inner, outer))
        return np.array(out)  # (5 mouths, inner / outer) mean y

    plain, expressive = heights(faces_module.PLAIN), heights(faces_module.EXPRESSIVE)
    assert np.ptp(plain, axis=0).max() == 0
    inner, outer = expressive.T
    assert abs(inner[2] - outer[2]) < 0.1 and inner[0] > outer[0] + 2.0 and inner[1] > outer[1] + 1.0
    assert (np.diff(expressive.mean(axis=1)) < -0.5).all()  # the brows rise at every step towards a smile


def test_what_is_made_for_faces_serves_the_expressive_faces(expressive):
    """An upload is framed, an edit trained and the drawn-faces corpus read the same way for either renderer."""
    from vae_core.edit_recipes import recipe
    from vae_core.prepare import subject_for

    assert subject_for("faces-expressive") == subject_for("faces") != subject_for("dsprites")
    assert recipe(expressive, "mouth") == recipe(get_dataset("faces"), "mouth") != {}
