"""Models from other code: a VAE of a real third-party library (pythae), built and trained briefly here, and a plain
MLP VAE written in the style of the tutorials, opened through the Python route (vae_core.python_models) and through
an ONNX folder exported from it (vae_core.export.export_onnx_folder); both give the same pictures for the same point
(within 1e-4 in [0, 1]), and the app's pages open on them."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from vae_core import checkpoints as ckpt
from vae_core import python_models
from vae_core.data import get_dataset
from vae_core.explore import decode
from vae_core.export import PARITY_TOLERANCE, export_onnx_folder

from .test_app import assert_healthy, open_app, slider

pytestmark = pytest.mark.usefixtures("torch_threads_restored")


class TutorialVAE(nn.Module):
    """The MLP VAE of the PyTorch examples, on 28x28 grey images, with a 5-number latent."""

    image_size, channels, latent_dim = 28, 1, 5

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc21, self.fc22 = nn.Linear(128, 5), nn.Linear(128, 5)
        self.fc3, self.fc4 = nn.Linear(5, 128), nn.Linear(128, 784)

    def encode(self, x):
        h = torch.relu(self.fc1(x.view(-1, 784)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return torch.sigmoid(self.fc4(torch.relu(self.fc3(z)))).view(-1, 1, 28, 28)


class PythaeForExplorer(nn.Module):
    """A pythae VAE as its owner would hand it over: encode and decode on top of pythae's encoder and decoder."""

    image_size, channels, dataset = 32, 1, "digits"

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def encode(self, x):
        out = self.vae.encoder(x)
        return out.embedding, out.log_covariance

    def decode(self, z):
        return self.vae.decoder(z).reconstruction


def trained_pythae_vae(steps: int = 40):
    """pythae's VAE (its default MLP networks) trained briefly on the procedural digits, by its own loss."""
    from pythae.models import VAE, VAEConfig

    torch.manual_seed(0)
    vae = VAE(model_config=VAEConfig(input_dim=(1, 32, 32), latent_dim=4))
    data = get_dataset("digits", image_size=32)
    optimiser = torch.optim.Adam(vae.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    first = last = None
    for _ in range(steps):
        x = torch.from_numpy(data.sample(64, rng)[0])
        loss = vae({"data": x}).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        first, last = first or float(loss), float(loss)
    assert last < first  # it learned something
    return PythaeForExplorer(vae.eval())


@pytest.fixture(scope="module")
def pythae_model():
    pytest.importorskip("pythae")
    return trained_pythae_vae()


@pytest.fixture
def registered(monkeypatch):
    """Functions named as the serve command's --model would name them, in a module of their own."""
    module = types.ModuleType("explorer_test_models")
    module.tutorial = lambda: TutorialVAE()
    module.broken = lambda: (_ for _ in ()).throw(RuntimeError("checkpoint not found: vae.pt"))
    module.no_sizes = lambda: nn.Module()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(python_models, "REGISTERED", {})
    return module


@pytest.mark.parametrize("which", ["pythae", "tutorial"])
def test_the_python_route_and_its_onnx_folder_draw_the_same_pictures(which, request, tmp_path):
    obj = request.getfixturevalue("pythae_model") if which == "pythae" else TutorialVAE()
    python, config = python_models.adapt(obj, which)
    folder = export_onnx_folder(obj, tmp_path / f"{which}-onnx", config.train.dataset)
    onnx_model = ckpt.load_model(folder).model
    z = np.random.default_rng(2).normal(0, 2, (12, config.model.latent_dim)).astype(np.float32)
    assert np.abs(decode(python, z) - decode(onnx_model, z)).max() <= PARITY_TOLERANCE
    x = decode(python, z[:4])
    with torch.inference_mode():
        mu_python, _ = python.encode(torch.from_numpy(x))
        mu_onnx, _ = onnx_model.encode(torch.from_numpy(x))
    assert torch.allclose(mu_python, mu_onnx, atol=1e-4)
    assert onnx_model.has_logvar and config.model.image_size == obj.image_size


def test_a_named_function_is_listed_and_opened_and_a_failing_one_says_why(registered):
    python_models.register("explorer_test_models:tutorial")
    python_models.register("explorer_test_models:broken")
    python_models.register("explorer_test_models:no_sizes")
    entries = {e.name: e for e in ckpt.list_models()}
    assert {"explorer_test_models:tutorial", "explorer_test_models:broken"} <= set(entries)
    loaded = ckpt.load_model(entries["explorer_test_models:tutorial"].path)
    assert loaded.config.model.latent_dim == 5 and loaded.model.source == "python"
    with pytest.raises(ckpt.CheckpointError, match="calling it raised RuntimeError: checkpoint not found"):
        ckpt.load_model(entries["explorer_test_models:broken"].path)
    with pytest.raises(ckpt.CheckpointError, match="no encode"):
        ckpt.load_model(entries["explorer_test_models:no_sizes"].path)
    with pytest.raises(ValueError, match="package.module:function"):
        python_models.register("os.system('x')")


def test_nothing_but_the_serve_command_names_code():
    """A link or a folder cannot name a function: only `register` (the serve command's --model) adds one."""
    assert not python_models.is_registered("python:os:getcwd")
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_model("python:os:getcwd")


def test_the_serve_command_takes_its_models_apart_from_streamlits_options():
    from app.serve import take_models

    specs, rest = take_models(["--model", "a.b:c", "--server.port", "8501", "--model=d:e"])
    assert specs == ["a.b:c", "d:e"] and rest == ["--server.port", "8501"]


@pytest.mark.parametrize("page", ["explore", "traversals", "interpolate", "latent_map", "disentanglement",
                                  "reconstruct"])
def test_every_page_opens_on_a_model_from_other_code(page, registered, tmp_path, monkeypatch):
    from .onnx_fixtures import onnx_folder

    python_models.register("explorer_test_models:tutorial")
    onnx_folder(tmp_path)
    monkeypatch.setenv(ckpt.MODELS_ENV, str(tmp_path))
    for model in ("hand-onnx", "explorer_test_models:tutorial"):
        at = open_app(page, model)
        assert_healthy(at)
        assert not at.error, [e.value for e in at.error]
        if page == "explore":
            card = " ".join(m.value for m in at.sidebar.markdown)
            assert "model from other code (" + ("ONNX folder" if model == "hand-onnx" else "Python code") in card
            slider(at, "z0").set_value(1.5).run()
            assert_healthy(at)
            assert slider(at, "z0").value == 1.5 and at.query_params["z0"] == "1.5"


def test_an_onnx_folder_is_decoded_in_the_browser_from_its_own_decoder(tmp_path):
    from vae_core.export import check_parity, derived_decoder

    from .onnx_fixtures import onnx_folder

    folder = onnx_folder(tmp_path)
    model = ckpt.load_model(folder).model
    data = derived_decoder(model, folder)
    assert check_parity(model, data, seed=5) <= PARITY_TOLERANCE
