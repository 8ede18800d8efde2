"""Shared fixtures: tiny models and model folders made by the tests themselves; one headless Chromium per module."""

from __future__ import annotations

import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core.models.vae import VAE

from .helpers import tiny_config

CHROMIUM = "/usr/bin/chromium"  # Debian's; `playwright install` cannot download browsers here


@pytest.fixture
def tiny_model_folder(tmp_path):
    """A saved model folder of a tiny untrained VAE: (path, model)."""
    torch.manual_seed(0)
    exp = tiny_config()
    model = VAE(exp.model).eval()
    folder = tmp_path / "tiny"
    ckpt.save_model(folder, model, exp, {"objective": "vae"})
    return folder, model


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
