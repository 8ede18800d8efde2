"""VQ-VAE (van den Oord et al. 2017; REFERENCE section 4): a grid of discrete codes instead of a Gaussian latent.

The encoder's three stride-2 convolutions (the first three widths of `conv_channels`) map a 64x64 image to an 8x8
grid (32x32 to 4x4) of `code_dim`-vectors z_e; each is replaced by its nearest of `codebook_size` codebook
vectors e_k, and the decoder mirrors the encoder. The nearest-neighbour step has no gradient, so the decoder's
gradient with respect to z_q is copied onto z_e (straight-through). The loss is

    recon + ||sg[z_e] - e||^2 + commitment * ||z_e - sg[e]||^2      (commitment 0.25 in the paper)

summed over the grid, or, with `vq_ema`, recon + commitment term while the codebook follows exponential moving
averages of the encoder outputs assigned to each code (the paper's appendix). Codes no encoder output has chosen
for `revive_every` steps are moved onto random encoder outputs of the batch ("dead-code revival"), and the
number revived is logged.

The prior over codes is uniform during training (a constant KL of log K per cell), so sampling codes uniformly or
cell by cell from their data frequencies gives images that look nothing like the data: the paper fits an
autoregressive prior (PixelCNN) over the code grid afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..objectives import reconstruction_nll
from ..records import ConfigError, Kind, card_figure, check_float, check_int, option

EMA_DECAY = 0.99
EMA_EPS = 1e-5
MAX_CODEBOOK = 4096
MAX_CODE_DIM = 1024  # as the shared config bounds conv widths: the parameter count before allocation


@dataclass(frozen=True)
class VQOptions:
    """A VQ-VAE's own settings (`model.options` of config.json; each a training command option)."""

    codebook_size: int = option(64, "number of codes K (64: a small codebook dSprites fills)")
    code_dim: int = option(16, "dimension of each code")
    vq_ema: bool = option(False, "update the codebook by exponential moving averages instead of gradients "
                                 "(the paper's appendix)")
    commitment: float = option(0.25, "weight of the commitment loss (0.25: van den Oord et al. 2017)")
    revive_every: int = option(100, "every this many steps, codes unused since are moved onto encoder outputs "
                                    "(0: off)")

    def __post_init__(self):
        where = "model.options"
        check_int(where, "codebook_size", self.codebook_size, 2, MAX_CODEBOOK)
        check_int(where, "code_dim", self.code_dim, 1, MAX_CODE_DIM)
        if not isinstance(self.vq_ema, bool):
            raise ConfigError(f"{where}.vq_ema must be true or false, got {self.vq_ema!r}")
        check_float(where, "commitment", self.commitment, 0.0, 100.0)
        check_int(where, "revive_every", self.revive_every, 0, 10**9)


class CodeError(ValueError):
    """A code grid that does not fit the model: wrong shape or an index outside the codebook."""


def grid_size(config) -> int:
    return config.image_size // 8


