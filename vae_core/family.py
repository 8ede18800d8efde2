"""The rest of the VAE family behind one interface: build a model folder's network, train a step, evaluate it.

`ModelConfig.kind` names the network: "vae" (the plain VAE, also the autoencoder and beta-VAE's relatives),
"cvae" (`vae_core.cvae`), "vq-vae" (`vae_core.vqvae`) and "vae-gan" (`vae_core.vaegan`). The training and
evaluation commands and the checkpoint loader ask this module, so each kind trains, ships and loads through the
same folders and commands as the VAE.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import ModelConfig
from .model import VAE

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def build_model(config: ModelConfig) -> torch.nn.Module:
    """The network a model config describes."""
    if config.kind == "cvae":
        from .cvae import CVAE

        return CVAE(config)
    if config.kind == "vq-vae":
        from .vqvae import VQVAE

        return VQVAE(config)
    if config.kind == "vae-gan":
        from .vaegan import VAEGAN

        return VAEGAN(config)
    return VAE(config)


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


def kind_of(model) -> str:
    return getattr(getattr(model, "config", None), "kind", "vae")


def step_terms(net, model, x: torch.Tensor, factors, exp, step: int, gen: torch.Generator, dataset) -> dict:
    """One training batch's loss terms for a family model (kind other than "vae").

    Args:
        factors: what `dataset.sample` returned beside the images (factors or labels), for the condition.
    """
    from .objectives import kl_weight

    t, m = exp.train, exp.model
    if m.kind == "cvae":
        from .cvae import condition_column, cvae_terms

        c = torch.from_numpy(condition_column(dataset, t.condition, factors)).to(x.device)
        terms = cvae_terms(net, x, c, t.beta, kl_weight(step, t.warmup_steps, t.cycles, t.steps), m.likelihood,
                           m.gaussian_std, gen, t.free_bits, t.adversary)
    elif m.kind == "vq-vae":
        from .vqvae import vq_terms

        terms = vq_terms(net, x, t.commitment)
        z_e, indices = terms.pop("z_e"), terms.pop("indices")
        if t.revive_every:
            terms["revived"] = torch.tensor(float(model.quantizer.revive(z_e, indices, t.revive_every, gen)))
    elif m.kind == "vae-gan":
        from .vaegan import vaegan_terms

        terms = vaegan_terms(net, x, gen, t.feature_weight, t.gan_weight, t.beta)
    else:
        raise ValueError(f"model kind {m.kind!r} trains through vae_core.objectives")
    terms.setdefault("kl_weight", torch.tensor(1.0))
    return terms


def figures(model, dataset, exp, n: int, seed: int) -> dict:
    """The card's reconstruction figures over n fresh images (vae_core.train.reconstruction_and_kl for a VAE)."""
    kind = exp.model.kind
    if kind == "cvae":
        from .cvae import cvae_figures

        return cvae_figures(model, dataset, exp.train.condition, n, seed)
    if kind == "vq-vae":
        from .vqvae import vq_figures

        return vq_figures(model, dataset, n, seed)
    from .train import reconstruction_and_kl

    return reconstruction_and_kl(model, dataset, n=n, seed=seed, deterministic=exp.train.objective == "ae")


def laplacian_variance(images: torch.Tensor) -> torch.Tensor:
    """Sharpness of each image: the variance of its Laplacian (of the grey level), (B,). Blur lowers it."""
    grey = images.mean(1, keepdim=True).float()
    lap = F.conv2d(grey, LAPLACIAN.to(grey)[None, None])
    return lap.flatten(1).var(1)


@torch.inference_mode()
def sharpness(model, dataset, n: int = 512, seed: int = 7, batch: int = 128) -> dict:
    """Variance of the Laplacian of reconstructions, of decoded prior samples and of the data itself (the same
    n images), averaged: the closer a model's figure is to the data's, the less it blurs."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    model.eval()
    data, recon, samples = [], [], []
    for start in range(0, n, batch):
        x = torch.from_numpy(dataset.sample(min(batch, n - start), rng)[0]).to(device)
        data.append(laplacian_variance(x).cpu())
        if kind_of(model) == "vq-vae":
            rec = model.decode_indices(model.encode_indices(x).cpu())
            from .vqvae import prior_code_grids

            samp = model.decode_indices(prior_code_grids(model, len(x), seed + start))
        else:
            mu, _ = model.encode(x)
            rec = model.decode_image(mu)
            samp = model.decode_image(torch.randn(mu.shape, generator=gen).to(device))
        recon.append(laplacian_variance(rec).cpu())
        samples.append(laplacian_variance(samp).cpu())
    return {
        "reconstructions": round(torch.cat(recon).mean().item(), 6),
        "samples": round(torch.cat(samples).mean().item(), 6),
        "data": round(torch.cat(data).mean().item(), 6),
        "images": n,
        "seed": seed,
        "measure": "variance of the Laplacian of the grey level (3x3 kernel), mean over images",
    }
