"""Training objectives as pure functions of tensors, each returning its named terms.

Every objective returns a dict with at least `recon` (nats per image), `kl` (nats per image), `kl_per_dim`
(latent_dim,) and `total` (the scalar to minimise); beta-TCVAE adds `mi`, `tc` and `dwkl`, FactorVAE its critic's
`tc`. All terms are means over the batch. Schedules (KL warm-up, cyclical annealing, capacity) are functions of
the step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .corruption import l1_penalty
from .records import Objective

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per image and dimension: (B, D), closed form."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def reconstruction_nll(
    logits: torch.Tensor, x: torch.Tensor, likelihood: str, gaussian_std: float = 0.1
) -> torch.Tensor:
    """Negative log-likelihood of x under the decoder, in nats per image: (B,).

    Bernoulli: binary cross-entropy with logits, summed over pixels. Gaussian: a fixed-std Gaussian around
    sigmoid(logits), summed over pixels (the std sets how much reconstruction outweighs the KL).
    """
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    elif likelihood == "gaussian":
        mean = torch.sigmoid(logits)
        nll = 0.5 * ((x - mean) / gaussian_std).pow(2) + math.log(gaussian_std) + 0.5 * LOG_2PI
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}; choose bernoulli or gaussian")
    return nll.flatten(1).sum(1)


def kl_weight(step: int, warmup_steps: int = 0, cycles: int = 0, total_steps: int = 1) -> float:
    """Multiplier in [0, 1] on the KL term at `step`.

    Warm-up rises linearly from 0 to 1 over `warmup_steps`. Cyclical annealing (Fu et al. 2019) splits the
    run into `cycles` equal cycles, rising over the first half of each and holding at 1 for the second.
    """
    if cycles > 0:
        period = max(total_steps / cycles, 1.0)
        phase = (step % period) / period
        return min(1.0, 2.0 * phase)
    if warmup_steps > 0:
        return min(1.0, step / warmup_steps)
    return 1.0


def capacity_at(step: int, capacity_max: float, capacity_steps: int) -> float:
    """Burgess et al.'s capacity C in nats, raised linearly from 0 to capacity_max over capacity_steps."""
    return capacity_max * min(1.0, step / capacity_steps)


