"""Shared fixtures: tiny models and model folders made by the tests themselves; one headless Chromium per module."""

from __future__ import annotations

import json
import os

import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core.export import CACHE_ENV
from vae_core.models.vae import VAE

from .app_fixtures import CHROMIUM, make_broken, make_model, serve_models
from .helpers import TINY_CARD, tiny_config

# The tests derive every decoder afresh (they count and fake exports) and leave nothing in the home folder; the
# cache of derived decoders has tests of its own (test_export), with folders of their own.
os.environ[CACHE_ENV] = ""
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs one worker per core: one torch thread each, and one
    torch.set_num_threads(1)                # for the trainings and servers a test starts as processes of their own
    os.environ["OMP_NUM_THREADS"] = "1"



@pytest.fixture
def tiny_model_folder(tmp_path):
    """A saved model folder of a tiny untrained VAE: (path, model)."""
    torch.manual_seed(0)
    exp = tiny_config()
    model = VAE(exp.model).eval()
    folder = tmp_path / "tiny"
    ckpt.save_model(folder, model, exp, TINY_CARD)
    return folder, model


@pytest.fixture(autouse=True)
def served_models(request, monkeypatch):
    """The app under AppTest lists the model folders of the fixture a test module names in `SERVED` (models_root,
    family_root, ...), and keeps the pictures it shows (app_fixtures.serve_models)."""
    name = getattr(request.module, "SERVED", None)
    if name is not None:
        serve_models(monkeypatch, request.getfixturevalue(name))


@pytest.fixture(scope="module")
def torch_threads_restored():
    """The app runs torch on one thread; AppTest runs it in this process, so give the other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    """The app tests' model folders (built once per test module): a dSprites model with a projection, faces
    models with and without one, a size no dataset fits, and folders broken in each way the app must report."""
    root = tmp_path_factory.mktemp("models")
    make_model(root, "grey64")  # dsprites, 4 dims (the last collapsed), with projection.npz
    make_model(root, "faces64", dataset="faces", channels=3, latent_dim=5)
    make_model(root, "faces64-noproj", dataset="faces", channels=3, latent_dim=5, projection=0)
    make_model(root, "colour32", dataset="faces", channels=3, image_size=32, latent_dim=3)  # no data fits it
    make_broken(root)
    bad = make_model(root, "bad-projection", latent_dim=3, projection=0)
    (bad / "projection.npz").write_bytes(b"PK\x03\x04 not really a zip")
    corrupt = make_model(root, "corrupt-weights", latent_dim=3, projection=0)
    (corrupt / "model.safetensors").write_bytes((corrupt / "model.safetensors").read_bytes()[:500])
    ae = make_model(root, "ae64", latent_dim=3, projection=0)
    config = json.loads((ae / "config.json").read_text())
    config["train"].update(objective="ae", beta=0.0)
    (ae / "config.json").write_text(json.dumps(config))
    card = json.loads((ae / "card.json").read_text())
    card.update(objective="ae", steps="[Session expired, log in](https://example.com) ![](http://example.com/p.png)")
    card["final"]["kl"] = 3771.0
    (ae / "card.json").write_text(json.dumps(card))
    sweep = [{"beta": b, "recon": 40.0 + 10 * b, "mig": 0.05 * b} for b in (1, 2, 4, 8)]
    (root / "beta_sweep.json").write_text(json.dumps(sweep))
    return root
