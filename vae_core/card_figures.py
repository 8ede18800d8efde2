"""The figures a model card carries about its reconstructions: reconstruction and KL over fresh images (each
kind's own figures through its record in `vae_core.kinds`) and sharpness.

Below training and evaluation: `vae_core.train` writes `final` with these, `vae_core.evaluate` `evaluation` and
`sharpness`. Importable without streamlit or umap.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .kinds import kind, objective
from .objectives import gaussian_kl_per_dim, recon_kl_figures, reconstruction_nll

EVAL_SAMPLES = 2048  # the fixed sample behind a training card's final reconstruction and KL
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


@torch.inference_mode()
def reconstruction_and_kl(model, dataset, n: int = EVAL_SAMPLES, seed: int = 12345, batch: int = 256,
                          deterministic: bool = False) -> dict:
    """Mean reconstruction NLL (z sampled, as in the ELBO, and z = mu) and KL per dimension over n fresh images.

    `deterministic` is for a plain autoencoder, whose code is mu alone (its log-variance output is never trained):
    the reconstruction is at z = mu, and the KL uses unit variance (1/2 mu^2), which only ranks the dimensions.
    """
    model.eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    recon_s, recon_m, kl = [], [], []
    for start in range(0, n, batch):
        x = torch.from_numpy(dataset.sample(min(batch, n - start), rng)[0]).to(device)
        mu, logvar = model.encode(x)
        if deterministic:
            logvar = torch.zeros_like(mu)
        lk, std = model.config.likelihood, model.config.gaussian_std
        at_mean = reconstruction_nll(model.decode(mu), x, lk, std).cpu()
        if deterministic:  # z = mu: the sampled reconstruction is the one at the mean
            recon_s.append(at_mean)
        else:
            z = model.reparameterize(mu, logvar, gen.manual_seed(seed + start) if device.type == "cpu" else None)
            recon_s.append(reconstruction_nll(model.decode(z), x, lk, std).cpu())
        recon_m.append(at_mean)
        kl.append(gaussian_kl_per_dim(mu, logvar).cpu())
    figures = recon_kl_figures(recon_s, recon_m, kl, n, seed)
    if deterministic:
        figures["kl_note"] = "an autoencoder: z = mu, and the KL is 1/2 mu^2 per dimension (unit variance), a ranking only"
    return figures


def figures(model, dataset, exp, n: int, seed: int) -> dict:
    """The card's reconstruction figures over n fresh images: the kind's own (`Kind.card_figures`), else the
    reconstruction and KL of a Gaussian-posterior network."""
    own = kind(exp.model.kind).card_figures
    if own is not None:
        return own(model, dataset, exp, n, seed)
    deterministic = objective(exp.train.objective).autoencoder
    return reconstruction_and_kl(model, dataset, n=n, seed=seed, deterministic=deterministic)


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
        if not kind(model.config.kind).continuous_latent:  # a grid of codes: decoded from code grids
            rec = model.decode_indices(model.encode_indices(x).cpu())
            from .models.vqvae import prior_code_grids

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