def _apply_free_bits(kl_per_dim_mean: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Sum over dimensions of max(KL_d, free_bits): dimensions under the floor get no gradient to collapse."""
    if free_bits <= 0:
        return kl_per_dim_mean.sum()
    return torch.clamp(kl_per_dim_mean, min=free_bits).sum()


def ae_loss(logits: torch.Tensor, x: torch.Tensor, likelihood: str, gaussian_std: float = 0.1) -> dict:
    """Plain autoencoder: reconstruction only; the KL is reported as zero."""
    recon = reconstruction_nll(logits, x, likelihood, gaussian_std).mean()
    zeros = torch.zeros(logits.shape[0], device=logits.device)
    return {"recon": recon, "kl": zeros.mean(), "total": recon}


def beta_vae_loss(
    logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    likelihood: str,
    beta: float,  # no default here: each objective's is in vae_core.kinds
    weight: float = 1.0,
    free_bits: float = 0.0,
    gaussian_std: float = 0.1,
) -> dict:
    """VAE (beta = 1) and beta-VAE (Higgins et al. 2017): recon + weight * beta * KL."""
    recon = reconstruction_nll(logits, x, likelihood, gaussian_std).mean()
    kl_per_dim = gaussian_kl_per_dim(mu, logvar).mean(0)
    kl = kl_per_dim.sum()
    total = recon + weight * beta * _apply_free_bits(kl_per_dim, free_bits)
    return {"recon": recon, "kl": kl, "kl_per_dim": kl_per_dim, "total": total}


def capacity_vae_loss(
    logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    likelihood: str,
    gamma: float,
    capacity: float,
    gaussian_std: float = 0.1,
) -> dict:
    """Capacity-annealed beta-VAE (Burgess et al. 2018): recon + gamma * |KL - C|."""
    recon = reconstruction_nll(logits, x, likelihood, gaussian_std).mean()
    kl_per_dim = gaussian_kl_per_dim(mu, logvar).mean(0)
    kl = kl_per_dim.sum()
    total = recon + gamma * (kl - capacity).abs()
    return {"recon": recon, "kl": kl, "kl_per_dim": kl_per_dim, "total": total, "capacity": torch.tensor(capacity)}


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)); shapes broadcast."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def beta_tcvae_loss(
    logits: torch.Tensor,
    x: torch.Tensor,
    z: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    likelihood: str,
    dataset_size: int,
    beta: float,
    alpha: float = 1.0,
    gamma: float = 1.0,
    weight: float = 1.0,
    gaussian_std: float = 0.1,
) -> dict:
    """beta-TCVAE (Chen et al. 2018) with minibatch-weighted sampling.

    The KL splits into index-code mutual information (mi), total correlation (tc) and dimension-wise KL
    (dwkl); tc is weighted by beta. q(z) is estimated from the minibatch: log q(z_i) ~ logsumexp_j
    log q(z_i | x_j) - log(N * M), with N the dataset size and M the batch size.
    """
    batch = z.shape[0]
    recon = reconstruction_nll(logits, x, likelihood, gaussian_std).mean()
    log_qz_given_x = gaussian_log_density(z, mu, logvar).sum(1)  # (B,)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)  # (B,)
    # (B, B, D): density of sample i under the posterior of image j
    pairwise = gaussian_log_density(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
    log_norm = math.log(batch * dataset_size)
    log_qz = torch.logsumexp(pairwise.sum(2), dim=1) - log_norm
    log_prod_qzi = (torch.logsumexp(pairwise, dim=1) - log_norm).sum(1)
    mi = (log_qz_given_x - log_qz).mean()
    tc = (log_qz - log_prod_qzi).mean()
    dwkl = (log_prod_qzi - log_pz).mean()
    kl_per_dim = gaussian_kl_per_dim(mu, logvar).mean(0)
    total = recon + weight * (alpha * mi + beta * tc + gamma * dwkl)
    return {
        "recon": recon,
        "kl": kl_per_dim.sum(),
        "kl_per_dim": kl_per_dim,
        "mi": mi,
        "tc": tc,
        "dwkl": dwkl,
        "total": total,
    }


def covariance(z: torch.Tensor) -> torch.Tensor:
    """The batch covariance of z (B, D): E[z z^T] - E[z] E[z]^T, (D, D), as disentanglement_lib computes it."""
    mean = z.mean(0)
    return (z.unsqueeze(2) * z.unsqueeze(1)).mean(0) - mean.unsqueeze(1) * mean.unsqueeze(0)


def dip_regulariser(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """lambda_od * sum of the off-diagonal entries squared + lambda_d * sum of (diagonal - 1) squared."""
    diagonal = torch.diagonal(cov)
    off = cov - torch.diag(diagonal)
    return lambda_od * off.pow(2).sum() + lambda_d * (diagonal - 1).pow(2).sum()


def dip_vae_loss(logits, x, mu, logvar, likelihood: str, kind: str, lambda_od: float, lambda_d: float,
                 weight: float = 1.0, gaussian_std: float = 0.1) -> dict:
    """DIP-VAE (Kumar et al. 2018): recon + KL + the DIP regulariser on the aggregate posterior's covariance:
    the covariance of the means (kind "i"), or that plus the mean of the posterior variances on its diagonal
    (kind "ii", the covariance of z itself)."""
    recon = reconstruction_nll(logits, x, likelihood, gaussian_std).mean()
    kl_per_dim = gaussian_kl_per_dim(mu, logvar).mean(0)
    cov = covariance(mu)
    if kind == "ii":
        cov = cov + torch.diag(logvar.exp().mean(0))
    dip = dip_regulariser(cov, lambda_od, lambda_d)
    return {"recon": recon, "kl": kl_per_dim.sum(), "kl_per_dim": kl_per_dim, "dip": dip,
            "total": recon + weight * kl_per_dim.sum() + dip}


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """k(a_i, b_j) = exp(-mean_d (a_id - b_jd)^2 / D): the Gaussian kernel of Zhao et al.'s InfoVAE tutorial."""
    dim = a.shape[1]
    return torch.exp(-(a.unsqueeze(1) - b.unsqueeze(0)).pow(2).mean(2) / dim)


def mmd(z: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """The (biased) maximum mean discrepancy between samples z and prior samples: mean k(z, z) + mean k(p, p)
    - 2 mean k(z, p)."""
    k = gaussian_kernel
    return k(z, z).mean() + k(prior, prior).mean() - 2 * k(z, prior).mean()


def info_vae_loss(logits, x, z, mu, logvar, likelihood: str, beta: float, mmd_weight: float, prior: torch.Tensor,
                  weight: float = 1.0, gaussian_std: float = 0.1) -> dict:
    """InfoVAE (Zhao et al. 2019): recon + beta * KL + mmd_weight * MMD(q(z), p(z)); beta 0 is the MMD-VAE, whose
    latents carry information however small the KL term would have let them (a remedy for posterior collapse)."""
    recon = reconstruction_nll(logits, x, likelihood, gaussian_std).mean()
    kl_per_dim = gaussian_kl_per_dim(mu, logvar).mean(0)
    divergence = mmd(z, prior)
    return {"recon": recon, "kl": kl_per_dim.sum(), "kl_per_dim": kl_per_dim, "mmd": divergence,
            "total": recon + weight * beta * kl_per_dim.sum() + mmd_weight * divergence}


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each latent dimension shuffled across the batch on its own (Kim & Mnih's Algorithm 1, disentanglement_lib's
    `shuffle_codes`): z (B, D) -> (B, D), column d a permutation of z[:, d]. The marginals stay those of q(z); the
    dependence between dimensions is gone, so the permuted batch is a sample of prod_d q(z_d)."""
    order = torch.rand(z.shape, generator=generator, device=z.device).argsort(dim=0)  # (B, D): one permutation a column
    return z.gather(0, order)


def critic_total_correlation(critic_logits: torch.Tensor) -> torch.Tensor:
    """FactorVAE's estimate of TC(z) = KL(q(z) || prod_d q(z_d)) from a critic's two logits (B, 2) on samples of q(z):
    E[log D(z) / (1 - D(z))], D(z) = softmax(logits)[:, 0] the probability that z is an unpermuted sample, which is
    the logits' difference (disentanglement_lib: `logits_z[:, 0] - logits_z[:, 1]`)."""
    return (critic_logits[:, 0] - critic_logits[:, 1]).mean()


def critic_loss(real_logits: torch.Tensor, permuted_logits: torch.Tensor) -> torch.Tensor:
    """The critic's cross-entropy (to minimise): class 0 for samples of q(z), class 1 for permuted ones, each batch
    weighted 1/2 (disentanglement_lib's `discriminator_loss`, negated). Logits: (B, 2) each."""
    return -0.5 * (F.log_softmax(real_logits, 1)[:, 0].mean() + F.log_softmax(permuted_logits, 1)[:, 1].mean())


def factor_vae_loss(logits, x, mu, logvar, critic_logits: torch.Tensor, likelihood: str, gamma: float,
                    beta: float = 1.0, gaussian_std: float = 0.1) -> dict:
    """FactorVAE (Kim & Mnih 2018, Eq. 2): recon + beta * KL + gamma * TC, the TC estimated by a critic's logits
    (B, 2) on z ~ q(z|x) (`critic_total_correlation`); beta is 1 in the paper (the KL warm-up may scale it)."""
    recon = reconstruction_nll(logits, x, likelihood, gaussian_std).mean()
    kl_per_dim = gaussian_kl_per_dim(mu, logvar).mean(0)
    tc = critic_total_correlation(critic_logits)
    return {"recon": recon, "kl": kl_per_dim.sum(), "kl_per_dim": kl_per_dim, "tc": tc,
            "total": recon + beta * kl_per_dim.sum() + gamma * tc}


def compute_loss(
    outputs: dict[str, torch.Tensor],
    x: torch.Tensor,
    model_config,
    train_config,
    step: int,
    dataset_size: int,
) -> dict:
    """The configured objective's terms for one batch, with the schedules in force at `step`.

    Args:
        model_config, train_config: the run's ModelConfig and TrainConfig (vae_core.config).
        outputs: the model's forward pass (mu, logvar, z, logits), of the corrupted batch for a denoising AE.
        x: (B, C, H, W) the clean batch, the reconstruction's target.
    """
    weight = kl_weight(step, train_config.warmup_steps, train_config.cycles, train_config.steps)
    loss = OBJECTIVES[train_config.objective].loss
    if loss is None:
        raise ValueError(f"objective {train_config.objective!r} trains by its kind's own terms (Kind.train_terms)")
    terms = loss(outputs, x, model_config, train_config, step, dataset_size, weight)
    terms["kl_weight"] = torch.tensor(weight)
    return terms


# Each VAE objective's terms with one signature, named by its record below (`Objective.loss`):
# (outputs, x, model config, train config, step, dataset size, KL weight at this step) -> terms.

def ae_terms(outputs, x, m, t, step, dataset_size, weight) -> dict:
    """The autoencoder (and its denoising and sparse variants): the code is mu; L1 on it when sparse."""
    terms = ae_loss(outputs["logits"], x, m.likelihood, m.gaussian_std)
    terms["kl_per_dim"] = gaussian_kl_per_dim(outputs["mu"], outputs["logvar"]).mean(0).detach()
    if t.l1 > 0:  # a sparse autoencoder: L1 on the code (vae_core.corruption)
        terms["l1"] = l1_penalty(outputs["mu"])
        terms["total"] = terms["total"] + t.l1 * terms["l1"]
    return terms


def beta_vae_terms(outputs, x, m, t, step, dataset_size, weight) -> dict:
    return beta_vae_loss(outputs["logits"], x, outputs["mu"], outputs["logvar"], m.likelihood, t.beta, weight,
                         t.free_bits, m.gaussian_std)


def capacity_vae_terms(outputs, x, m, t, step, dataset_size, weight) -> dict:
    capacity = capacity_at(step, t.capacity_max, t.capacity_steps)
    return capacity_vae_loss(outputs["logits"], x, outputs["mu"], outputs["logvar"], m.likelihood, t.gamma,
                             capacity, m.gaussian_std)


DIP_LAMBDA_D_FACTOR = {"i": 10.0, "ii": 1.0}  # disentanglement_lib's lambda_d / lambda_od for each kind


def dip_lambda_d(kind: str, t) -> float:
    """A DIP-VAE's weight of its covariance's diagonal: lambda_od times the train config's factor or the kind's."""
    return (DIP_LAMBDA_D_FACTOR[kind] if t.lambda_d_factor is None else t.lambda_d_factor) * t.lambda_od


def _dip_terms(kind: str):
    def terms(outputs, x, m, t, step, dataset_size, weight) -> dict:
        return dip_vae_loss(outputs["logits"], x, outputs["mu"], outputs["logvar"], m.likelihood, kind, t.lambda_od,
                            dip_lambda_d(kind, t), weight, m.gaussian_std)

    terms.__name__ = f"dip_vae_{kind}_terms"
    return terms


dip_vae_i_terms, dip_vae_ii_terms = _dip_terms("i"), _dip_terms("ii")


def _dip_weights(kind: str):
    def weights(m, t) -> list:
        return [("λ_od", t.lambda_od), ("λ_d", dip_lambda_d(kind, t))]

    return weights


def info_vae_terms(outputs, x, m, t, step, dataset_size, weight) -> dict:
    z = outputs["z"]
    draw = torch.Generator().manual_seed(t.seed * 1_000_003 + step)  # a function of (seed, step), as every draw
    prior = torch.randn(z.shape, generator=draw, dtype=z.dtype).to(z.device)
    return info_vae_loss(outputs["logits"], x, z, outputs["mu"], outputs["logvar"], m.likelihood, t.beta,
                         t.mmd_weight, prior, weight, m.gaussian_std)


def beta_tcvae_terms(outputs, x, m, t, step, dataset_size, weight) -> dict:
    return beta_tcvae_loss(outputs["logits"], x, outputs["z"], outputs["mu"], outputs["logvar"], m.likelihood,
                           dataset_size, t.beta, weight=weight, gaussian_std=m.gaussian_std)


def recon_kl_figures(recon_sampled: list[torch.Tensor], recon_at_mean: list[torch.Tensor], kl: list[torch.Tensor],
                     n: int, seed: int) -> dict:
    """A card's reconstruction and KL figures from per-image batches: recon (z sampled), recon at z = mu, KL."""
    kl_per_dim = torch.cat(kl).mean(0)
    recon = torch.cat(recon_sampled).mean().item()
    return {
        "recon": recon,
        "recon_at_mean": torch.cat(recon_at_mean).mean().item(),
        "kl": kl_per_dim.sum().item(),
        "kl_per_dim": [round(v, 5) for v in kl_per_dim.tolist()],
        "elbo": -(recon + kl_per_dim.sum().item()),
        "active_dims": int((kl_per_dim > 0.01).sum().item()),
        "samples": n,
        "seed": seed,
    }


def capacity_weights(m, t) -> list:
    return [("γ", t.gamma), ("C_max", t.capacity_max)]


def info_vae_weights(m, t) -> list:
    return [("β", t.beta), ("MMD weight", t.mmd_weight)]


def factor_vae_weights(m, t) -> list:
    return [("γ", m.options.tc_weight)] + ([("β", t.beta)] if t.beta != 1.0 else [])


# The objectives, each beside its terms; the family kinds' objectives (cvae, vq-vae, vae-gan, factor-vae) train by
# their kind's own terms (`Kind.train_terms`). `default_beta` is the one default of --beta and of `TrainConfig.beta`.
OBJECTIVES = {o.name: o for o in (
    Objective("ae", "vae", default_beta=0.0, has_kl=False, autoencoder=True, iwae=None, loss=ae_terms,
              title="autoencoder"),
    Objective("vae", "vae", default_beta=1.0, has_kl=True, autoencoder=False, iwae="plain", loss=beta_vae_terms,
              title="VAE"),
    Objective("beta-vae", "vae", default_beta=4.0, has_kl=True, autoencoder=False, iwae="plain",
              loss=beta_vae_terms, title="β-VAE"),
    Objective("capacity-vae", "vae", default_beta=1.0, has_kl=True, autoencoder=False, iwae="plain",
              loss=capacity_vae_terms, title="capacity-annealed VAE (AnnealedVAE)", weights=capacity_weights),
    Objective("beta-tcvae", "vae", default_beta=6.0, has_kl=True, autoencoder=False, iwae="plain",
              loss=beta_tcvae_terms, title="β-TCVAE"),
    Objective("dip-vae-i", "vae", default_beta=1.0, has_kl=True, autoencoder=False, iwae="plain",
              loss=dip_vae_i_terms, title="DIP-VAE-I", weights=_dip_weights("i")),
    Objective("dip-vae-ii", "vae", default_beta=1.0, has_kl=True, autoencoder=False, iwae="plain",
              loss=dip_vae_ii_terms, title="DIP-VAE-II", weights=_dip_weights("ii")),
    Objective("info-vae", "vae", default_beta=0.0, has_kl=True, autoencoder=False, iwae="plain",
              loss=info_vae_terms, title="InfoVAE (MMD)", weights=info_vae_weights),
    Objective("cvae", "cvae", default_beta=1.0, has_kl=True, autoencoder=False, iwae="conditional",
              title="conditional VAE"),
    Objective("vq-vae", "vq-vae", default_beta=0.0, has_kl=False, autoencoder=False, iwae=None, title="VQ-VAE"),
    Objective("vae-gan", "vae-gan", default_beta=1.0, has_kl=True, autoencoder=False, iwae=None, title="VAE-GAN"),
    # a VAE network trained beside a critic of its latents with its own optimiser: the critic is the kind's
    # (vae_core.models.factorvae), training-only, so the folder ships the plain VAE's weights; beta is the KL's weight
    Objective("factor-vae", "factor-vae", default_beta=1.0, has_kl=True, autoencoder=False, iwae="plain",
              title="FactorVAE", weights=factor_vae_weights),
    # trained by other code: the explorer knows its encoder and decoder, not how they were trained
    Objective("external", "external", default_beta=0.0, has_kl=False, autoencoder=False, iwae=None,
              title="model from other code"),
)}
