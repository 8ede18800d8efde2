"""Conditional VAE (Sohn et al. 2015): the encoder and the decoder both see a one-hot condition.

On dSprites conditioned on shape, the condition carries the shape (the "content"), so the latent is free to hold
only position, scale and rotation (the "style"): decoding one z under each condition draws the same placement as
a square, an ellipse and a heart. The encoder sees the condition as extra constant image planes, the decoder as
extra inputs beside z.

A latent that still holds the condition lets the decoder ignore it and redraw the image's own shape whatever the
condition says; the KL saves only log(values) nats for dropping it. With `--adversary W` a small classifier learns
to read the condition from the posterior mean, and the encoder pays W times what it can read (Lample et al.'s
Fader networks, 2017), so the condition has to come from the condition input.

Where no condition is given (pages and metrics that know nothing of conditions), `encode` infers it as the value
whose ELBO is best, the CVAE used as a classifier, and `decode` uses the first value; `bound(c)` is a view of
the same weights that decodes under condition c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..objectives import gaussian_kl_per_dim, recon_kl_figures, reconstruction_nll
from ..records import ConfigError, Kind, card_figure, check_float, option
from .nets import Decoder, Encoder
from .vae import VAE


class ConditionError(ValueError):
    """A condition name or value that does not exist; the message lists those that do."""


@dataclass(frozen=True)
class CVAEOptions:
    """A conditional VAE's own settings (`model.options` of config.json)."""

    condition: str = option("", "the factor (or 'label') to condition on, e.g. shape")
    condition_names: tuple[str, ...] = option((), "the condition's values, one one-hot input each (from the data)",
                                              command=False)
    adversary: float = option(0.0, "weight of the penalty on what a classifier can read of the condition from the "
                                   "latent (0: off; `adversary_terms`)")

    def __post_init__(self):
        where = "model.options"
        if not isinstance(self.condition, str) or not self.condition:
            raise ConfigError(f"{where}.condition: a cvae needs the factor (or 'label') it is conditioned on, got "
                              f"{self.condition!r}")
        if (not isinstance(self.condition_names, tuple) or len(self.condition_names) < 2
                or not all(isinstance(n, str) for n in self.condition_names)):
            raise ConfigError(f"{where}.condition_names: a cvae needs at least 2 condition values, got "
                              f"{self.condition_names!r}"[:300])
        check_float(where, "adversary", self.adversary, 0.0, 1e4)

    @property
    def has_adversary(self) -> bool:
        """Whether the network has the condition adversary (trained beside it; nothing at inference uses it)."""
        return self.adversary > 0


def options_from_command(given: dict, dataset) -> CVAEOptions:
    """The command's --condition and --adversary, with the condition's values read from the data."""
    condition = given.get("condition") or ""
    if not condition:
        raise ConfigError("--objective cvae needs --condition: the factor (or 'label') to condition on")
    return CVAEOptions(condition, condition_values(dataset, condition), given.get("adversary", 0.0))


def condition_values(dataset, name: str) -> tuple[str, ...]:
    """The names of the values of condition `name` (a factor with more than one value, or "label") on dataset.

    Raises:
        ConditionError: listing the factors and labels the dataset has.
    """
    factors = [n for n, s in zip(dataset.factor_names, dataset.factor_sizes) if s > 1]
    labels = tuple(getattr(dataset, "label_names", ()) or ())
    available = factors + (["label"] if labels else [])
    if not available:
        raise ConditionError(f"dataset {dataset.name!r} has no factors or labels to condition on")
    if name == "label" and labels:
        return labels
    if name in factors:
        k = list(dataset.factor_names).index(name)
        names = getattr(dataset, f"{name}_names", None)
        if names is not None and len(names) == dataset.factor_sizes[k]:
            return tuple(str(n) for n in names)
        return tuple(f"{name} {v:g}" for v in dataset.factor_values(k))
    raise ConditionError(f"unknown condition {name!r} for dataset {dataset.name!r}; it has: {', '.join(available)}")


def condition_column(dataset, name: str, factors) -> np.ndarray:
    """The condition's class index of each image: (n,) int64, from what `dataset.sample` returns beside images."""
    condition_values(dataset, name)  # raises for a bad name
    factors = np.asarray(factors)
    if name == "label":
        return factors.reshape(len(factors), -1)[:, 0].astype(np.int64)
    return factors[:, list(dataset.factor_names).index(name)].astype(np.int64)


