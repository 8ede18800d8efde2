"""The networks, one file per model kind, with the blocks they share apart (diffusers' layout).

| file | kind | what it is |
| --- | --- | --- |
| `nets.py` | (shared) | the convolutional `Encoder` and `Decoder` every kind builds on |
| `vae.py` | vae | `VAE`: a diagonal Gaussian posterior; the autoencoder and every VAE objective train it |
| `cvae.py` | cvae | `CVAE`: the condition as extra input planes and beside z; its training terms |
| `vqvae.py` | vq-vae | `VQVAE`: a grid of discrete code indices; its training terms and prior |
| `vaegan.py` | vae-gan | `VAEGAN`: a VAE beside a discriminator; its training terms |
| `factorvae.py` | factor-vae | `FactorVAE`: a VAE beside a training-only critic of its latents; its training terms |

What each kind is and can do (continuous latent, decodes from z alone, conditional, ...) is its record in
`vae_core.kinds`; build a config's network with `vae_core.family.build_model`.
"""

from .cvae import CVAE
from .factorvae import FactorVAE
from .vae import VAE
from .vaegan import VAEGAN
from .vqvae import VQVAE

__all__ = ["CVAE", "VAE", "VAEGAN", "VQVAE", "FactorVAE"]
