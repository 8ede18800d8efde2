"""Model and training configuration: dataclasses that validate themselves and reject unknown keys.

A config is read from a model folder someone may have sent you, so every value is checked *before* any
network is built: an absurd size is refused here, not discovered as an out-of-memory error later.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import kinds
from .corruption import CORRUPTIONS
from .records import LIKELIHOODS, ConfigError, check_choice, check_float, check_int, options_dict

__all__ = ["LIKELIHOODS", "ConfigError", "DatasetInfo", "ExperimentConfig", "ModelConfig", "TrainConfig", "check_choice",
           "check_float", "check_int"]

# 2: a kind's own settings in `model.options` (checked by the kind's dataclass, vae_core.records); 1 kept them beside
# the shared fields of every kind, and still loads (`_from_version_1`)
FORMAT_VERSION = 2

IMAGE_SIZES = (32, 64)
CHANNEL_CHOICES = (1, 3)
MAX_LATENT_DIM = 512  # a slider per dimension; more than this is never a model of ours
MAX_WIDTH = 1024  # conv channels and hidden units; bounds the parameter count before allocation


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
    # The network's kind (vae_core.kinds): "vae" (also ae, beta-VAE, ...), "cvae", "vq-vae" or "vae-gan"; its own
    # settings are `options`, the kind's dataclass (a dict is parsed by it; None: the kind's defaults)
    kind: str = "vae"
    options: Any = None

    def __post_init__(self):
        where = "model"
        check_choice(where, "kind", self.kind, tuple(kinds.KINDS))
        record = kinds.kind(self.kind)
        object.__setattr__(self, "options", record.parse_options({} if self.options is None else self.options))
        if record.image_size_range is None:
            check_choice(where, "image_size", self.image_size, IMAGE_SIZES)
        else:
            check_int(where, "image_size", self.image_size, *record.image_size_range)
        check_choice(where, "channels", self.channels, CHANNEL_CHOICES)
        check_int(where, "latent_dim", self.latent_dim, 1, MAX_LATENT_DIM)
        if not isinstance(self.conv_channels, tuple) or len(self.conv_channels) != 4:
            raise ConfigError(f"{where}.conv_channels must list 4 widths, got {self.conv_channels!r}")
        for width in self.conv_channels:
            check_int(where, "conv_channels[i]", width, 1, MAX_WIDTH)
        check_int(where, "hidden_dim", self.hidden_dim, 1, 4 * MAX_WIDTH)
        check_choice(where, "likelihood", self.likelihood, LIKELIHOODS)
        check_float(where, "gaussian_std", self.gaussian_std, 1e-3, 10.0)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["conv_channels"] = list(self.conv_channels)
        d["options"] = options_dict(self.options)
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
    # weight of the KL (or the total correlation, beta-tcvae); None: the objective's `default_beta`
    # (vae_core.objectives: a beta-vae trains at 4 unless told otherwise), also the command's default
    beta: float | None = None
    gamma: float = 1000.0  # capacity-vae: weight of |KL - C| (Burgess et al. 2018)
    capacity_max: float = 25.0  # capacity-vae: C rises linearly from 0 to this many nats...
    capacity_steps: int = 100_000  # ...over this many steps
    warmup_steps: int = 0  # KL weight rises linearly from 0 to 1 over these steps (0: off)
    cycles: int = 0  # cyclical annealing (Fu et al. 2019): number of warm-up cycles over the run (0: off)
    free_bits: float = 0.0  # floor, in nats, on each dimension's batch-mean KL (Kingma et al. 2016)
    # DIP-VAE (Kumar et al. 2018): weight of the aggregate posterior's covariance off its diagonal (lambda_od) and,
    # times lambda_d_factor, of its diagonal away from 1; None: disentanglement_lib's factor, 10 (I) or 1 (II)
    lambda_od: float = 10.0
    lambda_d_factor: float | None = None
    mmd_weight: float = 1000.0  # info-vae (Zhao et al. 2019): weight of the MMD between q(z) and the prior
    steps: int = 10_000
    batch_size: int = 64  # the literature's batch (REFERENCE section 2)
    lr: float = 5e-4  # the Burgess variant's rate; trains faster than 1e-4 on a small budget
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    # Steps at which Adam's moments are cleared (a warm restart). A run stopped at step k and continued from its
    # shipped weights alone, with no resume file, is exactly a run with a reset at k: this records it.
    optimizer_resets: tuple[int, ...] = ()
    # (step, rate) pairs: from each step on, Adam steps at that rate instead of `lr` (a step decay). A model that
    # has stopped improving at `lr` can be continued at a lower rate; the recipe records from where.
    lr_changes: tuple[tuple[int, float], ...] = ()
    # Denoising and sparse autoencoders (objective "ae" only; vae_core.corruption): the encoder sees a corrupted
    # copy (gaussian noise of std `corruption_level`, or `mask`ing that fraction of pixels) and the loss compares
    # the reconstruction with the clean image; `l1` weights an L1 penalty on the code.
    corruption: str = "none"
    corruption_level: float = 0.0
    l1: float = 0.0
    init_from: str | None = None  # a model folder whose matching weights start this run (e.g. a VAE-GAN from its VAE)

    def __post_init__(self):
        where = "train"
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"{where}.dataset must be a dataset name, got {self.dataset!r}")
        if self.data_root is not None and not isinstance(self.data_root, str):
            raise ConfigError(f"{where}.data_root must be a folder name or null, got {self.data_root!r}")
        check_choice(where, "objective", self.objective, tuple(kinds.OBJECTIVES))
        if self.beta is None:
            object.__setattr__(self, "beta", kinds.objective(self.objective).default_beta)
        check_float(where, "beta", self.beta, 0.0, 1e4)
        check_float(where, "gamma", self.gamma, 0.0, 1e6)
        check_float(where, "capacity_max", self.capacity_max, 0.0, 1e4)
        check_int(where, "capacity_steps", self.capacity_steps, 1, 10**9)
        check_int(where, "warmup_steps", self.warmup_steps, 0, 10**9)
        check_int(where, "cycles", self.cycles, 0, 10**6)
        check_float(where, "free_bits", self.free_bits, 0.0, 100.0)
        check_float(where, "lambda_od", self.lambda_od, 0.0, 1e6)
        if self.lambda_d_factor is not None:
            check_float(where, "lambda_d_factor", self.lambda_d_factor, 0.0, 1e6)
        check_float(where, "mmd_weight", self.mmd_weight, 0.0, 1e8)
        check_int(where, "steps", self.steps, 1, 10**9)
        check_int(where, "batch_size", self.batch_size, 2, 65536)
        check_float(where, "lr", self.lr, 1e-8, 1.0)
        check_int(where, "seed", self.seed, 0, 2**31 - 1)
        check_int(where, "checkpoint_every", self.checkpoint_every, 1, 10**9)
        check_int(where, "log_every", self.log_every, 1, 10**9)
        if not isinstance(self.optimizer_resets, tuple):
            raise ConfigError(f"{where}.optimizer_resets must be a list of steps, got {self.optimizer_resets!r}")
        for reset in self.optimizer_resets:
            check_int(where, "optimizer_resets[]", reset, 1, 10**9)
        if not isinstance(self.lr_changes, tuple):
            raise ConfigError(f"{where}.lr_changes must be a list of [step, rate] pairs, got {self.lr_changes!r}"[:200])
        changes: dict[int, float] = {}
        for change in self.lr_changes:
            if not isinstance(change, (list, tuple)) or len(change) != 2:
                raise ConfigError(f"{where}.lr_changes[] must be a [step, rate] pair, got {change!r}"[:200])
            check_int(where, "lr_changes[].step", change[0], 1, 10**9)
            check_float(where, "lr_changes[].rate", change[1], 1e-8, 1.0)
            if changes.setdefault(change[0], float(change[1])) != float(change[1]):
                raise ConfigError(f"{where}.lr_changes: two rates for step {change[0]}")
        object.__setattr__(self, "lr_changes", tuple(sorted(changes.items())))  # JSON's lists as pairs, in order
        check_choice(where, "corruption", self.corruption, CORRUPTIONS)
        check_float(where, "corruption_level", self.corruption_level, 0.0, 1.0 if self.corruption == "mask" else 10.0)
        check_float(where, "l1", self.l1, 0.0, 1e4)
        if not kinds.objective(self.objective).autoencoder and (self.corruption != "none" or self.l1 > 0):
            raise ConfigError(f"{where}: corruption and l1 (denoising / sparse autoencoders) go with objective "
                              f"'ae', not {self.objective!r}")
        if self.corruption != "none" and self.corruption_level <= 0:
            raise ConfigError(f"{where}.corruption={self.corruption!r} needs a corruption_level above 0")
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from):
            raise ConfigError(f"{where}.init_from must be a model folder, got {self.init_from!r}")

    def lr_at(self, step: int) -> float:
        """The learning rate of the Adam step taken at `step` (the one from weights `step` to `step + 1`)."""
        rate = self.lr
        for start, changed in self.lr_changes:
            if step >= start:
                rate = changed
        return rate

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
                    check_int(where, "factor_sizes[]", item, 1, 10**9)
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
        if isinstance(version, bool) or version not in (1, FORMAT_VERSION):
            raise ConfigError(f"config: format_version {version!r} is not supported (expected {FORMAT_VERSION}, "
                              "or 1)")
        if version == 1:
            data = _from_version_1(data)
        return cls(
            model=ModelConfig.from_dict(data.get("model", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
            dataset=DatasetInfo.from_dict(data.get("dataset", {"name": "unknown"})),
        )


# Version 1 kept every kind's own settings beside the shared ones, in `model` and in `train`, whatever the kind; its
# one setting no kind has now: a CVAE's adversary was also a flag of the network, derived now from its weight.
V1_DERIVED = ("condition_adversary",)


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 config.json as version 2: the kind's own settings moved into `model.options`; the other kinds'
    settings (every version-1 file carries them, at their defaults) dropped. A key that is neither shared nor any
    kind's setting is left in place, to be refused as unknown."""
    parts = {part: data.get(part, {}) for part in ("model", "train")}
    for part, value in parts.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{part}: expected a JSON object, got {type(value).__name__}")
    try:
        record = kinds.kind(parts["model"].get("kind", "vae"))
    except ValueError as exc:
        raise ConfigError(f"model.kind: {exc}") from None
    own = {f.name for f in dataclasses.fields(record.options)}
    every_kinds = {f.name for k in kinds.KINDS.values() for f in dataclasses.fields(k.options)} | set(V1_DERIVED)
    shared = {"model": {f.name for f in dataclasses.fields(ModelConfig)},
              "train": {f.name for f in dataclasses.fields(TrainConfig)}}
    options, moved = {}, {}
    for part, values in parts.items():
        moved[part] = {}
        for key, value in values.items():
            if key in own and key not in shared[part]:
                options[key] = value
            elif key in shared[part] or key not in every_kinds:
                moved[part][key] = value
    moved["model"]["options"] = options
    return {**data, **moved, "format_version": FORMAT_VERSION}
