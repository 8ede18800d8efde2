"""The registry of model kinds and objectives: what each one is and can do, asked by name.

Pages and commands ask a record (`kind("cvae").conditional`, `objective("ae").has_kl`), never compare names. Each
kind lives in its own file, `vae_core/models/<kind>.py`, which ends with its record (`KIND`): its network, its own
options, its training terms, card figures and log columns; the objectives' records stand beside their loss terms in
`vae_core.objectives`. A new kind is its file and one name in the import and the tuple below.

| kind | network | latent |
| --- | --- | --- |
| vae | `vae_core.models.vae.VAE` (the autoencoder and every VAE objective) | continuous, N(mu, sigma^2) |
| cvae | `vae_core.models.cvae.CVAE` (condition as extra input planes and beside z) | continuous, given a condition |
| vq-vae | `vae_core.models.vqvae.VQVAE` (a grid of discrete code indices) | discrete |
| vae-gan | `vae_core.models.vaegan.VAEGAN` (a VAE beside a discriminator) | continuous |
| factor-vae | `vae_core.models.factorvae.FactorVAE` (a VAE; a training-only critic of z beside it) | continuous |
"""

from __future__ import annotations

from .models import cvae, external, factorvae, vae, vaegan, vqvae
from .objectives import OBJECTIVES
from .records import Kind, Objective

KINDS: dict[str, Kind] = {k.name: k for k in (vae.KIND, cvae.KIND, vqvae.KIND, vaegan.KIND, factorvae.KIND,
                                               external.KIND)}

__all__ = ["KINDS", "OBJECTIVES", "Kind", "Objective", "kind", "log_columns", "objective", "sharpness_partners"]


def kind(name: str) -> Kind:
    """The record of a kind; a name not in the registry is refused with the list of those that are."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model kind {name!r}; known kinds: {', '.join(KINDS)}") from None


def objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown objective {name!r}; known objectives: {', '.join(OBJECTIVES)}") from None


def weights_text(config) -> str:
    """The weights that set an ExperimentConfig's objective apart, as people read them: "β = 4", "γ = 40", "λ_od =
    10, λ_d = 100"; "" for an objective with none (an autoencoder, a VQ-VAE, a model from other code)."""
    record = objective(config.train.objective)
    if record.weights is not None:
        pairs = record.weights(config.model, config.train)
    else:
        pairs = [("β", config.train.beta)] if record.has_kl else []
    return ", ".join(f"{symbol} = {value:g}" for symbol, value in pairs)


def log_columns() -> tuple[str, ...]:
    """Every kind's own training.csv columns, in registry order (a column appears once)."""
    return tuple(dict.fromkeys(column for k in KINDS.values() for column in k.log_columns))


def sharpness_partners(a, b) -> bool:
    """Whether two ExperimentConfigs are a VAE-GAN and the plain VAE it is compared with: the same data at the same
    size, one trained beside a discriminator, the other by the plain VAE objective."""
    if (a.train.dataset, a.model.image_size, a.model.channels) != (b.train.dataset, b.model.image_size,
                                                                   b.model.channels):
        return False
    gan, plain = (a, b) if kind(a.model.kind).adversarial else (b, a)
    return (kind(gan.model.kind).adversarial and not kind(plain.model.kind).adversarial
            and plain.train.objective == "vae" and kind(plain.model.kind).decodes_from_z)