def condition_index(names: tuple[str, ...], value) -> int:
    """The index of a condition value given by name or index; ConditionError listing the values otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < len(names):
        return int(value)
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, str) and value.strip().isdigit() and int(value) < len(names):
        return int(value)
    raise ConditionError(f"unknown condition value {value!r}; choose one of: {', '.join(names)}")


class CVAE(VAE):
    """A VAE whose encoder and decoder take a one-hot condition c: (B,) class indices."""

    def __init__(self, config):
        nn.Module.__init__(self)
        self.config = config
        k = len(config.options.condition_names)
        # the standard networks, widened by k input planes (encoder) and k inputs beside z (decoder)
        self.encoder = Encoder(SimpleNamespace(**{**config.to_dict(), "channels": config.channels + k}))
        self.decoder = Decoder(SimpleNamespace(**{**config.to_dict(), "latent_dim": config.latent_dim + k}))
        if config.options.has_adversary:  # trained beside the CVAE; nothing at inference uses it
            h = config.hidden_dim
            self.adversary = nn.Sequential(nn.Linear(config.latent_dim, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                           nn.Linear(h, k))

    @property
    def num_conditions(self) -> int:
        return len(self.config.options.condition_names)

    def _one_hot(self, c, batch: int, device) -> torch.Tensor:
        if c is None:
            c = 0
        c = torch.as_tensor(c, device=device, dtype=torch.long)
        if c.ndim == 0:
            c = c.expand(batch)
        if not bool(((c >= 0) & (c < self.num_conditions)).all()):  # one device sync, not two
            raise ConditionError(f"condition index out of range; choose 0..{self.num_conditions - 1} "
                                 f"({', '.join(self.config.options.condition_names)})")
        return nn.functional.one_hot(c, self.num_conditions).float()

    def encode(self, x: torch.Tensor, c=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters given the condition; with c None, under the condition inferred by `infer`."""
        self.check_input(x)
        if c is None:
            c = self.infer_condition(x)
        onehot = self._one_hot(c, x.shape[0], x.device)
        planes = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.encoder(torch.cat([x, planes], dim=1))

    def decode(self, z: torch.Tensor, c=None) -> torch.Tensor:
        """Decoder logits for latents z under condition c (index or (B,) indices; None: the first value)."""
        return self.decoder(torch.cat([z, self._one_hot(c, z.shape[0], z.device)], dim=1))

    def decode_image(self, z: torch.Tensor, c=None) -> torch.Tensor:
        return torch.sigmoid(self.decode(z, c))

    def forward(self, x, c=None, generator=None, sample: bool = True) -> dict[str, torch.Tensor]:
        if c is None:
            c = self.infer_condition(x)
        mu, logvar = self.encode(x, c)
        z = self.reparameterize(mu, logvar, generator) if sample else mu
        return {"mu": mu, "logvar": logvar, "z": z, "logits": self.decode(z, c), "condition": torch.as_tensor(c)}

    def condition_scores(self, x: torch.Tensor) -> torch.Tensor:
        """-ELBO (z at the posterior mean) of each image under each condition: (B, K) nats."""
        lk, std = self.config.likelihood, self.config.gaussian_std
        scores = []
        with torch.no_grad():
            for k in range(self.num_conditions):
                mu, logvar = self.encode(x, k)
                recon = reconstruction_nll(self.decode(mu, k), x, lk, std)
                scores.append(recon + gaussian_kl_per_dim(mu, logvar).sum(1))
        return torch.stack(scores, dim=1)

    def infer_condition(self, x: torch.Tensor) -> torch.Tensor:
        """The condition under which each image's ELBO is best: (B,) indices (the CVAE as a classifier)."""
        return self.condition_scores(x).argmin(1)

    def encode_decode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mu, logvar, logits at mu), all under the inferred condition: a reconstruction."""
        c = self.infer_condition(x)
        mu, logvar = self.encode(x, c)
        return mu, logvar, self.decode(mu, c)

    def bound(self, c) -> BoundCVAE:
        """A view of these weights that decodes under condition c (an index or a value name)."""
        return BoundCVAE(self, condition_index(self.config.options.condition_names, c))


class BoundCVAE(nn.Module):
    """A CVAE with its decoder's condition fixed: to pages and functions that know nothing of conditions it is
    a VAE. It shares the weights (nothing is copied); encoding infers the image's own condition."""

    def __init__(self, cvae: CVAE, condition: int):
        super().__init__()
        self.cvae = cvae
        self.condition = condition
        self.config = cvae.config

    @property
    def latent_dim(self) -> int:
        return self.cvae.latent_dim

    @property
    def condition_name(self) -> str:
        return self.config.options.condition_names[self.condition]

    def encode(self, x):
        return self.cvae.encode(x)

    def decode(self, z):
        return self.cvae.decode(z, self.condition)

    def decode_image(self, z):
        return self.cvae.decode_image(z, self.condition)

    def encode_decode(self, x):
        return self.cvae.encode_decode(x)

    def reparameterize(self, mu, logvar, generator=None):
        return self.cvae.reparameterize(mu, logvar, generator)

    def sample_prior(self, n, generator=None):
        return self.cvae.sample_prior(n, generator)

    def check_input(self, x):
        return self.cvae.check_input(x)

    def forward(self, x, generator=None, sample: bool = True):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator) if sample else mu
        return {"mu": mu, "logvar": logvar, "z": z, "logits": self.decode(z)}


