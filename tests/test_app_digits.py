"""The app's pages for the VAE family's additions: the learned manifold of a 2-D latent (Explore), the likelihood
bound and the denoising view (Reconstruct), on digits models made by the tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vae_core import checkpoints as ckpt

from .app_fixtures import make_model
from .test_app import assert_healthy, open_app, picture, slider

PAGES = ["explore", "traversals", "interpolate", "latent_map", "disentanglement", "reconstruct"]


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    make_model(root, "digits2d", dataset="digits", image_size=32, latent_dim=2)
    make_model(root, "digits10", dataset="digits", image_size=32, latent_dim=10)
    ae = make_model(root, "digits-dae", dataset="digits", image_size=32, latent_dim=6, projection=0)
    config = json.loads((ae / ckpt.CONFIG_FILE).read_text())
    config["train"].update(objective="ae", beta=0.0, corruption="mask", corruption_level=0.4, l1=0.01)
    (ae / ckpt.CONFIG_FILE).write_text(json.dumps(config))
    ckpt.update_card(ae, {"iwae": {"unavailable": "a plain autoencoder"}})
    return root


SERVED = "digits_root"  # the model folders the app lists in this module (conftest.served_models)


pytestmark = pytest.mark.usefixtures("torch_threads_restored")


def picture_uri(uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def _manifold(at):
    charts = [c for c in at.get("plotly_chart") if "your point" in c.proto.spec]
    return json.loads(charts[0].proto.spec) if charts else None


def test_a_2d_model_shows_the_learned_manifold_with_the_point_on_it():
    at = open_app(model="digits2d")
    at.button[0].click().run()  # reset to the prior mean (the page opens on a dataset example)
    spec = _manifold(at)
    assert spec is not None and any("learned manifold" in s.value for s in at.subheader)
    chart = next(c for c in at.get("plotly_chart") if "your point" in c.proto.spec)
    assert len(chart.proto.spec) < 100_000  # the grid travels as a PNG, not as 700,000 numbers
    grid = picture_uri(spec["data"][0]["source"])
    assert grid.shape == (15 * 32, 15 * 32)
    image, marker = spec["data"]
    assert image["type"] == "image" and marker["name"] == "your point"
    x0, y0 = marker["x"][0], marker["y"][0]
    assert (x0, y0) == pytest.approx((15 * 32 / 2 - 0.5, 15 * 32 / 2 - 0.5))  # the prior mean: the centre
    slider(at, "z0").set_value(2.0).run()
    slider(at, "z1").set_value(2.0).run()
    assert_healthy(at)
    marker = _manifold(at)["data"][1]
    assert marker["x"][0] > x0 + 150 and marker["y"][0] < y0 - 150  # right and up, as z0 and z1 grew


def test_models_with_more_dimensions_have_no_manifold_figure():
    at = open_app(model="digits10")
    assert _manifold(at) is None and len(at.slider) == 10


def test_reconstruct_shows_the_iwae_bound_next_to_the_elbo():
    at = open_app("reconstruct", model="digits10")
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["reconstruction", "KL", "−ELBO", "−IWAE (k=100)"]
    values = {m.label: float(m.value.split()[0].replace(",", "")) for m in at.metric[:4]}
    assert np.isfinite(values["−IWAE (k=100)"])
    at.select_slider(key="recon_iwae_k").set_value(1).run()
    assert_healthy(at)
    assert at.metric[3].label == "−IWAE (k=1)"


def test_reconstruct_cleans_a_noisy_copy():
    at = open_app("reconstruct", model="digits10")
    assert any("Denoising" in s.value for s in at.subheader)
    row = next(im for im in at.image if len(im.value) == 3)
    clean, noisy, cleaned = (picture(url) for url in row.value)
    assert clean.shape == noisy.shape == cleaned.shape and not np.array_equal(clean, noisy)
    assert [m.label for m in at.metric][-2:] == ["noisy vs clean", "reconstruction vs clean"]
    at.radio(key="recon_noise_kind").set_value("mask").run()
    assert_healthy(at)
    assert at.slider(key="recon_noise_mask").value == 0.5


def test_a_denoising_sparse_autoencoder_says_what_it_is_and_has_no_bound():
    at = open_app("reconstruct", model="digits-dae")
    text = " ".join(c.value for c in at.caption)
    assert "denoising autoencoder" in text and "mask corruption at level 0.4" in text
    assert "no likelihood bound" in text and "near zero" in text
    assert not any("IWAE" in m.label for m in at.metric)
    assert at.radio(key="recon_noise_kind").value == "mask" and at.slider(key="recon_noise_mask").value == 0.4


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_for_digits_models(page):
    for model in ("digits2d", "digits-dae"):
        at = open_app(page, model=model)
        assert not at.error, [e.value for e in at.error]

