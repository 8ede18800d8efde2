"""Helpers for the tests: tiny configs that train in a second on the CPU."""

from __future__ import annotations

from vae_core.config import DatasetInfo, ExperimentConfig, ModelConfig, TrainConfig

TINY = {"conv_channels": (4, 4, 8, 8), "hidden_dim": 16}


def tiny_config(image_size: int = 64, channels: int = 1, latent_dim: int = 4, **train) -> ExperimentConfig:
    """A config small enough to train in a second on the CPU."""
    dataset = DatasetInfo("dsprites", ("color", "shape", "scale", "orientation", "posX", "posY"),
                          (1, 3, 6, 40, 32, 32)) if channels == 1 else DatasetInfo("faces")
    return ExperimentConfig(
        model=ModelConfig(image_size=image_size, channels=channels, latent_dim=latent_dim, **TINY),
        train=TrainConfig(**{"objective": "vae", "steps": 10, "batch_size": 8, "log_every": 2, **train}),
        dataset=dataset,
    )