def cvae_terms(model: CVAE, x: torch.Tensor, c: torch.Tensor, beta: float, weight: float, likelihood: str,
               gaussian_std: float, generator=None, free_bits: float = 0.0, adversary: float = 0.0) -> dict:
    """One batch's CVAE loss: recon + weight * beta * KL, both networks given the true condition; with a
    condition adversary, plus `adversary` times what it reads of the condition (`adversary_terms`)."""
    from ..objectives import beta_vae_loss

    out = model(x, c, generator=generator)
    terms = beta_vae_loss(out["logits"], x, out["mu"], out["logvar"], likelihood, beta, weight, free_bits,
                          gaussian_std)
    cvae = getattr(model, "module", model)  # under DistributedDataParallel
    if cvae.config.options.has_adversary:
        extra = adversary_terms(cvae.adversary, out["mu"], c, adversary)
        terms["total"] = terms["total"] + extra.pop("loss")
        terms.update(extra)
    return terms


def train_terms(net, model, x, factors, exp, step, gen, dataset) -> dict:
    """`Kind.train_terms`: one batch's terms, given the condition column of the batch's factors or labels."""
    from ..objectives import kl_weight

    t, m = exp.train, exp.model
    c = torch.from_numpy(condition_column(dataset, m.options.condition, factors)).to(x.device)
    return cvae_terms(net, x, c, t.beta, kl_weight(step, t.warmup_steps, t.cycles, t.steps), m.likelihood,
                      m.gaussian_std, gen, t.free_bits, m.options.adversary)


def card_figures(model, dataset, exp, n: int, seed: int) -> dict:
    """`Kind.card_figures`."""
    return cvae_figures(model, dataset, exp.model.options.condition, n, seed)


def adversary_terms(adversary: nn.Module, mu: torch.Tensor, c: torch.Tensor, weight: float) -> dict:
    """The condition adversary's two losses, as one: {"loss", "leak", "adversary"}.

    The adversary learns to tell the condition from the (detached) posterior mean by cross-entropy ("adversary";
    log(values) when it cannot). The encoder sees the adversary's weights frozen and pays `weight` times "leak",
    the KL from the uniform distribution to the adversary's guess: 0 when the guess is uniform, that is when this
    classifier can read nothing of the condition from the latent.
    """
    frozen = {k: v.detach() for k, v in adversary.named_parameters()}
    log_p = F.log_softmax(functional_call(adversary, frozen, (mu,)), dim=1)
    leak = -log_p.mean(1).mean() - math.log(log_p.shape[1])
    guess = F.cross_entropy(adversary(mu.detach()), c)
    return {"loss": weight * leak + guess, "leak": leak.detach(), "adversary": guess.detach()}


@torch.inference_mode()
def cvae_figures(model: CVAE, dataset, condition: str, n: int, seed: int, batch: int = 256) -> dict:
    """Reconstruction and KL over n fresh images with their true conditions, plus how often the condition the
    model infers (best ELBO) is the true one."""
    model.eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    lk, std = model.config.likelihood, model.config.gaussian_std
    recon_s, recon_m, kl, hits = [], [], [], 0
    for start in range(0, n, batch):
        images, factors = dataset.sample(min(batch, n - start), rng)
        x = torch.from_numpy(images).to(device)
        c = torch.from_numpy(condition_column(dataset, condition, factors)).to(device)
        mu, logvar = model.encode(x, c)
        z = model.reparameterize(mu, logvar, gen if device.type == "cpu" else None)
        recon_s.append(reconstruction_nll(model.decode(z, c), x, lk, std).cpu())
        recon_m.append(reconstruction_nll(model.decode(mu, c), x, lk, std).cpu())
        kl.append(gaussian_kl_per_dim(mu, logvar).cpu())
        hits += int((model.infer_condition(x) == c).sum())
    return {**recon_kl_figures(recon_s, recon_m, kl, n, seed), "condition_accuracy": hits / n}


KIND = Kind("cvae", CVAE, CVAEOptions, decodes_from_z=False, conditional=True, train_terms=train_terms,
            title="conditional VAE",
            card_figures=card_figures, log_columns=("leak", "adversary"), options_from_command=options_from_command,
            card_rows=(("condition accuracy", lambda c: card_figure(c, "condition_accuracy")),
                       ("condition swap accuracy", lambda c: c.get("swap", {}).get("accuracy")),
                       ("condition read from z", lambda c: c.get("leak", {}).get("accuracy"))))
