"""The explorer's contract with a model (vae_core.contract): our networks keep it, and a model that breaks a clause
is told which."""

from __future__ import annotations

import pytest
import torch

from vae_core import kinds
from vae_core.config import ModelConfig
from vae_core.contract import ContractError, check_explorable
from vae_core.explore import decode, elbo_terms

from .helpers import TINY


def _network(name: str):
    options = {"condition": "shape", "condition_names": ("a", "b")} if kinds.kind(name).conditional else None
    net = kinds.kind(name).build(ModelConfig(kind=name, latent_dim=3, options=options, **TINY)).eval()
    return net.bound(1) if kinds.kind(name).conditional else net  # pages see a CVAE under its chosen condition


@pytest.mark.parametrize("name", [k.name for k in kinds.KINDS.values() if k.continuous_latent and k.trained_here])
def test_every_kind_with_a_continuous_latent_keeps_the_contract(name):
    torch.manual_seed(0)
    check_explorable(_network(name))


class Adapter(torch.nn.Module):
    """Someone else's model as the contract asks for it, with one clause broken at a time by `fault`."""

    def __init__(self, fault: str | None = None):
        super().__init__()
        self.inner = _network("vae")
        self.config = self.inner.config
        self.fault = fault

    def encode(self, x):
        if self.fault == "raises":
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
        mu, logvar = self.inner.encode(x)
        return (mu[:, :2], logvar) if self.fault == "short latent" else (mu, logvar)

    def decode(self, z):
        logits = self.inner.decode(z)
        return logits * float("nan") if self.fault == "nan" else logits

    def decode_image(self, z):
        image = torch.sigmoid(self.decode(z))
        return image * 255 if self.fault == "0-255" else image

    def encode_decode(self, x):
        mu, logvar = self.encode(x)
        return mu, logvar, self.decode(mu if self.fault != "sampled" else mu + 1.0)


@pytest.mark.parametrize("fault, clause", [
    ("raises", r"encode\(x\) raised RuntimeError: mat1 and mat2"),
    ("short latent", r"encode\(x\)'s mu has shape \(2, 2\); the contract asks for \(2, 3\)"),
    ("nan", "decode\\(mu\\) holds NaN"),
    ("0-255", r"decode_image\(z\) gives values in \[\d+.*a picture's values lie in \[0, 1\]"),
    ("sampled", "encode_decode"),
])
def test_a_broken_clause_is_named(fault, clause):
    check_explorable(Adapter())  # the adapter itself keeps the contract
    with pytest.raises(ContractError, match=clause):
        check_explorable(Adapter(fault))


def test_a_model_without_its_sizes_is_refused():
    adapter = Adapter()
    adapter.config = object()
    with pytest.raises(ContractError, match="image_size, channels, latent_dim"):
        check_explorable(adapter)


def test_the_explorers_functions_need_only_the_contract():
    adapter = Adapter()
    net = adapter.inner
    z = torch.randn(4, 3).numpy()
    assert (decode(adapter, z) == decode(net, z)).all()
    x = decode(net, z)
    assert (elbo_terms(adapter, x)["recon"] == elbo_terms(net, x)["recon"]).all()
