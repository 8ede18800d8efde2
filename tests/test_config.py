import json
import shutil
from pathlib import Path

import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core import kinds
from vae_core.checkpoints import PRETRAINED_DIR, list_models
from vae_core.config import FORMAT_VERSION, ConfigError, ExperimentConfig, ModelConfig, TrainConfig
from vae_core.records import NoOptions


def test_round_trip_through_dict():
    exp = ExperimentConfig(model=ModelConfig(latent_dim=7, channels=3), train=TrainConfig(beta=4.0, steps=5))
    assert ExperimentConfig.from_dict(exp.to_dict()) == exp


@pytest.mark.parametrize(
    "data, message",
    [
        ({"latent_dim": 10, "bogus": 1}, "unknown key"),
        ({"latent_dim": 1_000_000_000}, "latent_dim"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"latent_dim": 2.5}, "integer"),
        ({"image_size": 48}, "image_size"),
        ({"channels": 2}, "channels"),
        ({"conv_channels": [32, 32, 64]}, "conv_channels"),
        ({"conv_channels": [32, 32, 64, 10**6]}, "conv_channels"),
        ({"likelihood": "poisson"}, "likelihood"),
    ],
)
def test_model_config_rejects_bad_values(data, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig.from_dict(data)


@pytest.mark.parametrize("data", [{"objective": "gan"}, {"beta": float("nan")}, {"steps": -1}, {"lr": 5}])
def test_train_config_rejects_bad_values(data):
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(data)


def test_unsupported_format_version():
    data = ExperimentConfig().to_dict()
    data["format_version"] = 99
    with pytest.raises(ConfigError, match="format_version"):
        ExperimentConfig.from_dict(data)


V1_FIXTURES = sorted((Path(__file__).parent / "fixtures" / "config_v1").glob("*.json"))


def test_every_shipped_folder_loads_in_the_current_format():
    shipped = [e for e in list_models() if e.path.parent == PRETRAINED_DIR]
    assert shipped and all(e.error is None for e in shipped), [(e.name, e.error) for e in shipped if e.error]
    for entry in shipped:
        assert json.loads((entry.path / "config.json").read_text())["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize("fixture", V1_FIXTURES, ids=lambda p: p.stem)
def test_a_version_1_folder_still_loads_with_the_same_network(fixture, tmp_path):
    """The config.json files as shipped before kinds kept their own options (format 1: every kind's settings in
    `model` and `train`): a copy of the folder with the old file opens strictly, with the kind's options moved."""
    folder = shutil.copytree(PRETRAINED_DIR / fixture.stem, tmp_path / fixture.stem,
                             ignore=shutil.ignore_patterns("projection.npz", "*.csv"))
    shutil.copy(fixture, folder / "config.json")
    old, new = ckpt.load_model(folder), ckpt.load_model(PRETRAINED_DIR / fixture.stem)
    assert json.loads(fixture.read_text())["format_version"] == 1
    assert old.config.model == new.config.model and old.config.dataset == new.config.dataset  # (steps were fixed since)
    assert isinstance(old.config.model.options, kinds.kind(old.config.model.kind).options)
    for a, b in zip(old.model.state_dict().values(), new.model.state_dict().values()):
        assert torch.equal(a, b)


def test_version_1_settings_of_another_kind_are_dropped_and_unknown_ones_refused():
    data = json.loads((Path(__file__).parent / "fixtures" / "config_v1" / "dsprites-beta-vae.json").read_text())
    assert data["model"]["codebook_size"] == 64 and data["train"]["gan_weight"] == 1.0  # carried by every v1 file
    assert ExperimentConfig.from_dict(data).model.options == NoOptions()  # a plain VAE has none of its own
    data["model"]["bogus"] = 1
    with pytest.raises(ConfigError, match="unknown key"):
        ExperimentConfig.from_dict(data)
