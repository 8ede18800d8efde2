"""A log-likelihood estimate: the importance-weighted bound (Burda, Grosse and Salakhutdinov 2016).

With k samples z_1..z_k from the encoder's q(z | x), the importance weights are w_i = p(x, z_i) / q(z_i | x) and

    L_k(x) = log (1/k) sum_i w_i   <=   log p(x),

with E[L_1] the ELBO and E[L_k] rising towards log p(x) as k grows. This is the field's figure for comparing
VAEs' likelihoods (Burda et al. report k = 5000); here it is in nats per image, and a lower -L_k is a better
model. Under the Bernoulli likelihood on grey (non-binary) pixels, p(x | z) is the usual cross-entropy
convention rather than a normalised density: compare such figures only between models of the same data.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .objectives import gaussian_log_density, reconstruction_nll

DEFAULT_K = 100  # samples per image in the evaluation command
DEFAULT_IMAGES = 1000  # images the evaluation command averages over


@torch.inference_mode()
def log_weights(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                chunk: int = 4096, condition: torch.Tensor | None = None) -> torch.Tensor:
    """log p(x | z_i) + log p(z_i) - log q(z_i | x) for k draws z_i ~ q(z | x) per image: (B, k).

    Args:
        x: (B, C, H, W) images in [0, 1].
        k: samples per image, drawn from `generator` (image-major: the draws for image b are row b).
        chunk: at most this many images are decoded at once.
        condition: a conditional VAE's condition of each image, (B,): both networks are given it, and the
            bound is on log p(x | c).
    """
    if k < 1:
        raise ValueError(f"the importance-weighted bound needs k >= 1 samples, got {k}")
    cfg = model.config
    mu, logvar = model.encode(x) if condition is None else model.encode(x, condition)
    batch, dim = mu.shape
    eps = torch.randn((batch, k, dim), generator=generator, device=mu.device, dtype=mu.dtype)
    z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps  # (B, k, D)
    log_q = gaussian_log_density(z, mu[:, None], logvar[:, None]).sum(-1)
    log_p = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)
    flat_z = z.reshape(batch * k, dim)
    flat_x = x[:, None].expand(batch, k, *x.shape[1:]).reshape(batch * k, *x.shape[1:])
    flat_c = None if condition is None else condition[:, None].expand(batch, k).reshape(batch * k)

    def decoded(i: int) -> torch.Tensor:
        z_i = flat_z[i: i + chunk]
        return model.decode(z_i) if flat_c is None else model.decode(z_i, flat_c[i: i + chunk])

    nll = torch.cat([
        reconstruction_nll(decoded(i), flat_x[i: i + chunk], cfg.likelihood, cfg.gaussian_std)
        for i in range(0, batch * k, chunk)
    ]).reshape(batch, k)
    return -nll + log_p - log_q



def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """L_k per image from its log weights (B, k): logsumexp - log k, in nats: (B,)."""
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


def elbo_estimate(log_w: torch.Tensor) -> torch.Tensor:
    """The Monte-Carlo ELBO from the same samples: the mean log weight per image, (B,)."""
    return log_w.mean(dim=1)


@torch.inference_mode()
def image_bounds(model, images: np.ndarray, k: int = DEFAULT_K, seed: int = 0,
                 batch_size: int | None = None, conditions: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-image IWAE bound and the ELBO estimate from the same k samples, in nats (log p(x) <= iwae).

    Args:
        images: (B, C, H, W) in [0, 1].
        seed: the draws' seed, so the same call gives the same figures.
        conditions: a conditional VAE's condition index of each image, (B,).

    Returns:
        dict of iwae (B,) and elbo (B,).
    """
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(int(seed))
    batch_size = batch_size or max(1, 4096 // k)
    iwae, elbo = [], []
    for start in range(0, len(images), batch_size):
        x = torch.as_tensor(np.ascontiguousarray(images[start: start + batch_size]), dtype=torch.float32)
        c = None if conditions is None else torch.as_tensor(conditions[start: start + batch_size]).to(device)
        log_w = log_weights(model, x.to(device), k, gen, condition=c)
        iwae.append(iwae_bound(log_w).double().cpu())
        elbo.append(elbo_estimate(log_w).double().cpu())
    if not iwae:
        return {"iwae": np.zeros(0), "elbo": np.zeros(0)}
    return {"iwae": torch.cat(iwae).numpy(), "elbo": torch.cat(elbo).numpy()}


def dataset_bound(model, dataset, k: int = DEFAULT_K, n: int = DEFAULT_IMAGES, seed: int = 0,
                  condition: str | None = None) -> dict:
    """The card's likelihood estimate: mean -L_k over n fresh images of the dataset (with `condition`, a
    conditional VAE's bound on -log p(x | c), each image given its true value of that factor or label).

    Returns:
        dict with nll_nats_per_image (mean -L_k, an upper bound on -log p(x) in expectation),
        iwae (mean L_k), elbo_same_samples (mean L_1-style ELBO from the same draws), k, samples
        (images), seed, and the standard error of the mean.
    """
    model.eval()
    rng = np.random.default_rng(seed)
    images, factors = dataset.sample(n, rng)
    conditions = None
    if condition is not None:
        from .models.cvae import condition_column

        conditions = condition_column(dataset, condition, factors)
    bounds = image_bounds(model, images, k, seed, conditions=conditions)
    iwae = bounds["iwae"]
    return {
        "nll_nats_per_image": float(-iwae.mean()),
        "iwae": float(iwae.mean()),
        "elbo_same_samples": float(bounds["elbo"].mean()),
        "stderr": float(iwae.std(ddof=1) / math.sqrt(len(iwae))) if len(iwae) > 1 else 0.0,
        "k": int(k),
        "samples": int(n),
        "seed": int(seed),
        "method": "importance-weighted bound (Burda et al. 2016), q(z|x) as proposal" if condition is None else
                  f"importance-weighted bound (Burda et al. 2016) on -log p(x | {condition}) given the true "
                  f"{condition}, q(z|x, {condition}) as proposal",
    }
