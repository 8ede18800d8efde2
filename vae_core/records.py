"""What a model kind and a training objective are, as records: the types `vae_core.kinds` registers.

A kind's record stands at the end of its own file (`vae_core/models/<kind>.py`: `KIND = Kind(...)`), beside its
network, its own options (a small frozen dataclass, checked like the shared config) and its training terms; an
objective's record stands beside its loss terms in `vae_core.objectives`. This module holds only the types, so that
those files, the registry and the config can import it without importing each other: it imports nothing of the
project. The checks a config value passes (`check_int`, ...) and its error (`ConfigError`) are here for the same
reason: a kind's options are checked as the shared config is.

A kind's options are the settings no other kind has (a VQ-VAE's code size, a CVAE's condition, a VAE-GAN's
adversarial weight). They are stored in config.json under `model.options`, parsed by the kind's dataclass (unknown
keys refused), and each becomes a training command option of the same name (`--code-dim`), its help the field's
`metadata["help"]`; a field with `metadata["command"] = False` is not an option (it is derived, as a CVAE's
condition values are from its data).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIKELIHOODS = ("bernoulli", "gaussian")  # how a decoder's output is scored (vae_core.objectives.reconstruction_nll)


class ConfigError(ValueError):
    """A configuration value or key is not acceptable; the message names it."""


def check_int(where: str, name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}.{name}={value} is outside the allowed range [{low}, {high}]")


def check_float(where: str, name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}.{name} must be a number, got {value!r}")
    if not low <= float(value) <= high:  # also rejects NaN
        raise ConfigError(f"{where}.{name}={value} is outside the allowed range [{low}, {high}]")


def check_choice(where: str, name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{where}.{name}={value!r} is not one of {list(choices)}")


def card_figure(card: dict, key: str):
    """A figure of a model card's evaluation (or, before evaluation, of its training's final measurement)."""
    figures = card.get("evaluation", card.get("final", {}))
    return figures.get(key) if isinstance(figures, dict) else None


@dataclass(frozen=True)
class NoOptions:
    """The options of a kind that has none of its own (the plain VAE)."""


def option(default, help: str, command: bool = True):
    """A field of a kind's options dataclass, with the help its training command option shows."""
    return dataclasses.field(default=default, metadata={"help": help, "command": command})


@dataclass(frozen=True)
class Kind:
    """A network kind (`ModelConfig.kind`): what it is, what it can do, and its own parts."""

    name: str
    network: Callable  # ModelConfig -> the network (an nn.Module class)
    options: type = NoOptions  # the kind's own settings (a frozen dataclass; `option` fields)
    continuous_latent: bool = True  # a point of latent_dim numbers: sliders, traversals, maps, disentanglement metrics
    decodes_from_z: bool = True  # the decoder is a function of z alone: exported to ONNX and run in the browser
    conditional: bool = False  # encoder and decoder also take a condition
    adversarial: bool = False  # trained beside a discriminator: its sharpness is compared with the plain VAE's
    # (net, model, x, factors, exp, step, gen, dataset) -> a batch's loss terms; None: the objective's loss terms
    train_terms: Callable | None = None
    card_figures: Callable | None = None  # (model, dataset, exp, n, seed) -> the card's figures; None: the VAE's
    log_columns: tuple[str, ...] = ()  # training.csv columns of its own terms, after the shared ones
    # rows of its own in the card's table: (label, card -> figure), after the reconstruction and likelihood rows
    card_rows: tuple[tuple[str, Callable[[dict], Any]], ...] = ()
    usage: Callable[[dict], str] | None = None  # final figures -> how the latent is used, in words (training's last line)
    title: str = ""  # the name people read ("VQ-VAE"); "" : the kind's name
    image_size_range: tuple[int, int] | None = None  # the square sizes it takes; None: 32 or 64 (our networks')
    trained_here: bool = True  # trained by vae_core.train and saved as a config.json folder (not: from other code)

    @property
    def display_name(self) -> str:
        return self.title or self.name
    # (options fields from the command line, the dataset) -> options: for options derived from the data
    options_from_command: Callable[[dict, Any], Any] | None = None

    def build(self, config):
        """The network of a `ModelConfig` of this kind."""
        return self.network(config)

    def parse_options(self, data) -> Any:
        """The kind's options from config.json's `model.options` (a dict), refusing unknown keys."""
        if isinstance(data, self.options):
            return data
        if dataclasses.is_dataclass(data):
            raise ConfigError(f"model.options: {type(data).__name__} are not the options of a {self.name} "
                              f"({self.options.__name__})")
        if not isinstance(data, dict):
            raise ConfigError(f"model.options must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"model.options: unknown key(s) {unknown} for a {self.name} (valid keys: "
                              f"{sorted(names)})")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            return self.options(**values)
        except TypeError as exc:
            raise ConfigError(f"model.options: {exc}") from None

    def command_options(self) -> list[dataclasses.Field]:
        """The option fields that are training command options."""
        return [f for f in dataclasses.fields(self.options) if f.metadata.get("command", True)]

    def options_from(self, given: dict, dataset) -> Any:
        """The kind's options from the training command's values (`given`: option name -> value)."""
        values = {f.name: given[f.name] for f in self.command_options() if f.name in given}
        if self.options_from_command is not None:
            return self.options_from_command(values, dataset)
        return self.options(**values)


def options_dict(options) -> dict:
    """A kind's options as config.json stores them (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


@dataclass(frozen=True)
class Objective:
    """A training objective (`TrainConfig.objective`); the records are in `vae_core.objectives`."""

    name: str
    kind: str  # the name of the network kind it trains
    default_beta: float  # the KL weight (TC weight for beta-tcvae) when --beta is not given
    has_kl: bool  # the KL it reports is a figure of the model (an autoencoder's is of an untrained variance)
    autoencoder: bool  # the code is the encoder's mean alone (no sampling, no KL); denoising and sparse variants
    iwae: str | None  # "plain": a Gaussian q(z|x) with a likelihood bound; "conditional": q(z|x, c); None: none
    # (outputs, x, model_config, train_config, step, dataset_size, weight) -> terms; None: the kind's train_terms
    loss: Callable | None = None
    title: str = ""  # the name people read ("β-TCVAE"); "": the objective's name
    # (model config, train config) -> [(symbol, value)]: the weights that set this objective apart, as people read
    # them (FactorVAE's γ, DIP-VAE's λs); None: β alone when it has a KL, nothing otherwise (vae_core.objectives)
    weights: Callable | None = None