class VectorQuantizer(nn.Module):
    """Nearest-codebook-vector quantisation with a straight-through gradient."""

    def __init__(self, num_codes: int, code_dim: int, ema: bool):
        super().__init__()
        self.ema = ema
        init = torch.empty(num_codes, code_dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)
        if ema:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.ones(num_codes))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        # steps since each code was last chosen in training: the dead-code detector (not a weight)
        self.register_buffer("idle_steps", torch.zeros(num_codes))

    @property
    def num_codes(self) -> int:
        return self.codebook.shape[0]

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """Indices (B, G, G) of the nearest code to each vector of z_e: (B, D, G, G)."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)[None]
        return dist.argmin(1).view(z_e.shape[0], z_e.shape[2], z_e.shape[3])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, D, G, G) of indices (B, G, G) in range: from `nearest`, or through `check_codes`."""
        return self.codebook[indices].permute(0, 3, 1, 2)

    def forward(self, z_e: torch.Tensor) -> dict[str, torch.Tensor]:
        indices = self.nearest(z_e)
        z_q = self.lookup(indices)
        # straight-through: the forward value is z_q, the gradient flows to z_e unchanged
        z_st = z_e + (z_q - z_e).detach()
        codebook = (z_q - z_e.detach()).pow(2).flatten(1).sum(1).mean()
        commit = (z_e - z_q.detach()).pow(2).flatten(1).sum(1).mean()
        if self.training and self.ema:
            self._ema_update(z_e.detach(), indices)
        return {"indices": indices, "z_q": z_q, "z_st": z_st, "codebook_loss": codebook, "commitment_loss": commit}

    @torch.no_grad()
    def _ema_update(self, z_e: torch.Tensor, indices: torch.Tensor) -> None:
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        onehot = F.one_hot(indices.flatten(), self.num_codes).type_as(flat)
        self.ema_count.mul_(EMA_DECAY).add_(onehot.sum(0), alpha=1 - EMA_DECAY)
        self.ema_sum.mul_(EMA_DECAY).add_(onehot.t() @ flat, alpha=1 - EMA_DECAY)
        n = self.ema_count.sum()
        count = (self.ema_count + EMA_EPS) / (n + self.num_codes * EMA_EPS) * n  # Laplace smoothing
        self.codebook.copy_(self.ema_sum / count[:, None])

    @torch.no_grad()
    def revive(self, z_e: torch.Tensor, indices: torch.Tensor, after: int, generator: torch.Generator) -> int:
        """Count this batch's use of each code; codes idle for `after` steps move onto random encoder outputs.

        Returns the number of codes revived.
        """
        used = torch.zeros(self.num_codes, dtype=torch.bool, device=indices.device)
        used[indices.flatten()] = True
        self.idle_steps.add_(1).masked_fill_(used, 0)
        dead = (self.idle_steps >= after).nonzero().flatten()
        if after <= 0 or len(dead) == 0:
            return 0
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        pick = torch.randint(0, len(flat), (len(dead),), generator=generator, device=generator.device).to(flat.device)
        self.codebook.data[dead] = flat[pick]
        if self.ema:
            self.ema_sum[dead] = flat[pick]
            self.ema_count[dead] = 1.0
        self.idle_steps[dead] = 0
        return len(dead)


class VQVAE(nn.Module):
    """Convolutional encoder to a code grid, a vector quantiser, a mirrored decoder."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        widths = list(config.conv_channels[:3])
        layers: list[nn.Module] = []
        in_ch = config.channels
        for w in widths:
            layers += [nn.Conv2d(in_ch, w, 4, 2, 1), nn.ReLU()]
            in_ch = w
        options = config.options
        layers += [nn.Conv2d(in_ch, options.code_dim, 1)]
        self.encoder = nn.Sequential(*layers)
        self.quantizer = VectorQuantizer(options.codebook_size, options.code_dim, options.vq_ema)
        back = widths[::-1]
        layers = [nn.Conv2d(options.code_dim, back[0], 3, 1, 1), nn.ReLU()]
        outs = back[1:] + [config.channels]
        for i, (a, b) in enumerate(zip(back, outs)):
            layers.append(nn.ConvTranspose2d(a, b, 4, 2, 1))
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
        self.decoder = nn.Sequential(*layers)

    @property
    def grid(self) -> int:
        return grid_size(self.config)

    @property
    def num_codes(self) -> int:
        return self.config.options.codebook_size

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def check_input(self, x: torch.Tensor) -> None:
        c, s = self.config.channels, self.config.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(f"this model takes images of shape (B, {c}, {s}, {s}); got {tuple(x.shape)}")

    def check_codes(self, indices) -> torch.Tensor:
        """Indices as a (B, G, G) long tensor; CodeError naming the problem otherwise."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        if idx.ndim == 2:
            idx = idx[None]
        g = self.grid
        if idx.ndim != 3 or tuple(idx.shape[1:]) != (g, g):
            raise CodeError(f"a code grid for this model is {g}x{g}; got shape {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.num_codes):
            bad = sorted({int(v) for v in idx.flatten() if not 0 <= int(v) < self.num_codes})[:5]
            raise CodeError(f"code index {', '.join(map(str, bad))} is outside the codebook: this model has codes "
                            f"0..{self.num_codes - 1}")
        return idx

    def encode_grid(self, x: torch.Tensor) -> torch.Tensor:
        """z_e: (B, code_dim, G, G), before quantisation."""
        self.check_input(x)
        return self.encoder(x)

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """The code grid of each image: (B, G, G) indices."""
        return self.quantizer.nearest(self.encode_grid(x))

    def decode_codes(self, z_q: torch.Tensor) -> torch.Tensor:
        """Logits (B, C, H, W) from code vectors (B, code_dim, G, G)."""
        return self.decoder(z_q)

    def decode_indices(self, indices) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] from code grids (B, G, G); CodeError for a bad grid."""
        idx = self.check_codes(indices).to(self.quantizer.codebook.device)
        return torch.sigmoid(self.decode_codes(self.quantizer.lookup(idx)))

    def forward(self, x: torch.Tensor, generator=None, sample: bool = True) -> dict[str, torch.Tensor]:
        z_e = self.encode_grid(x)
        q = self.quantizer(z_e)
        return {**q, "z_e": z_e, "logits": self.decode_codes(q["z_st"])}


def perplexity(indices: torch.Tensor, num_codes: int) -> float:
    """exp(entropy) of the codes' frequencies: the effective number of codes in use (1..num_codes)."""
    counts = torch.bincount(indices.flatten().cpu(), minlength=num_codes).double()
    p = counts / counts.sum()
    return float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))


