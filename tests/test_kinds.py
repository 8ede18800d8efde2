"""The registry of model kinds and objectives (vae_core.kinds): each record builds, trains and is asked by name."""

from __future__ import annotations

import dataclasses

import pytest

from vae_core import kinds
from vae_core.config import ConfigError, ExperimentConfig, ModelConfig, TrainConfig

from .helpers import TINY


def _config(kind: str, **model) -> ModelConfig:
    extra = {"condition_names": ("a", "b")} if kinds.kind(kind).conditional else {}
    return ModelConfig(kind=kind, latent_dim=3, **TINY, **extra, **model)


@pytest.mark.parametrize("name", list(kinds.KINDS))
def test_every_kind_builds_its_network_and_names_functions_that_exist(name):
    record = kinds.kind(name)
    net = record.build(_config(name))
    assert net.config.kind == name
    for function in (record.train_terms, record.card_figures):
        assert function is None or callable(kinds.resolve(function))


def test_every_objective_trains_a_registered_kind():
    assert {o.kind for o in kinds.OBJECTIVES.values()} <= set(kinds.KINDS)


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="known kinds: vae, cvae"):
        kinds.kind("diffusion")
    with pytest.raises(ValueError, match="known objectives: ae, vae"):
        kinds.objective("gan")


def test_an_objective_and_a_network_of_another_kind_are_refused():
    with pytest.raises(ConfigError, match="trains a vq-vae network"):
        ExperimentConfig(model=ModelConfig(), train=TrainConfig(objective="vq-vae"))


def test_card_fields_come_from_the_config():
    exp = ExperimentConfig(model=_config("vq-vae", codebook_size=32), train=TrainConfig(objective="vq-vae"))
    assert kinds.card_fields(exp)["codebook_size"] == 32
    assert kinds.card_fields(ExperimentConfig()) == {}


def test_the_parser_takes_each_objectives_default_beta_from_the_registry():
    from vae_core.data import get_dataset
    from vae_core.train import build_parser, config_from_args

    for name in ("beta-vae", "beta-tcvae", "vae"):
        args = build_parser().parse_args(["--out", "x", "--objective", name])
        exp = config_from_args(args, get_dataset("dsprites"))
        assert exp.train.beta == kinds.objective(name).default_beta


def _exp(dataset: str, kind: str, objective: str, image_size: int = 64) -> ExperimentConfig:
    return ExperimentConfig(model=_config(kind, image_size=image_size),
                            train=TrainConfig(dataset=dataset, objective=objective))


def test_a_vae_gan_is_compared_only_with_a_plain_vae_of_the_same_data_and_size():
    gan = _exp("digits", "vae-gan", "vae-gan", 32)
    assert kinds.sharpness_partners(gan, _exp("digits", "vae", "vae", 32))
    assert kinds.sharpness_partners(_exp("digits", "vae", "vae", 32), gan)
    assert not kinds.sharpness_partners(_exp("digits", "vae-gan", "vae-gan", 64), _exp("digits", "vae", "vae", 32))
    assert not kinds.sharpness_partners(gan, _exp("digits", "vae", "beta-vae", 32))
    assert not kinds.sharpness_partners(gan, _exp("dsprites", "vae", "vae", 32))
    assert not kinds.sharpness_partners(_exp("digits", "vae", "vae", 32), _exp("digits", "vae", "vae", 32))


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        kinds.kind("vae").conditional = True
