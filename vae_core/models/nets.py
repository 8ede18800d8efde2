"""The standard convolutional encoder and decoder (Burgess et al. 2018 / disentanglement_lib).

Four 4x4 stride-2 convolutions halve the image four times (64 -> 4, or 32 -> 2), a fully connected layer of
`hidden_dim` units follows, and the encoder ends in 2 * latent_dim numbers (mean and log-variance). The
decoder mirrors it with transposed convolutions and returns logits; `torch.sigmoid(logits)` is the image.
"""

from __future__ import annotations

import torch
from torch import nn


def _final_size(config) -> int:
    return config.image_size // 2 ** len(config.conv_channels)


class Encoder(nn.Module):
    """x: (B, C, H, W) in [0, 1] -> (mu, logvar), each (B, latent_dim)."""

    def __init__(self, config):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = config.channels
        for out_ch in config.conv_channels:
            layers += [nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            in_ch = out_ch
        self.convs = nn.Sequential(*layers)
        flat = in_ch * _final_size(config) ** 2
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, config.hidden_dim), nn.ReLU())
        self.head = nn.Linear(config.hidden_dim, 2 * config.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.convs(x))
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """z: (B, latent_dim) -> logits (B, C, H, W)."""

    def __init__(self, config):
        super().__init__()
        widths = list(config.conv_channels)[::-1]  # e.g. 64, 64, 32, 32
        self.start_shape = (widths[0], _final_size(config), _final_size(config))
        flat = widths[0] * _final_size(config) ** 2
        self.fc = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, flat),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        outs = widths[1:] + [config.channels]
        for i, (in_ch, out_ch) in enumerate(zip(widths, outs)):
            layers.append(nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], *self.start_shape)
        return self.deconvs(h)