def vq_terms(model: VQVAE, x: torch.Tensor, commitment: float) -> dict:
    """One batch's loss terms: recon (nats/image), vq (codebook + commitment), perplexity, total."""
    cfg = model.config
    out = model(x)
    recon = reconstruction_nll(out["logits"], x, cfg.likelihood, cfg.gaussian_std).mean()
    vq = commitment * out["commitment_loss"] + (0 if cfg.options.vq_ema else out["codebook_loss"])
    return {"recon": recon, "kl": torch.tensor(0.0), "vq": vq.detach(), "total": recon + vq,
            "perplexity": torch.tensor(perplexity(out["indices"], model.num_codes)), "z_e": out["z_e"],
            "indices": out["indices"]}


def train_terms(net, model, x, factors, exp, step, gen, dataset) -> dict:
    """`Kind.train_terms`: one batch's terms; every `revive_every` steps' unused codes moved onto encoder outputs."""
    options = exp.model.options
    terms = vq_terms(net, x, options.commitment)
    z_e, indices = terms.pop("z_e"), terms.pop("indices")
    if options.revive_every:
        terms["revived"] = torch.tensor(float(model.quantizer.revive(z_e, indices, options.revive_every, gen)))
    return terms


def card_figures(model, dataset, exp, n: int, seed: int) -> dict:
    """`Kind.card_figures`."""
    return vq_figures(model, dataset, n, seed)


@torch.inference_mode()
def vq_figures(model: VQVAE, dataset, n: int, seed: int, batch: int = 256) -> dict:
    """Reconstruction over n fresh images, codebook perplexity and unused codes, and the uniform prior's KL."""
    model.eval()
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    cfg = model.config
    recon, codes = [], []
    for start in range(0, n, batch):
        x = torch.from_numpy(dataset.sample(min(batch, n - start), rng)[0]).to(device)
        idx = model.encode_indices(x)
        logits = model.decode_codes(model.quantizer.lookup(idx))
        recon.append(reconstruction_nll(logits, x, cfg.likelihood, cfg.gaussian_std).cpu())
        codes.append(idx.cpu())
    codes_all = torch.cat(codes)
    counts = torch.bincount(codes_all.flatten(), minlength=model.num_codes)
    kl = model.grid ** 2 * math.log(model.num_codes)  # KL(q || uniform) for a one-hot q: log K per cell
    r = torch.cat(recon).mean().item()
    return {
        "recon": r,
        "recon_at_mean": r,
        "kl": kl,
        "elbo": -(r + kl),
        "perplexity": perplexity(codes_all, model.num_codes),
        "unused_codes": int((counts == 0).sum()),
        "codebook_size": model.num_codes,
        "grid": [model.grid, model.grid],
        "code_counts": counts.tolist(),
        "samples": n,
        "seed": seed,
    }


