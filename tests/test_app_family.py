"""The app's pages for the rest of the family (conditional VAE, VQ-VAE, VAE-GAN), on tiny model folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae_core import checkpoints as ckpt
from vae_core import kinds
from vae_core.data import get_dataset
from vae_core.family import build_model

from .helpers import tiny_config
from .test_app import assert_healthy, go_to, image_urls, picture
from .test_app import open_app as open_app_at

PAGES = ("explore", "traversals", "interpolate", "latent_map", "disentanglement", "reconstruct")


def _make(root, name, kind, dataset="dsprites", **model):
    torch.manual_seed(0)
    data = get_dataset(dataset)
    record = kinds.kind(kind)
    options = {"condition": "shape", "condition_names": ("square", "ellipse", "heart")} if record.conditional else {}
    objective = kind  # each of these kinds has an objective of its own name
    exp = tiny_config(64, data.channels, 3, dataset, "bernoulli" if data.channels == 1 else "gaussian",
                      model={"kind": kind, "options": {**options, **model}}, objective=objective)
    net = build_model(exp.model).eval()
    figures = {"recon": 100.0, "kl": 1.0, "kl_per_dim": [0.5, 0.4, 0.1], "active_dims": 3}
    if not record.continuous_latent:
        figures = {"recon": 100.0, "kl": 266.2, "perplexity": 5.5, "unused_codes": 8, "samples": 100,
                   "code_counts": [10] * 8 + [0] * 8}
    card = {"name": name, "dataset": dataset, "objective": objective, "beta": 1.0, "steps": 10, "final": figures,
            "sharpness": {"reconstructions": 0.01, "samples": 0.01, "data": 0.2, "images": 8}}
    ckpt.save_model(root / name, net, exp, card)


@pytest.fixture(scope="module")
def family_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    _make(root, "tiny-cvae", "cvae")
    _make(root, "tiny-vq", "vq-vae", codebook_size=16, code_dim=4)
    _make(root, "tiny-faces-vae", "vae", dataset="faces")
    _make(root, "tiny-faces-vae-gan", "vae-gan", dataset="faces")
    return root


pytestmark = pytest.mark.usefixtures("torch_threads_restored")


SERVED = "family_root"  # the model folders the app lists in this module (conftest.served_models)


def open_app(page="explore", model="tiny-vq", query=None) -> AppTest:
    return open_app_at(page, model, query, timeout=90)


@pytest.mark.parametrize("model", ["tiny-cvae", "tiny-vq", "tiny-faces-vae-gan"])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_or_says_why_not(model, page):
    at = open_app(page, model)
    assert not at.error
    if model == "tiny-vq" and page in ("traversals", "interpolate", "latent_map"):
        assert "does not apply" in at.info[0].value and "VQ-VAE" in at.info[0].value
    if model == "tiny-vq" and page == "disentanglement":
        at.selectbox(key="dis_0").set_value("tiny-vq").run()
        assert_healthy(at)
        assert any("grid of discrete indices" in i.value for i in at.info)


def test_vq_card_shows_the_grid_and_codebook_usage():
    at = open_app()
    card = at.sidebar.markdown[0].value
    assert "8x8 grid of codes" in card and "codebook of 16" in card and "codebook perplexity" in card
    assert "unused codes" in card
    assert any(m.label == "perplexity" and "5.5 of 16" in m.value for m in at.metric)


def test_vq_editor_sets_a_cell_and_decodes():
    at = open_app()
    before = picture(at.image[0].value[0])
    at.selectbox(key="vq_grid::tiny-vq::row").set_value(3).run()
    at.selectbox(key="vq_grid::tiny-vq::col").set_value(4).run()
    code_box = next(n for n in at.number_input if n.key == "vq_grid::tiny-vq::code::3::4")
    current = int(code_box.value)
    code_box.set_value((current + 5) % 16).run()
    next(b for b in at.button if b.label == "Set this cell's code").click().run()
    assert_healthy(at)
    cells = at.query_params["codes"].split(",")
    assert int(cells[3 * 8 + 4]) == (current + 5) % 16
    assert not np.array_equal(before, picture(at.image[0].value[0]))


def test_vq_out_of_range_code_is_refused_and_the_page_keeps_working():
    at = open_app()
    code_box = next(n for n in at.number_input if n.key.startswith("vq_grid::tiny-vq::code"))
    code_box.set_value(16).run()
    next(b for b in at.button if b.label == "Set this cell's code").click().run()
    assert_healthy(at)
    assert "Code 16 is refused" in at.error[0].value and "0 to 15" in at.error[0].value
    assert image_urls(at)  # still decoding the last valid grid


@pytest.mark.parametrize("codes, message", [(",".join(["99"] * 64), "outside the codebook"),
                                            ("1,2,3", "64 cells"), ("x" * 10, "whole numbers")])
def test_vq_bad_code_grid_in_the_address_is_refused(codes, message):
    at = open_app(query={"codes": codes})
    assert "refused" in at.error[0].value and message in at.error[0].value
    assert image_urls(at)


def test_vq_good_code_grid_in_the_address_is_decoded():
    grid = ",".join(str(i % 16) for i in range(64))
    at = open_app(query={"codes": grid})
    assert not at.error and "the page address" in " ".join(m.value for m in at.markdown)


def test_vq_prior_samples_shown_with_the_note():
    at = open_app()
    assert any(s.value == "Why sampling needs a learned prior" for s in at.subheader)
    text = " ".join(m.value for m in at.markdown)
    assert "uniform code prior" in text and "empirical code prior" in text and "PixelCNN" in text


def test_evaluate_measures_the_cvae_swap_and_explore_reports_it(family_root, tmp_path, monkeypatch):
    import shutil

    from vae_core.evaluate import evaluate_folder

    folder = shutil.copytree(family_root / "tiny-cvae", tmp_path / "models" / "swap-cvae")
    monkeypatch.setattr("vae_core.condition_eval.JUDGE_FLOOR", 0.0)  # a 40-step judge is weak; the flow is what is tested
    card = evaluate_folder(folder, metrics=False, projection=False, recon_samples=64, iwae_k=3, iwae_samples=16,
                           judge_steps=40, log=lambda *_: None)
    assert "given the true shape" in card["iwae"]["method"] and card["iwae"]["samples"] == 16
    swap = card["swap"]
    assert swap["decodes"] == 2 * swap["samples"] == 2000 and 0.0 <= swap["accuracy"] <= 1.0
    assert set(swap["per_value"]) == {"square", "ellipse", "heart"}
    leak = card["leak"]
    assert leak["scored_on"] == 1000 and 0.0 <= leak["accuracy"] <= 1.0 and 0.3 < leak["chance"] < 0.4
    monkeypatch.setenv(ckpt.MODELS_ENV, str(tmp_path / "models"))
    at = open_app(model="swap-cvae")
    note = next(c.value for c in at.caption if "Content versus style" in c.value)
    assert f"**{swap['accuracy']:.0%}** of 2,000 decodes" in note and "chance 33%" in note
    assert f"tells the real images' shape {swap['judge_accuracy']:.1%} of the time" in note
    assert f"{swap['own']:.0%} are judged right" in note
    assert f"for {leak['accuracy']:.0%} of held-out images (chance {leak['chance']:.0%})" in note
    assert "adversary" not in note  # tiny-cvae trained without one
    go_to(at, "reconstruct")
    bound = next(c.value for c in at.caption if "No per-image importance-weighted bound" in c.value)
    assert f"−IWAE {card['iwae']['nll_nats_per_image']:,.1f} nats/image (k = 3)" in bound


def test_cvae_condition_changes_the_image_and_the_note_says_why():
    at = open_app(model="tiny-cvae")
    box = at.selectbox(key="condition::tiny-cvae::box")
    assert box.options == ["square", "ellipse", "heart"]
    assert any("Content versus style" in c.value for c in at.caption)
    before = picture(at.image[0].value[0])
    strip = [picture(v) for v in at.image[1].value]  # the same point under each shape
    assert len(strip) == 3 and not np.array_equal(strip[0], strip[2]) and not np.array_equal(strip[1], strip[2])
    box.set_value("heart").run()
    assert_healthy(at)
    assert at.query_params["condition"] == "heart"
    assert not np.array_equal(before, picture(at.image[0].value[0]))
    assert all(np.array_equal(a, picture(b)) for a, b in zip(strip, at.image[1].value))  # whatever is chosen
    go_to(at, "traversals")
    assert any("heart" in c.value for c in at.caption)  # other pages decode under the chosen condition


def test_cvae_bad_condition_in_the_address_lists_the_values():
    at = open_app(model="tiny-cvae", query={"condition": "star"})
    assert "star" in at.error[0].value and "square, ellipse, heart" in at.error[0].value
    assert at.selectbox(key="condition::tiny-cvae::box").value == "square"


def test_cvae_reconstruct_names_the_inferred_condition():
    at = open_app("reconstruct", model="tiny-cvae")
    assert any("the condition with the best ELBO" in c.value for c in at.caption)


def test_vaegan_reconstruct_shows_the_plain_vae_beside_it_with_sharpness():
    at = open_app("reconstruct", model="tiny-faces-vae-gan")
    assert any("Sharpness" in s.value for s in at.subheader)
    captions = " ".join(c.value for c in at.caption)
    assert "card: reconstructions 0.0100" in captions
    urls = image_urls(at)
    assert len(urls) >= 4  # the image and its reconstruction, then the two models' reconstructions


SHIPPED_FAMILY = [n for n in ("dsprites-cvae", "dsprites-cvae-adversary", "dsprites-vq-vae", "faces-vae-gan")
                  if (ckpt.PRETRAINED_DIR / n / ckpt.CONFIG_FILE).exists()]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("model", SHIPPED_FAMILY)
def test_every_page_opens_for_the_shipped_family_models(model, page, monkeypatch):
    monkeypatch.delenv(ckpt.MODELS_ENV)  # pretrained/ only
    at = open_app(page, model)
    assert not at.error
    if model == "dsprites-vq-vae" and page in ("traversals", "interpolate", "latent_map"):
        assert "does not apply" in at.info[0].value
    else:
        assert image_urls(at) or page == "latent_map"


def test_a_hostile_cvae_card_leaves_explore_and_reconstruct_working(family_root, tmp_path, monkeypatch):
    import shutil

    odd = {"odd-cvae": {"swap": {"accuracy": 0.5, "decodes": "many", "chance": 0.3, "per_value": ["x"]},
                        "leak": {"accuracy": 0.9, "chance": "half"},
                        "iwae": {"nll_nats_per_image": 50.0, "samples": "all", "k": 3}},
           "odd2-cvae": {"swap": {"accuracy": 0.5, "decodes": 20, "chance": 0.5,
                                  "per_value": {"square": "x", "heart": 0.25}, "own": True},
                         "leak": ["not", "a", "dict"], "iwae": {"nll_nats_per_image": float("nan")}}}
    for name, figures in odd.items():
        ckpt.update_card(shutil.copytree(family_root / "tiny-cvae", tmp_path / "models" / name), figures)
    monkeypatch.setenv(ckpt.MODELS_ENV, str(tmp_path / "models"))
    at = open_app(model="odd-cvae")
    assert_healthy(at)
    assert "How far" not in next(c.value for c in at.caption if "Content versus style" in c.value)
    go_to(at, "reconstruct")
    assert_healthy(at)
    bound = next(c.value for c in at.caption if "No per-image importance-weighted bound" in c.value)
    assert "−IWAE" not in bound
    at = open_app(model="odd2-cvae")
    assert_healthy(at)
    note = next(c.value for c in at.caption if "Content versus style" in c.value)
    assert "(heart 25%; chance 50%)." in note and "judged right" not in note and "probe" not in note


def test_a_vq_vae_code_grid_leaves_the_address_with_its_model():
    at = open_app_at("explore", "tiny-vq")
    assert "codes" in at.query_params
    at.selectbox(key="model").set_value("tiny-faces-vae").run()
    assert_healthy(at)
    assert "codes" not in at.query_params


@pytest.mark.parametrize("codes", ["9" * 20, "-" + "9" * 30, "1e400"])
def test_a_code_grid_link_with_huge_numbers_is_refused_with_a_message(codes):
    at = open_app_at("explore", "tiny-vq", query={"codes": ",".join([codes] * 64)})
    assert any("refused" in e.value for e in at.error)


def test_a_vq_card_with_missing_or_string_figures_keeps_explore_working(family_root, tmp_path, monkeypatch):
    import json
    import shutil

    folder = tmp_path / "odd-card-vq"
    shutil.copytree(family_root / "tiny-vq", folder)
    card = json.loads((folder / ckpt.CARD_FILE).read_text())
    card["final"] = {"recon": "lots", "perplexity": 5.0, "code_counts": ["a", "b"]}  # no unused_codes
    (folder / ckpt.CARD_FILE).write_text(json.dumps(card))
    monkeypatch.setenv(ckpt.MODELS_ENV, str(tmp_path))
    at = open_app_at("explore", "odd-card-vq")
    assert any("appears once the model is evaluated" in c.value for c in at.caption)


def test_switching_between_a_vq_vae_and_a_vae_keeps_the_page():
    """The router swaps the page files by kind; the address (/reconstruct) and so the page stay."""
    at = open_app("reconstruct", model="tiny-vq")
    assert at.title[0].value == "Reconstruct" and at.radio(key="vqrec_src")
    at.selectbox(key="model").set_value("tiny-faces-vae").run()
    assert_healthy(at)
    assert at.title[0].value == "Reconstruct" and not [r for r in at.radio if r.key == "vqrec_src"]
    at.selectbox(key="model").set_value("tiny-vq").run()
    assert_healthy(at)
    assert at.title[0].value == "Reconstruct" and at.radio(key="vqrec_src")


def test_a_switch_into_the_cvae_shows_its_own_point_as_a_direct_link_does():
    """From a model decoded in the browser to the CVAE's server sliders: the sliders, made for the first time in
    the session, took the previous model's values from the address while the captions described the CVAE's own
    encoding of dataset example #0."""
    direct = open_app_at("explore", "tiny-cvae", timeout=90)
    expected = {s.key: s.value for s in direct.slider if s.key.startswith("z")}
    at = open_app_at("explore", "tiny-faces-vae", timeout=90, live_drag=True)
    previous = [at.session_state[f"z{d}"] for d in range(3)]
    at.selectbox(key="model").set_value("tiny-cvae").run()
    assert_healthy(at)
    shown = {s.key: s.value for s in at.slider if s.key.startswith("z")}
    assert shown == expected and list(shown.values()) != previous
    assert {k: float(at.query_params[k]) for k in expected} == expected  # the address carries the point
