"""The contract between the explorer and a model: all that the pages and `vae_core.explore` may ask of a model with
a continuous latent, whatever code it came from.

A model the explorer can show is anything that encodes images to a latent point and decodes points to images:

| member | what it is |
| --- | --- |
| `config.image_size`, `config.channels` | the images it takes: (N, channels, image_size, image_size) |
| `config.latent_dim` | D, the length of a latent point |
| `config.likelihood`, `config.gaussian_std` | how its decoder's output is scored: "bernoulli", or "gaussian" with that std |
| `encode(x)` | x float32 in [0, 1] -> (mu, logvar), each (N, D): the posterior's mean and log-variance |
| `decode(z)` | z (N, D) -> logits (N, C, H, W); `decode_image(z)` is their sigmoid, the picture in [0, 1] |
| `encode_decode(x)` | (mu, logvar, logits at mu) of one pass: an image's code and its reconstruction |
| `parameters()` | its tensors; the first gives the device to put inputs on |

Our networks (`vae_core.models`: the VAE, the VAE-GAN, and a CVAE bound to one condition) satisfy it; another source
of models (another framework's module, an ONNX pair) is one adapter to it. `check_explorable` tries a model once on a
small batch and names the clause it breaks.
"""

from __future__ import annotations

import numpy as np
import torch

from .records import LIKELIHOODS

TRIAL_BATCH = 2


class ContractError(ValueError):
    """A model that breaks the contract; the message names the clause and what was found."""


@torch.inference_mode()
def check_explorable(model) -> None:
    """Encode and decode a small batch once, checking every clause of the contract; ContractError otherwise.

    The trial inputs are a blank and a random image (a model may reasonably fail on neither)."""
    config = getattr(model, "config", None)
    try:
        size, channels, latent_dim = int(config.image_size), int(config.channels), int(config.latent_dim)
        likelihood = config.likelihood
    except (AttributeError, TypeError, ValueError):
        raise ContractError("config: a model says its image_size, channels, latent_dim and likelihood") from None
    if likelihood not in LIKELIHOODS:
        raise ContractError(f"config.likelihood is {likelihood!r}; the explorer scores {' or '.join(LIKELIHOODS)}")
    try:
        device = next(iter(model.parameters())).device
    except (AttributeError, StopIteration, TypeError):
        device = torch.device("cpu")
    x = torch.rand((TRIAL_BATCH, channels, size, size), generator=torch.Generator().manual_seed(0))
    x[0] = 0.0
    shape = (TRIAL_BATCH, latent_dim)
    mu, logvar = _call("encode(x)", model.encode, x.to(device), count=2)
    for name, value in (("mu", mu), ("logvar", logvar)):
        _tensor(f"encode(x)'s {name}", value, shape)
    logits = _tensor("decode(mu)", _call("decode(z)", model.decode, mu), (TRIAL_BATCH, channels, size, size))
    images = _tensor("decode_image(mu)", _call("decode_image(z)", model.decode_image, mu), tuple(logits.shape))
    if float(images.min()) < 0.0 or float(images.max()) > 1.0:
        raise ContractError(f"decode_image(z) gives values in [{float(images.min()):.3g}, {float(images.max()):.3g}]"
                            "; a picture's values lie in [0, 1]")
    both = _call("encode_decode(x)", model.encode_decode, x.to(device), count=3)
    if not torch.allclose(both[2].float().cpu(), logits.float().cpu(), atol=1e-4, rtol=1e-3):
        raise ContractError("encode_decode(x)'s logits are not decode(mu) of encode(x)'s mu")


def _call(clause: str, function, argument, count: int = 1):
    try:
        out = function(argument)
    except Exception as exc:  # noqa: BLE001  anyone's code: its failure is reported as the clause it broke
        raise ContractError(f"{clause} raised {type(exc).__name__}: {str(exc)[:200]}") from None
    if count > 1 and (not isinstance(out, (tuple, list)) or len(out) != count):
        raise ContractError(f"{clause} returns {count} tensors; got {type(out).__name__}")
    return out


def _tensor(clause: str, value, shape: tuple) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ContractError(f"{clause} is a tensor; got {type(value).__name__}")
    if tuple(value.shape) != tuple(shape):
        raise ContractError(f"{clause} has shape {tuple(value.shape)}; the contract asks for {tuple(shape)}")
    if not bool(np.isfinite(value.float().cpu().numpy()).all()):
        raise ContractError(f"{clause} holds NaN or infinite values")
    return value
