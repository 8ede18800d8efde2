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


def test_a_latent_is_named_by_the_factor_it_carries_with_its_share():
    mi = _mi({("posX", 3): 0.8, ("posY", 1): 0.7, ("scale", 0): 0.4, ("posX", 0): 0.1})
    names = name_latents(mi, FACTORS, ENTROPY, np.array([True, True, True, True, False]))
    assert names[3].name == "posX 80%" and names[3].clean and names[3].gap == pytest.approx(0.7)
    assert names[1].name == "posY 70%" and names[0].name == "scale 40%"
    assert names[4].name == "inactive" and names[4].factors == ()
    assert names[2].name == "no clear factor"  # active, but carries almost nothing of any factor


def test_a_latent_carrying_two_factors_is_mixed_and_a_weaker_copy_says_also():
    mi = _mi({("posX", 0): 0.4, ("posY", 0): 0.35, ("posX", 1): 0.6, ("posX", 2): 0.3})
    names = name_latents(mi, FACTORS, ENTROPY, np.ones(5, bool))
    assert names[0].name == "mixed: posX 40% + posY 35%" and not names[0].clean
    assert names[1].clean and names[0].gap < 0  # z1 carries posX better than z0 does
    assert names[1].name == "posX 60%" and names[2].name == "also posX 30%"  # never two sliders named "posX"


def test_a_small_share_claims_no_factor():
    """dsprites-beta-vae's z8 was named "posY" for 14% of posY's information, while it moved the sprite diagonally."""
    names = name_latents(_mi({("posY", 0): 0.14, ("posX", 0): 0.06}), FACTORS, ENTROPY, np.ones(5, bool))
    assert names[0].name == "weak: posY 14%" and names[0].factors == ()  # no data sweep of posY beside it


def test_labelled_datas_factor_reads_class():
    names = name_latents(np.array([[0.5, 0.01]]), ["label"], np.log([2]), np.ones(2, bool))
    assert names[0].name == "class 72%" and names[0].factors == ("label",)


@pytest.mark.parametrize("model, dim, name", [
    ("dsprites-beta-tcvae", 7, "posX 74%"), ("dsprites-beta-tcvae", 8, "mixed: scale 67% + shape 40%"),
    ("dsprites-beta-tcvae", 9, "weak: shape 13%"), ("dsprites-beta-vae", 8, "weak: posY 14%"),
    ("faces-beta-vae", 5, "mixed: skin_tone 94% + mouth 44%")])
def test_the_shipped_models_names_claim_no_more_than_their_cards_show(model, dim, name):
    """Classroom round 2: four sliders of dsprites-beta-tcvae were all "shape"; faces-beta-vae's skin-tone slider
    also turns the mouth."""
    from app import models
    from vae_core.checkpoints import list_models

    entry = next(e for e in list_models() if e.name == model)
    names = models.latent_names(models.open_model(entry))
    assert names[dim].name == name
    bare = [n.name for n in names if n.factors and not n.name.startswith(("also", "mixed"))]
    assert len(bare) == len({n.split()[0] for n in bare})  # no factor is the bare name of two sliders


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
    assert slider(at, "z2").label.startswith("z2 · posX 80% ·")
    assert slider(at, "z0").label.startswith("z0 · scale 50% ·")
    assert slider(at, "z3").label.startswith("z3 · inactive")  # the tiny models' last dimension is collapsed


def test_a_factor_name_is_escaped_for_streamlit_labels_and_plain_for_the_live_component():
    """Seen on faces-vae in Chromium: the live sliders read "skin\\_tone" (markdown escapes shown as text)."""
    from app.widgets import dim_label
    from vae_core.naming import LatentName

    names = [LatentName(0, "skin_tone", ("skin_tone",), 0.5, 0.2)]
    kl = np.array([3.49])
    assert dim_label(0, kl, True, names, markdown=False) == "z0 · skin_tone · 3.49 nats"
    assert dim_label(0, kl, True, names) == "z0 · skin\\_tone · 3.49 nats"


def test_the_teacher_hides_every_name_and_the_address_keeps_it(tmp_path, monkeypatch, torch_threads_restored):
    from .test_app import open_app, slider

    folder = make_model(tmp_path, "named", projection=0)
    card = json.loads((folder / ckpt.CARD_FILE).read_text())
    card["metrics"]["mi_matrix"] = _mi({("posX", 2): 0.8}, latents=4).tolist()
    card["metrics"]["factor_names"] = FACTORS
    (folder / ckpt.CARD_FILE).write_text(json.dumps(card))
    monkeypatch.setenv(ckpt.MODELS_ENV, str(tmp_path))
    at = open_app("explore", "named")
    assert "posX" in slider(at, "z2").label
    at.toggle(key="names_shown").set_value(False).run()
    assert slider(at, "z2").label.startswith("z2 · ") and "posX" not in slider(at, "z2").label
    assert at.query_params["names"] == "hidden"
    linked = open_app("explore", "named", query={"names": "hidden"})  # the link a teacher shares
    assert "posX" not in slider(linked, "z2").label and linked.toggle(key="names_shown").value is False
