import pytest
import torch

from vae_core.config import ModelConfig
from vae_core.models.vae import VAE

from .helpers import TINY


@pytest.mark.parametrize("size, channels", [(64, 1), (64, 3), (32, 1), (32, 3)])
def test_shapes(size, channels):
    model = VAE(ModelConfig(image_size=size, channels=channels, latent_dim=5, **TINY))
    x = torch.rand(2, channels, size, size)
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out["mu"].shape == out["logvar"].shape == out["z"].shape == (2, 5)
    assert out["logits"].shape == x.shape
    image = model.decode_image(out["z"])
    assert image.min() >= 0 and image.max() <= 1


def test_standard_network_size():
    params = sum(p.numel() for p in VAE(ModelConfig()).parameters())
    assert 500_000 < params < 900_000  # REFERENCE section 2: about 0.5 to 0.8 M


def test_wrong_input_is_a_clear_error():
    model = VAE(ModelConfig(**TINY))
    with pytest.raises(ValueError, match=r"\(B, 1, 64, 64\)"):
        model.encode(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="grey"):
        model.encode(torch.rand(2, 1, 32, 32))


def test_sampling_is_reproducible_with_a_generator():
    model = VAE(ModelConfig(**TINY))
    mu, logvar = torch.zeros(3, 10), torch.zeros(3, 10)
    a = model.reparameterize(mu, logvar, torch.Generator().manual_seed(5))
    b = model.reparameterize(mu, logvar, torch.Generator().manual_seed(5))
    c = model.reparameterize(mu, logvar, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
