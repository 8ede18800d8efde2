"""Models from other code: anything that encodes images to a latent point and decodes points to images, explored
through the same contract as ours (`vae_core.contract`). Two ways in, neither of which lets a model folder run code:

- **An ONNX folder**, which runs no Python at all and can come from any framework (`vae_core.onnx_folder`):

      <name>/explorer.json   {"format": "vae-explorer-onnx/1", "image_size": 28, "channels": 1, "latent_dim": 8,
                              "decoder_output": "probabilities" | "logits", "dataset": "<its data, optional>"}
      <name>/encoder.onnx    input "x" (N, C, H, W) float32 in [0, 1] -> output "mu" (N, D) [and "logvar" (N, D)]
      <name>/decoder.onnx    input "z" (N, D) float32 -> output "x" (N, C, H, W)

- **A Python function named by the person who starts the server** (`vae-explorer serve --model pkg.mod:load`,
  `python -m app.serve --model ...`): it returns a module with `encode` and `decode` (`adapt_module`). The code runs
  because that person named it on their own command line; nothing in a folder or a link can name code to run.

Either becomes an `ExternalModel`: the contract's encode / decode / decode_image / encode_decode, with a config (a
`ModelConfig` of kind "external") saying its sizes and likelihood. A missing log-variance is reported as zeros and
`has_logvar` False: the pages then order sliders by the variance of the means rather than a KL, and draw no
likelihood bound. Every way in is checked once on load (`check_explorable`) under a time limit, and named by the
clause it breaks.
"""

from __future__ import annotations

import torch
from torch import nn

from ..records import ConfigError, Kind

IMAGE_SIZES = (8, 256)  # the sizes (in pixels, square) a model from other code may take


def _unbuildable(config):
    raise ConfigError("a model from other code is opened from its ONNX folder or the function named when the "
                      "server starts, never built from a config.json")


class ExternalModel(nn.Module):
    """A model from other code behind the explorer's contract. `encoder(x) -> (mu, logvar or None)` and
    `decoder(z) -> images or logits` are plain callables on tensors (an ONNX session's, or a module's methods)."""

    def __init__(self, config, encoder, decoder, decoder_output: str, has_logvar: bool, source: str):
        super().__init__()
        self.config = config
        self._encoder, self._decoder = encoder, decoder
        self.decoder_output = decoder_output
        self.has_logvar = has_logvar
        self.source = source  # "onnx" or "python": where it came from, in words for the pages
        self._anchor = nn.Parameter(torch.zeros(()), requires_grad=False)  # the contract reads the device from it

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self._encoder(x)
        return mu, (logvar if logvar is not None else torch.zeros_like(mu))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self._decoder(z)
        if self.decoder_output == "logits":
            return out
        p = out.clamp(1e-6, 1 - 1e-6)
        return torch.log(p) - torch.log1p(-p)

    def decode_image(self, z: torch.Tensor) -> torch.Tensor:
        out = self._decoder(z)
        return torch.sigmoid(out) if self.decoder_output == "logits" else out  # checked to lie in [0, 1] on load

    def encode_decode(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        return mu, logvar, self.decode(mu)

    def reparameterize(self, mu, logvar, generator=None):
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(self, x, generator=None, sample: bool = True):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator) if sample else mu
        return {"mu": mu, "logvar": logvar, "z": z, "logits": self.decode(z)}


KIND = Kind("external", _unbuildable, continuous_latent=True, decodes_from_z=True, title="model from other code",
            image_size_range=IMAGE_SIZES, trained_here=False)
