"""The VAE: an encoder to a diagonal Gaussian posterior, a decoder to image logits.

A plain autoencoder is the same network trained without the KL term (objective "ae"): it uses the posterior
mean as its code and ignores the log-variance. beta-VAE and its relatives differ only in their loss
(`vae_core.objectives`), never in the network.
"""

from __future__ import annotations

import torch
from torch import nn

from ..records import Kind
from .nets import Decoder, Encoder


class VAE(nn.Module):
    """Encoder, decoder and the reparameterisation between them."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters.

        Args:
            x: (B, C, H, W) images in [0, 1].

        Returns:
            mu, logvar: each (B, latent_dim).
        """
        self.check_input(x)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder logits (B, C, H, W) for latents z: (B, latent_dim)."""
        return self.decoder(z)

    def decode_image(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded images (B, C, H, W) in [0, 1]: the likelihood's mean."""
        return torch.sigmoid(self.decode(z))

    def encode_decode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mu, logvar, logits at mu): an image's code and its reconstruction (vae_core.contract)."""
        mu, logvar = self.encode(x)
        return mu, logvar, self.decode(mu)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) drawn from `generator` so results are reproducible."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, sample: bool = True
    ) -> dict[str, torch.Tensor]:
        """Encode, sample (or take the mean when `sample` is False), decode.

        Returns:
            dict with mu, logvar, z: (B, latent_dim) and logits: (B, C, H, W).
        """
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator) if sample else mu
        return {"mu": mu, "logvar": logvar, "z": z, "logits": self.decode(z)}

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latents from N(0, I): (n, latent_dim)."""
        device = next(self.parameters()).device
        return torch.randn((n, self.latent_dim), generator=generator, device=device)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the expected shape when x does not fit this model."""
        c, s = self.config.channels, self.config.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(
                f"this model takes images of shape (B, {c}, {s}, {s}) "
                f"({'grey' if c == 1 else 'colour'}, {s}x{s}); got {tuple(x.shape)}"
            )


# the plain VAE's record: no options of its own; the autoencoder and every VAE objective train it
KIND = Kind("vae", VAE, title="VAE")
