"""The registry of model kinds and objectives: what each one is and can do, in one record.

Pages and commands ask a record (`kind("cvae").conditional`, `objective("ae").has_kl`), never compare names, so a
new kind is one record here and one network module. This module imports nothing of the project: `config` builds
its choices from it, and the networks (`vae_core.models`, one file per kind) are imported only when `Kind.build` is
called. The records live here rather than at the end of each kind's file because every kind file imports
`config`, which validates against these records: kept apart, nothing imports in a circle.

| kind | network | latent |
| --- | --- | --- |
| vae | `vae_core.models.vae.VAE` (the autoencoder and every VAE objective) | continuous, N(mu, sigma^2) |
| cvae | `vae_core.models.cvae.CVAE` (condition as extra input planes and beside z) | continuous, given a condition |
| vq-vae | `vae_core.models.vqvae.VQVAE` (a grid of codebook indices) | discrete |
| vae-gan | `vae_core.models.vaegan.VAEGAN` (a VAE beside a discriminator) | continuous |
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """A network kind (`ModelConfig.kind`)."""

    name: str
    network: str  # "module:Class", imported when built
    continuous_latent: bool  # a point of latent_dim numbers: sliders, traversals, maps, disentanglement metrics
    decodes_from_z: bool  # the decoder is a function of z alone: exported to ONNX and run in the browser
    conditional: bool  # encoder and decoder also take a condition
    adversarial: bool  # trained beside a discriminator: its sharpness is compared with the plain VAE's
    card_fields: tuple[tuple[str, str], ...] = ()  # card key <- "model.<field>" or "train.<field>" of the config
    # "module:function"s of the kind's own, where it has them (else the VAE's path is taken):
    train_terms: str | None = None  # (net, model, x, factors, exp, step, gen, dataset) -> a batch's loss terms
    card_figures: str | None = None  # (model, dataset, exp, n, seed) -> the card's reconstruction figures

    def build(self, config):
        """The network of a `ModelConfig` of this kind."""
        return resolve(self.network)(config)


def resolve(name: str):
    """The function or class a record names as "module:attribute"."""
    module, attribute = name.split(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Objective:
    """A training objective (`TrainConfig.objective`)."""

    name: str
    kind: str  # the network it trains
    default_beta: float  # the KL weight (TC weight for beta-tcvae) when --beta is not given
    has_kl: bool  # the KL it reports is a figure of the model (an autoencoder's is of an untrained variance)
    autoencoder: bool  # the code is the encoder's mean alone (no sampling, no KL); denoising and sparse variants
    iwae: str | None  # "plain": a Gaussian q(z|x) with a likelihood bound; "conditional": q(z|x, c); None: none
    loss: str | None = None  # "module:function" of its terms (vae_core.objectives); None: the kind's train_terms


KINDS = {k.name: k for k in (
    Kind("vae", "vae_core.models.vae:VAE", continuous_latent=True, decodes_from_z=True, conditional=False,
         adversarial=False),
    Kind("cvae", "vae_core.models.cvae:CVAE", continuous_latent=True, decodes_from_z=False, conditional=True,
         adversarial=False, train_terms="vae_core.models.cvae:train_terms",
         card_figures="vae_core.models.cvae:card_figures",
         card_fields=(("condition", "train.condition"), ("condition_values", "model.condition_names"),
                      ("adversary", "train.adversary"))),
    Kind("vq-vae", "vae_core.models.vqvae:VQVAE", continuous_latent=False, decodes_from_z=False, conditional=False,
         adversarial=False, train_terms="vae_core.models.vqvae:train_terms",
         card_figures="vae_core.models.vqvae:card_figures",
         card_fields=(("codebook_size", "model.codebook_size"), ("code_dim", "model.code_dim"),
                      ("vq_ema", "model.vq_ema"), ("commitment", "train.commitment"),
                      ("revive_every", "train.revive_every"))),
    Kind("vae-gan", "vae_core.models.vaegan:VAEGAN", continuous_latent=True, decodes_from_z=True, conditional=False,
         adversarial=True, train_terms="vae_core.models.vaegan:train_terms",
         card_figures=None,
         card_fields=(("gan_weight", "train.gan_weight"), ("feature_weight", "train.feature_weight"))),
)}

OBJECTIVES = {o.name: o for o in (
    Objective("ae", "vae", default_beta=0.0, has_kl=False, autoencoder=True, iwae=None,
              loss="vae_core.objectives:ae_terms"),
    Objective("vae", "vae", default_beta=1.0, has_kl=True, autoencoder=False, iwae="plain",
              loss="vae_core.objectives:beta_vae_terms"),
    Objective("beta-vae", "vae", default_beta=4.0, has_kl=True, autoencoder=False, iwae="plain",
              loss="vae_core.objectives:beta_vae_terms"),
    Objective("capacity-vae", "vae", default_beta=1.0, has_kl=True, autoencoder=False, iwae="plain",
              loss="vae_core.objectives:capacity_vae_terms"),
    Objective("beta-tcvae", "vae", default_beta=6.0, has_kl=True, autoencoder=False, iwae="plain",
              loss="vae_core.objectives:beta_tcvae_terms"),
    Objective("cvae", "cvae", default_beta=1.0, has_kl=True, autoencoder=False, iwae="conditional"),
    Objective("vq-vae", "vq-vae", default_beta=0.0, has_kl=False, autoencoder=False, iwae=None),
    Objective("vae-gan", "vae-gan", default_beta=1.0, has_kl=True, autoencoder=False, iwae=None),
)}


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


def sharpness_partners(a, b) -> bool:
    """Whether two ExperimentConfigs are a VAE-GAN and the plain VAE it is compared with: the same data at the same
    size, one trained beside a discriminator, the other by the plain VAE objective."""
    if (a.train.dataset, a.model.image_size, a.model.channels) != (b.train.dataset, b.model.image_size,
                                                                   b.model.channels):
        return False
    gan, plain = (a, b) if kind(a.model.kind).adversarial else (b, a)
    return (kind(gan.model.kind).adversarial and not kind(plain.model.kind).adversarial
            and plain.train.objective == "vae" and kind(plain.model.kind).decodes_from_z)


def card_fields(exp) -> dict:
    """The kind's own settings, as a card records them beside the shared ones."""
    out = {}
    for key, path in kind(exp.model.kind).card_fields:
        part, name = path.split(".")
        value = getattr(getattr(exp, part), name)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out
