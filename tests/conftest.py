"""Shared fixtures: tiny models and model folders made by the tests themselves."""

from __future__ import annotations

import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core.model import VAE

from .helpers import tiny_config


@pytest.fixture
def tiny_model_folder(tmp_path):
    """A saved model folder of a tiny untrained VAE: (path, model)."""
    torch.manual_seed(0)
    exp = tiny_config()
    model = VAE(exp.model).eval()
    folder = tmp_path / "tiny"
    ckpt.save_model(folder, model, exp, {"objective": "vae"})
    return folder, model
