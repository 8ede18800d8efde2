import pytest

from vae_core.config import ConfigError, ExperimentConfig, ModelConfig, TrainConfig


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
