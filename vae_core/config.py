"""Model and training configuration: dataclasses that validate themselves and reject unknown keys.

A config is read from a model folder someone may have sent you, so every value is checked *before* any
network is built: an absurd size is refused here, not discovered as an out-of-memory error later.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import kinds

FORMAT_VERSION = 1

IMAGE_SIZES = (32, 64)
CHANNEL_CHOICES = (1, 3)
LIKELIHOODS = ("bernoulli", "gaussian")
OBJECTIVES = tuple(kinds.OBJECTIVES)  # what each one is and trains: vae_core.kinds
CORRUPTIONS = ("none", "gaussian", "mask")  # input corruption of a denoising autoencoder (vae_core.corruption)
MODEL_KINDS = tuple(kinds.KINDS)
MAX_CODEBOOK = 4096
MAX_LATENT_DIM = 512  # a slider per dimension; more than this is never a model of ours
MAX_WIDTH = 1024  # conv channels and hidden units; bounds the parameter count before allocation


class ConfigError(ValueError):
    """A configuration value or key is not acceptable; the message names it."""


def _from_dict(cls, data: dict[str, Any], where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    kwargs = dict(data)
    for f in dataclasses.fields(cls):
        if f.name in kwargs and isinstance(kwargs[f.name], list):
            kwargs[f.name] = tuple(kwargs[f.name])
    try:
        return cls(**kwargs)
    except TypeError as exc:  # wrong value types reach here from __post_init__ comparisons
        raise ConfigError(f"{where}: {exc}") from None


def _check_int(where: str, name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}.{name}={value} is outside the allowed range [{low}, {high}]")


def _check_float(where: str, name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}.{name} must be a number, got {value!r}")
    if not low <= float(value) <= high:  # also rejects NaN
        raise ConfigError(f"{where}.{name}={value} is outside the allowed range [{low}, {high}]")


def _check_choice(where: str, name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{where}.{name}={value!r} is not one of {list(choices)}")


@dataclass(frozen=True)
class ModelConfig:
    """The network: enough to rebuild it exactly from a model folder."""

    image_size: int = 64  # 64 is the dSprites standard; 32 for people's 28x28 data, padded
    channels: int = 1  # 1 for grey/binary, 3 for colour
    latent_dim: int = 10  # the field's standard for dSprites (REFERENCE section 2)
    conv_channels: tuple[int, ...] = (32, 32, 64, 64)  # disentanglement_lib's encoder; the decoder mirrors it
    hidden_dim: int = 256  # the fully connected layer between the convs and the latent
    likelihood: str = "bernoulli"  # bernoulli for binary images; gaussian (fixed std) for grey or colour
    gaussian_std: float = 0.1  # fixed decoder std for the gaussian likelihood, in pixel units of [0, 1]
    # The network's kind (vae_core.kinds): "vae" (also ae, beta-VAE, ...), "cvae", "vq-vae" or "vae-gan".
    kind: str = "vae"
    condition_names: tuple[str, ...] = ()  # cvae: the condition's values, one one-hot input each
    codebook_size: int = 64  # vq-vae: number of codes K
    code_dim: int = 16  # vq-vae: dimension of each code
    vq_ema: bool = False  # vq-vae: codebook updated by exponential moving averages instead of gradients
    condition_adversary: bool = False  # cvae: a classifier that tries to read the condition from the latent

    def __post_init__(self):
        where = "model"
        _check_choice(where, "kind", self.kind, MODEL_KINDS)
        if not isinstance(self.condition_names, tuple) or not all(isinstance(n, str) for n in self.condition_names):
            raise ConfigError(f"{where}.condition_names must list names, got {self.condition_names!r}")
        if kinds.kind(self.kind).conditional != (len(self.condition_names) >= 2):
            raise ConfigError(f"{where}.condition_names: a cvae needs at least 2 condition values and only a cvae "
                              f"has them (kind {self.kind!r}, {len(self.condition_names)} given)")
        _check_int(where, "codebook_size", self.codebook_size, 2, MAX_CODEBOOK)
        _check_int(where, "code_dim", self.code_dim, 1, MAX_WIDTH)
        if not isinstance(self.vq_ema, bool):
            raise ConfigError(f"{where}.vq_ema must be true or false, got {self.vq_ema!r}")
        if not isinstance(self.condition_adversary, bool):
            raise ConfigError(f"{where}.condition_adversary must be true or false, got {self.condition_adversary!r}")
        if self.condition_adversary and not kinds.kind(self.kind).conditional:
            raise ConfigError(f"{where}.condition_adversary: only a cvae has a condition to hide (kind {self.kind!r})")
        _check_choice(where, "image_size", self.image_size, IMAGE_SIZES)
        _check_choice(where, "channels", self.channels, CHANNEL_CHOICES)
        _check_int(where, "latent_dim", self.latent_dim, 1, MAX_LATENT_DIM)
        if not isinstance(self.conv_channels, tuple) or len(self.conv_channels) != 4:
            raise ConfigError(f"{where}.conv_channels must list 4 widths, got {self.conv_channels!r}")
        for width in self.conv_channels:
            _check_int(where, "conv_channels[i]", width, 1, MAX_WIDTH)
        _check_int(where, "hidden_dim", self.hidden_dim, 1, 4 * MAX_WIDTH)
        _check_choice(where, "likelihood", self.likelihood, LIKELIHOODS)
        _check_float(where, "gaussian_std", self.gaussian_std, 1e-3, 10.0)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["conv_channels"] = list(self.conv_channels)
        d["condition_names"] = list(self.condition_names)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, data, "model")


@dataclass(frozen=True)
class TrainConfig:
    """How a model was (or is to be) trained; recorded in config.json so `make pretrained` can redo it."""

    dataset: str = "dsprites"
    data_root: str | None = None  # folder for mnist / fashion-mnist / an image folder
    objective: str = "beta-vae"
    beta: float = 1.0  # weight of the KL (or the total correlation, beta-tcvae); the command's default per
    # objective is in vae_core.kinds (a beta-vae trains at 4 unless told otherwise)
    gamma: float = 1000.0  # capacity-vae: weight of |KL - C| (Burgess et al. 2018)
    capacity_max: float = 25.0  # capacity-vae: C rises linearly from 0 to this many nats...
    capacity_steps: int = 100_000  # ...over this many steps
    warmup_steps: int = 0  # KL weight rises linearly from 0 to 1 over these steps (0: off)
    cycles: int = 0  # cyclical annealing (Fu et al. 2019): number of warm-up cycles over the run (0: off)
    free_bits: float = 0.0  # floor, in nats, on each dimension's batch-mean KL (Kingma et al. 2016)
    steps: int = 10_000
    batch_size: int = 64  # the literature's batch (REFERENCE section 2)
    lr: float = 5e-4  # the Burgess variant's rate; trains faster than 1e-4 on a small budget
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    # Steps at which Adam's moments are cleared (a warm restart). A run stopped at step k and continued from its
    # shipped weights alone, with no resume file, is exactly a run with a reset at k: this records it.
    optimizer_resets: tuple[int, ...] = ()
    # Denoising and sparse autoencoders (objective "ae" only; vae_core.corruption): the encoder sees a corrupted
    # copy (gaussian noise of std `corruption_level`, or `mask`ing that fraction of pixels) and the loss compares
    # the reconstruction with the clean image; `l1` weights an L1 penalty on the code.
    corruption: str = "none"
    corruption_level: float = 0.0
    l1: float = 0.0
    # The rest of the family (vae_core.family)
    condition: str | None = None  # cvae: the factor (or "label") the model is conditioned on
    # cvae: weight of the penalty that keeps the condition out of the latent
    # (vae_core.models.cvae.adversary_terms; 0: off)
    adversary: float = 0.0
    commitment: float = 0.25  # vq-vae: weight of the commitment loss (van den Oord et al. 2017)
    revive_every: int = 100  # vq-vae: every this many steps, codes unused since are moved onto encoder outputs (0: off)
    gan_weight: float = 1.0  # vae-gan: weight of the adversarial term for the decoder
    feature_weight: float = 1.0  # vae-gan: weight of the discriminator-feature reconstruction term
    init_from: str | None = None  # a model folder whose matching weights start this run (e.g. a VAE-GAN from its VAE)

    def __post_init__(self):
        where = "train"
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"{where}.dataset must be a dataset name, got {self.dataset!r}")
        if self.data_root is not None and not isinstance(self.data_root, str):
            raise ConfigError(f"{where}.data_root must be a folder name or null, got {self.data_root!r}")
        _check_choice(where, "objective", self.objective, OBJECTIVES)
        _check_float(where, "beta", self.beta, 0.0, 1e4)
        _check_float(where, "gamma", self.gamma, 0.0, 1e6)
        _check_float(where, "capacity_max", self.capacity_max, 0.0, 1e4)
        _check_int(where, "capacity_steps", self.capacity_steps, 1, 10**9)
        _check_int(where, "warmup_steps", self.warmup_steps, 0, 10**9)
        _check_int(where, "cycles", self.cycles, 0, 10**6)
        _check_float(where, "free_bits", self.free_bits, 0.0, 100.0)
        _check_int(where, "steps", self.steps, 1, 10**9)
        _check_int(where, "batch_size", self.batch_size, 2, 65536)
        _check_float(where, "lr", self.lr, 1e-8, 1.0)
        _check_int(where, "seed", self.seed, 0, 2**31 - 1)
        _check_int(where, "checkpoint_every", self.checkpoint_every, 1, 10**9)
        _check_int(where, "log_every", self.log_every, 1, 10**9)
        if not isinstance(self.optimizer_resets, tuple):
            raise ConfigError(f"{where}.optimizer_resets must be a list of steps, got {self.optimizer_resets!r}")
        for reset in self.optimizer_resets:
            _check_int(where, "optimizer_resets[]", reset, 1, 10**9)
        _check_choice(where, "corruption", self.corruption, CORRUPTIONS)
        _check_float(where, "corruption_level", self.corruption_level, 0.0, 1.0 if self.corruption == "mask" else 10.0)
        _check_float(where, "l1", self.l1, 0.0, 1e4)
        if not kinds.objective(self.objective).autoencoder and (self.corruption != "none" or self.l1 > 0):
            raise ConfigError(f"{where}: corruption and l1 (denoising / sparse autoencoders) go with objective "
                              f"'ae', not {self.objective!r}")
        if self.corruption != "none" and self.corruption_level <= 0:
            raise ConfigError(f"{where}.corruption={self.corruption!r} needs a corruption_level above 0")
        if self.condition is not None and (not isinstance(self.condition, str) or not self.condition):
            raise ConfigError(f"{where}.condition must be a factor or label name, got {self.condition!r}")
        conditional = kinds.kind(kinds.objective(self.objective).kind).conditional
        if conditional != (self.condition is not None):
            raise ConfigError(f"{where}.condition: objective cvae needs a condition, and only cvae takes one")
        _check_float(where, "adversary", self.adversary, 0.0, 1e4)
        if self.adversary > 0 and not conditional:
            raise ConfigError(f"{where}.adversary: only objective cvae has a condition to keep out of the latent")
        _check_float(where, "commitment", self.commitment, 0.0, 100.0)
        _check_int(where, "revive_every", self.revive_every, 0, 10**9)
        _check_float(where, "gan_weight", self.gan_weight, 0.0, 1e4)
        _check_float(where, "feature_weight", self.feature_weight, 0.0, 1e4)
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from):
            raise ConfigError(f"{where}.init_from must be a model folder, got {self.init_from!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, data, "train")


@dataclass(frozen=True)
class DatasetInfo:
    """What the app needs to know about a model's data without loading it."""

    name: str
    factor_names: tuple[str, ...] = ()  # ground-truth factors, empty for data without them
    factor_sizes: tuple[int, ...] = ()
    label_names: tuple[str, ...] = ()  # class names for labelled data (e.g. MNIST digits)

    def __post_init__(self):
        where = "dataset"
        if not isinstance(self.name, str):
            raise ConfigError(f"{where}.name must be a string, got {self.name!r}")
        for name in ("factor_names", "label_names", "factor_sizes"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) > 10_000:
                raise ConfigError(f"{where}.{name} must be a list, got {value!r}"[:200])
            for item in value:
                if name == "factor_sizes":
                    _check_int(where, "factor_sizes[]", item, 1, 10**9)
                elif not isinstance(item, str):
                    raise ConfigError(f"{where}.{name} must list strings, got {item!r}"[:200])

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        info = _from_dict(cls, data, "dataset")
        if len(info.factor_names) != len(info.factor_sizes):
            raise ConfigError("dataset.factor_names and dataset.factor_sizes differ in length")
        return info


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything in a model folder's config.json."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dataset: DatasetInfo = field(default_factory=lambda: DatasetInfo(name="dsprites"))
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        trains = kinds.objective(self.train.objective).kind
        if trains != self.model.kind:
            raise ConfigError(f"train.objective {self.train.objective!r} trains a {trains} network, but model.kind "
                              f"is {self.model.kind!r}")
        if self.model.condition_adversary != (self.train.adversary > 0):
            raise ConfigError(f"model.condition_adversary={self.model.condition_adversary} and train.adversary="
                              f"{self.train.adversary:g} disagree: a cvae has an adversary exactly when its weight "
                              "is above 0")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "dataset": self.dataset.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        if not isinstance(data, dict):
            raise ConfigError("config: expected a JSON object")
        unknown = sorted(set(data) - {"format_version", "model", "train", "dataset"})
        if unknown:
            raise ConfigError(f"config: unknown key(s) {unknown}")
        version = data.get("format_version")
        if isinstance(version, bool) or version != FORMAT_VERSION:
            raise ConfigError(f"config: format_version {version!r} is not supported (expected {FORMAT_VERSION})")
        return cls(
            model=ModelConfig.from_dict(data.get("model", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
            dataset=DatasetInfo.from_dict(data.get("dataset", {"name": "unknown"})),
        )