@torch.inference_mode()
def reconstruct(model: VQVAE, images: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Per-image code grids (B, G, G), reconstructions (B, C, H, W) in [0, 1] and reconstruction NLL (B,) nats."""
    cfg = model.config
    device = next(model.parameters()).device
    parts: dict[str, list] = {"indices": [], "reconstruction": [], "recon": []}
    for start in range(0, len(images), batch_size):
        x = torch.as_tensor(np.ascontiguousarray(images[start: start + batch_size]), dtype=torch.float32).to(device)
        idx = model.encode_indices(x)
        logits = model.decode_codes(model.quantizer.lookup(idx))
        parts["indices"].append(idx)
        parts["reconstruction"].append(torch.sigmoid(logits))
        parts["recon"].append(reconstruction_nll(logits, x, cfg.likelihood, cfg.gaussian_std))
    return {k: torch.cat(v).cpu().numpy() for k, v in parts.items()}


@torch.inference_mode()
def decode_grids(model: VQVAE, grids) -> np.ndarray:
    """Images (B, C, H, W) in [0, 1] of code grids (B, G, G); CodeError for a bad grid."""
    return model.decode_indices(grids).cpu().numpy()


def code_frequencies(counts, num_codes: int) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    if c.shape != (num_codes,) or c.sum() <= 0:
        return np.full(num_codes, 1.0 / num_codes)
    return c / c.sum()


def prior_code_grids(model: VQVAE, n: int, seed: int, frequencies: np.ndarray | None = None) -> np.ndarray:
    """n code grids (n, G, G) drawn cell by cell independently: uniformly over the codebook, or from `frequencies`
    (the codes' frequencies in the data). Neither is a learned prior: cells are drawn without regard to each other."""
    rng = np.random.default_rng(seed)
    g, k = model.grid, model.num_codes
    p = None if frequencies is None else np.asarray(frequencies, dtype=np.float64) / np.sum(frequencies)
    return rng.choice(k, size=(n, g, g), p=p)


def parse_code_grid(text: str, model: VQVAE) -> np.ndarray:
    """A code grid from text: G*G integers separated by commas or spaces (row by row); CodeError otherwise."""
    parts = [p for p in str(text).replace(",", " ").split() if p]
    shown = str(text) if len(str(text)) <= 60 else str(text)[:60] + "..."
    try:
        values = [int(p) if len(p) <= 12 else model.num_codes for p in parts]  # a longer one is out of range anyway
    except ValueError:
        raise CodeError(f"a code grid is {model.grid * model.grid} whole numbers separated by commas; got {shown!r}"
                        ) from None
    if len(values) != model.grid ** 2:
        raise CodeError(f"a code grid for this model has {model.grid}x{model.grid} = {model.grid ** 2} cells; "
                        f"got {len(values)} number{'' if len(values) == 1 else 's'}")
    grid = np.asarray(values, dtype=np.int64).reshape(model.grid, model.grid)
    model.check_codes(grid)
    return grid


def format_code_grid(grid: np.ndarray) -> str:
    return ",".join(str(int(v)) for v in np.asarray(grid).flatten())


def usage(final: dict) -> str:
    """`Kind.usage`: how much of the codebook the codes use."""
    return f"codebook perplexity {final['perplexity']:.1f}, {final['unused_codes']} unused codes"


KIND = Kind("vq-vae", VQVAE, VQOptions, continuous_latent=False, decodes_from_z=False, train_terms=train_terms,
            card_figures=card_figures, log_columns=("vq", "perplexity", "revived"), usage=usage, title="VQ-VAE",
            card_rows=(("codebook perplexity", lambda c: card_figure(c, "perplexity")),
                       ("unused codes", lambda c: card_figure(c, "unused_codes"))))
