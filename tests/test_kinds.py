"""The registry of model kinds and objectives (vae_core.kinds): each record builds, trains and is asked by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vae_core import kinds
from vae_core.config import ConfigError, ExperimentConfig, ModelConfig, TrainConfig

from .helpers import TINY


def _config(kind: str, **model) -> ModelConfig:
    options = {"condition": "shape", "condition_names": ("a", "b")} if kinds.kind(kind).conditional else {}
    return ModelConfig(kind=kind, latent_dim=3, options=options, **TINY, **model)


@pytest.mark.parametrize("name", [k.name for k in kinds.KINDS.values() if k.trained_here])
def test_every_kind_builds_its_network_from_its_own_options(name):
    record = kinds.kind(name)
    net = record.build(_config(name))
    assert net.config.kind == name and isinstance(net.config.options, record.options)
    assert record.network.__module__ == f"vae_core.models.{name.replace('-', '')}"  # the kind's own file


def test_every_objective_trains_a_registered_kind():
    assert {o.kind for o in kinds.OBJECTIVES.values()} <= set(kinds.KINDS)


def test_a_kind_from_other_code_is_never_built_from_a_config():
    record = next(k for k in kinds.KINDS.values() if not k.trained_here)
    with pytest.raises(ConfigError, match="never built from a config.json"):
        record.build(ModelConfig(kind=record.name, image_size=28, latent_dim=3))


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="known kinds: vae, cvae"):
        kinds.kind("diffusion")
    with pytest.raises(ValueError, match="known objectives: ae, vae"):
        kinds.objective("gan")


def test_an_objective_and_a_network_of_another_kind_are_refused():
    with pytest.raises(ConfigError, match="trains a vq-vae network"):
        ExperimentConfig(model=ModelConfig(), train=TrainConfig(objective="vq-vae"))


def test_a_kinds_options_are_checked_by_its_own_dataclass_and_others_refused():
    vq = ModelConfig(kind="vq-vae", options={"codebook_size": 32})
    assert vq.options.codebook_size == 32 and vq.options.commitment == 0.25  # the rest at the kind's defaults
    assert vq.to_dict()["options"]["codebook_size"] == 32 and "gan_weight" not in vq.to_dict()["options"]
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['gan_weight'\] for a vq-vae"):
        ModelConfig(kind="vq-vae", options={"gan_weight": 2.0})
    with pytest.raises(ConfigError, match="codebook_size=1 is outside"):
        ModelConfig(kind="vq-vae", options={"codebook_size": 1})
    with pytest.raises(ConfigError, match="a cvae needs the factor"):
        ModelConfig(kind="cvae")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        ModelConfig(kind="vq-vae", options=["codebook_size"])


def test_beta_has_one_default_per_objective_for_the_config_and_the_command():
    from vae_core.data import get_dataset
    from vae_core.train import build_parser, config_from_args

    dsprites = get_dataset("dsprites")
    for name, record in kinds.OBJECTIVES.items():
        if not kinds.kind(record.kind).trained_here:  # a model from other code: not trained by the command
            continue
        command = ["--out", "x", "--objective", name] + (["--condition", "shape"] if name == "cvae" else [])
        exp = config_from_args(build_parser().parse_args(command), dsprites)
        assert exp.train.beta == TrainConfig(objective=name).beta == record.default_beta, name
    assert TrainConfig().beta == kinds.objective(TrainConfig().objective).default_beta == 4.0


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


def test_a_new_kind_registers_through_its_own_record():
    """A toy kind: its network, options and training terms in one record, known to the config, the command line
    and the training loop once it is in the registry (as `vae_core/models/<kind>.py` plus one import line)."""
    import torch

    from vae_core.config import check_int
    from vae_core.records import Kind, option
    from vae_core.train import build_parser, config_from_args, train

    @dataclasses.dataclass(frozen=True)
    class ToyOptions:
        toy_width: int = option(3, "how wide the toy is")

        def __post_init__(self):
            check_int("model.options", "toy_width", self.toy_width, 1, 10)

    class Toy(kinds.KINDS["vae"].network):
        pass

    def toy_terms(net, model, x, factors, exp, step, gen, dataset):
        out = net(x, generator=gen)
        recon = torch.nn.functional.binary_cross_entropy_with_logits(out["logits"], x, reduction="sum") / len(x)
        return {"recon": recon, "kl": torch.tensor(0.0), "total": recon, "toy": torch.tensor(1.0)}

    toy = Kind("toy", Toy, ToyOptions, train_terms=toy_terms, log_columns=("toy",))
    toy_objective = kinds.Objective("toy", "toy", default_beta=0.0, has_kl=False, autoencoder=False, iwae=None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(kinds.KINDS, "toy", toy)
        mp.setitem(kinds.OBJECTIVES, "toy", toy_objective)
        args = build_parser().parse_args(["--out", "x", "--objective", "toy", "--toy-width", "5", "--latent-dim", "2"])
        from vae_core.data import get_dataset

        exp = config_from_args(args, get_dataset("dsprites"))
        assert exp.model.options == ToyOptions(5) and ExperimentConfig.from_dict(exp.to_dict()) == exp
        with pytest.raises(ConfigError, match="toy_width=11"):
            ModelConfig(kind="toy", options={"toy_width": 11})
        small = dataclasses.replace(exp, model=dataclasses.replace(exp.model, **TINY),
                                    train=dataclasses.replace(exp.train, steps=2, batch_size=4, log_every=1))
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            card = train(small, folder, device="cpu", progress=False)
            log = (Path(folder) / "training.csv").read_text().splitlines()
        assert card["steps"] == 2 and log[0].endswith(",toy") and log[-1].endswith(",1.0")


def test_each_objective_is_read_by_the_weights_that_set_it_apart():
    def weights(objective: str, model_options=None, **train) -> str:
        kind = kinds.objective(objective).kind
        model = ModelConfig(kind=kind, latent_dim=3, options=model_options or {}, **TINY)
        return kinds.weights_text(ExperimentConfig(model=model, train=TrainConfig(objective=objective, **train)))

    assert weights("vae") == "β = 1" and weights("beta-vae") == "β = 4" and weights("beta-tcvae", beta=10) == "β = 10"
    assert weights("factor-vae", {"tc_weight": 40}) == "γ = 40"  # not the KL's β = 1 the sidebar once showed
    assert weights("factor-vae", {"tc_weight": 40}, beta=2) == "γ = 40, β = 2"
    assert weights("dip-vae-i") == "λ_od = 10, λ_d = 100" and weights("dip-vae-ii") == "λ_od = 10, λ_d = 10"
    assert weights("dip-vae-i", lambda_od=5, lambda_d_factor=2) == "λ_od = 5, λ_d = 10"
    assert weights("capacity-vae") == "γ = 1000, C_max = 25"
    assert weights("info-vae") == "β = 0, MMD weight = 1000"
    assert weights("ae") == weights("vq-vae") == ""
