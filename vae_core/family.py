"""The rest of the VAE family behind one interface: build a model folder's network, train a step, evaluate it.

`ModelConfig.kind` names the network: "vae" (the plain VAE, also the autoencoder and beta-VAE's relatives),
"cvae" (`vae_core.models.cvae`), "vq-vae" (`vae_core.models.vqvae`) and "vae-gan" (`vae_core.models.vaegan`). The training and
evaluation commands and the checkpoint loader ask this module, so each kind trains, ships and loads through the
same folders and commands as the VAE.
"""

from __future__ import annotations

import torch

from .config import ModelConfig
from .kinds import kind


def build_model(config: ModelConfig) -> torch.nn.Module:
    """The network a model config describes."""
    return kind(config.kind).build(config)


def init_from(model: torch.nn.Module, folder: str) -> list[str]:
    """Copy into `model` every tensor of the model folder `folder` whose name and shape match (a VAE-GAN starts
    from its VAE: encoder and decoder copied, discriminator fresh); returns the names copied.

    Raises:
        CheckpointError: the folder cannot be loaded; ValueError: nothing in it fits this model.
    """
    from .checkpoints import load_model

    source = load_model(folder).model.state_dict()
    own = model.state_dict()
    copied = [k for k, v in source.items() if k in own and own[k].shape == v.shape]
    if not copied:
        raise ValueError(f"{folder}: no weights fit this model")
    model.load_state_dict({**own, **{k: source[k] for k in copied}})
    return copied


def step_terms(net, model, x: torch.Tensor, factors, exp, step: int, gen: torch.Generator, dataset) -> dict:
    """One training batch's loss terms for a kind that trains by its own terms (`Kind.train_terms`; the VAE's
    objectives go through vae_core.objectives).

    Args:
        factors: what `dataset.sample` returned beside the images (factors or labels), for the condition.
    """
    own = kind(exp.model.kind).train_terms
    if own is None:
        raise ValueError(f"model kind {exp.model.kind!r} trains through vae_core.objectives")
    terms = own(net, model, x, factors, exp, step, gen, dataset)
    terms.setdefault("kl_weight", torch.tensor(1.0))
    return terms
