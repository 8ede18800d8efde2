"""Naming latents by the factor they carry, and the data's own sweep of a factor (vae_core.naming)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vae_core import checkpoints as ckpt
from vae_core.data import DSprites, Faces
from vae_core.naming import name_latents, truth_sweep

from .app_fixtures import make_model

FACTORS = ["shape", "scale", "orientation", "posX", "posY"]
ENTROPY = np.log([3, 6, 40, 32, 32])


def _mi(cells: dict[tuple[str, int], float], latents: int = 5) -> np.ndarray:
    """MI in nats from shares of each factor's entropy."""
    mi = np.full((len(FACTORS), latents), 0.01) * ENTROPY[:, None]
    for (factor, d), share in cells.items():
        mi[FACTORS.index(factor), d] = share * ENTROPY[FACTORS.index(factor)]
    return mi


def test_a_latent_is_named_by_the_factor_it_carries():
    mi = _mi({("posX", 3): 0.8, ("posY", 1): 0.7, ("scale", 0): 0.4, ("posX", 0): 0.1})
    names = name_latents(mi, FACTORS, ENTROPY, np.array([True, True, True, True, False]))
    assert names[3].name == "posX" and names[3].clean and names[3].gap == pytest.approx(0.7)
    assert names[1].name == "posY" and names[0].name == "scale"
    assert names[4].name == "inactive" and names[4].factors == ()
    assert names[2].name == "no clear factor"  # active, but carries almost nothing of any factor


def test_a_latent_carrying_two_factors_is_named_by_both_and_a_weaker_copy_has_a_negative_gap():
    mi = _mi({("posX", 0): 0.4, ("posY", 0): 0.35, ("posX", 1): 0.6})
    names = name_latents(mi, FACTORS, ENTROPY, np.ones(5, bool))
    assert names[0].name == "posX + posY" and not names[0].clean
    assert names[1].clean and names[0].gap < 0  # z1 carries posX better than z0 does


@pytest.mark.parametrize("dataset", [DSprites(), Faces()], ids=["dsprites", "faces"])
def test_the_truth_sweep_moves_only_its_factor_over_its_whole_range(dataset):
    start = np.asarray(dataset.factor_sizes) // 2
    for k, factor in enumerate(dataset.factor_names):
        if dataset.factor_sizes[k] == 1:
            continue
        images, factors = truth_sweep(dataset, start, factor, 7)
        others = np.delete(factors, k, axis=1)
        assert (others == np.delete(start, k)).all()  # every other factor as it started
        assert factors[0, k] == 0 and factors[-1, k] == dataset.factor_sizes[k] - 1
        assert images.shape[0] == 7 and not np.array_equal(images[0], images[3]), factor  # (orientation wraps)
        np.testing.assert_array_equal(images, dataset.images_from_factors(factors))


def test_the_sliders_are_named_from_the_card(tmp_path, monkeypatch, torch_threads_restored):
    from .test_app import open_app, slider

    folder = make_model(tmp_path, "named", projection=0)
    card = json.loads((folder / ckpt.CARD_FILE).read_text())
    card["metrics"]["mi_matrix"] = _mi({("posX", 2): 0.8, ("scale", 0): 0.5}, latents=4).tolist()
    card["metrics"]["factor_names"] = FACTORS
    (folder / ckpt.CARD_FILE).write_text(json.dumps(card))
    monkeypatch.setenv(ckpt.MODELS_ENV, str(tmp_path))
    at = open_app("explore", "named")
    assert slider(at, "z2").label.startswith("z2 · posX ·")
    assert slider(at, "z0").label.startswith("z0 · scale ·")
    assert slider(at, "z3").label.startswith("z3 · inactive")  # the tiny models' last dimension is collapsed


def test_a_factor_name_is_escaped_for_streamlit_labels_and_plain_for_the_live_component():
    """Seen on faces-vae in Chromium: the live sliders read "skin\\_tone" (markdown escapes shown as text)."""
    from app.widgets import dim_label
    from vae_core.naming import LatentName

    names = [LatentName(0, "skin_tone", ("skin_tone",), 0.5, 0.2)]
    kl = np.array([3.49])
    assert dim_label(0, kl, True, names, markdown=False) == "z0 · skin_tone · 3.49 nats"
    assert dim_label(0, kl, True, names) == "z0 · skin\\_tone · 3.49 nats"
