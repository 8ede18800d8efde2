"""VAE-GAN (Larsen et al. 2016): a VAE whose decoder is also a GAN's generator.

A discriminator D tells data from reconstructions and from decoded prior samples. Its third convolution's
features give a learned similarity: the reconstruction term compares D's features of x and of its reconstruction
(a Gaussian with unit variance there), beside the pixel likelihood, which this short-budget version keeps for
stability. The decoder also learns to fool D (the non-saturating GAN loss), which is what sharpens its images:
a pixel likelihood alone rewards the blurry average of the plausible images.

    encoder:       KL + recon_pixels + feature_weight * recon_features
    decoder:       recon_pixels + feature_weight * recon_features + gan_weight * GAN_generator
    discriminator: GAN_discriminator only (its weights get no gradient from the other terms)

One optimiser trains all three: the terms that must not move D use a copy of its weights cut from the graph.
The model is a VAE to everything else (encode, decode, the pages); the discriminator ships in the same file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..objectives import gaussian_kl_per_dim, reconstruction_nll
from ..records import Kind, check_float, option
from .vae import VAE


@dataclass(frozen=True)
class VAEGANOptions:
    """A VAE-GAN's own settings (`model.options` of config.json; each a training command option)."""

    gan_weight: float = option(1.0, "weight of the adversarial term for the decoder")
    feature_weight: float = option(1.0, "weight of the discriminator-feature reconstruction term")

    def __post_init__(self):
        check_float("model.options", "gan_weight", self.gan_weight, 0.0, 1e4)
        check_float("model.options", "feature_weight", self.feature_weight, 0.0, 1e4)


class Discriminator(nn.Module):
    """x: (B, C, H, W) -> (logit (B,), features of the third convolution (B, F))."""

    def __init__(self, config):
        super().__init__()
        w = config.conv_channels
        self.lower = nn.Sequential(
            nn.Conv2d(config.channels, w[0], 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w[0], w[1], 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w[1], w[2], 4, 2, 1),
        )
        final = config.image_size // 16
        self.upper = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(w[2], w[3], 4, 2, 1), nn.LeakyReLU(0.2),
                                   nn.Flatten(), nn.Linear(w[3] * final * final, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.lower(x)
        return self.upper(feats).squeeze(1), feats.flatten(1)


class VAEGAN(VAE):
    def __init__(self, config):
        super().__init__(config)
        self.discriminator = Discriminator(config)


def train_terms(net, model, x, factors, exp, step, gen, dataset) -> dict:
    """`Kind.train_terms`."""
    options = exp.model.options
    return vaegan_terms(net, x, gen, options.feature_weight, options.gan_weight, exp.train.beta)


def vaegan_terms(model: VAEGAN, x: torch.Tensor, generator: torch.Generator, feature_weight: float,
                 gan_weight: float, beta: float) -> dict:
    cfg = model.config
    mu, logvar = model.encode(x)
    z = model.reparameterize(mu, logvar, generator)
    logits = model.decode(z)
    x_rec = torch.sigmoid(logits)
    z_p = torch.randn(mu.shape, generator=generator, device=mu.device)
    x_p = model.decode_image(z_p)
    # D seen by the encoder and the decoder: the same weights, cut from the graph so these terms do not train it
    frozen = {k: v.detach() for k, v in model.discriminator.named_parameters()}
    real_logit, d_real_f = model.discriminator(x)  # D's own pass on the data; its features are only a target
    d_rec_logit, d_rec_f = functional_call(model.discriminator, frozen, (x_rec,))
    d_p_logit, _ = functional_call(model.discriminator, frozen, (x_p,))
    recon = reconstruction_nll(logits, x, cfg.likelihood, cfg.gaussian_std).mean()
    feature = 0.5 * (d_rec_f - d_real_f.detach()).pow(2).sum(1).mean()
    kl_per_dim = gaussian_kl_per_dim(mu, logvar).mean(0)
    ones = torch.ones_like(d_rec_logit)
    gan_g = (F.binary_cross_entropy_with_logits(d_rec_logit, ones)
             + F.binary_cross_entropy_with_logits(d_p_logit, ones))
    # D itself: data against detached reconstructions and samples
    fake_logit, _ = model.discriminator(torch.cat([x_rec.detach(), x_p.detach()]))
    disc = (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
            + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
    generator_loss = recon + beta * kl_per_dim.sum() + feature_weight * feature + gan_weight * gan_g
    return {"recon": recon, "kl": kl_per_dim.sum(), "kl_per_dim": kl_per_dim, "feature": feature.detach(),
            "gan": gan_g.detach(), "disc": disc.detach(), "total": generator_loss + disc,
            "generator_loss": generator_loss, "disc_loss": disc}


KIND = Kind("vae-gan", VAEGAN, VAEGANOptions, adversarial=True, train_terms=train_terms, title="VAE-GAN",
            log_columns=("feature", "gan", "disc"))
