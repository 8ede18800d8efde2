"""FactorVAE (Kim & Mnih 2018), as disentanglement_lib trains it: a VAE beside a critic of its latents.

The critic D (an MLP on z) learns to tell samples of q(z) from samples whose dimensions were shuffled across the
batch apart (`objectives.permute_dims`); its logits' difference on q(z) estimates the total correlation, which the
VAE pays gamma times (`objectives.factor_vae_loss`). Each step, as disentanglement_lib's grouped train ops:

    encoder, decoder: recon + beta * KL + gamma * TC     (the train loop's Adam; D's weights read as constants)
    critic:           cross-entropy, q(z) against permuted z     (its own Adam, lr 1e-4, betas 0.5 and 0.9)

both from the same batch and the critic's weights before either update.

Why a kind and not only an objective: an objective's terms see the forward pass alone, but D has weights and an
optimiser of its own that must step each iteration and resume exactly; a kind's `train_terms` gets the model, and the
model carries D. D is training-only (5 M parameters at the paper's 6 x 1000, 20 MB: over the folder budget's 16 MB
of weights), so it is not a submodule: the network's state dict, the shipped weights and the folder budget are the
plain VAE's, and the app opens the folder as a VAE. D and its Adam travel in the resume file only
(`training_state`, read by vae_core.resume).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.func import functional_call

from ..objectives import critic_loss, factor_vae_loss, kl_weight, permute_dims
from ..records import Kind, check_float, check_int, option
from .vae import VAE

# disentanglement_lib's discriminator optimiser (config/unsupervised_study_v1/model_configs/shared.gin:
# discriminator/AdamOptimizer beta1 0.5, beta2 0.9, epsilon 1e-8, learning_rate 0.0001)
CRITIC_BETAS = (0.5, 0.9)
CRITIC_EPS = 1e-8


@dataclass(frozen=True)
class FactorVAEOptions:
    """A FactorVAE's own settings (`model.options` of config.json; each a training command option)."""

    # gamma: disentanglement_lib has no default (`factor_vae.gamma = gin.REQUIRED`); its study sweeps 10, 20, 30, 40,
    # 50, 100 (config/unsupervised_study_v1/sweep.py) and its training test sets 10: the sweep's first
    tc_weight: float = option(10.0, "gamma, the total correlation's weight (disentanglement_lib sweeps 10 to 100)")
    critic_width: int = option(1000, "units of each hidden layer of the critic (the paper's 1000)")
    critic_layers: int = option(6, "hidden layers of the critic, leaky ReLU 0.2 (the paper's 6)")
    critic_lr: float = option(1e-4, "the critic's Adam learning rate (its betas are 0.5 and 0.9)")

    def __post_init__(self):
        check_float("model.options", "tc_weight", self.tc_weight, 0.0, 1e4)
        check_int("model.options", "critic_width", self.critic_width, 1, 4096)
        check_int("model.options", "critic_layers", self.critic_layers, 1, 16)
        check_float("model.options", "critic_lr", self.critic_lr, 1e-8, 1.0)


def critic_network(latent_dim: int, width: int, layers: int) -> nn.Sequential:
    """z: (B, latent_dim) -> logits (B, 2): class 0 a sample of q(z), class 1 a permuted one. disentanglement_lib's
    `fc_discriminator`: dense layers with leaky ReLU 0.2 and TensorFlow's initialisers (Glorot uniform, zero bias)."""
    blocks: list[nn.Module] = []
    width_in = latent_dim
    for _ in range(layers):
        blocks += [nn.Linear(width_in, width), nn.LeakyReLU(0.2)]
        width_in = width
    net = nn.Sequential(*blocks, nn.Linear(width_in, 2))
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return net


class Critic:
    """The critic and its own Adam: training-only, saved in the resume file and nowhere else."""

    def __init__(self, latent_dim: int, options: FactorVAEOptions, seed: int, device: torch.device):
        with torch.random.fork_rng(devices=[]):  # its first weights a function of the seed, whatever ran before
            torch.manual_seed(seed)
            self.net = critic_network(latent_dim, options.critic_width, options.critic_layers)
        self.net.to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=options.critic_lr, betas=CRITIC_BETAS, eps=CRITIC_EPS)

    def step(self, z: torch.Tensor, permuted: torch.Tensor) -> torch.Tensor:
        """One update on samples of q(z) and their permutation (each (B, D), no graph to the VAE); the loss before it."""
        batch = z.shape[0]
        logits = self.net(torch.cat([z, permuted]))
        loss = critic_loss(logits[:batch], logits[batch:])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if dist.is_available() and dist.is_initialized():  # under torchrun every process keeps the same critic
            for p in self.net.parameters():
                dist.all_reduce(p.grad)
                p.grad /= dist.get_world_size()
        self.opt.step()
        return loss.detach()

    def state(self) -> dict[str, torch.Tensor]:
        """Weights (`net.*`) and Adam's moments and step count (`opt.<param>.<name>`), as CPU copies (a critic loading
        them must not share Adam's tensors, which its steps change in place)."""
        tensors = {f"net.{k}": v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        for idx, values in self.opt.state_dict()["state"].items():
            for name, value in values.items():
                tensors[f"opt.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().clone()
        return tensors

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore `state()`'s tensors exactly (strict: a missing or extra weight is refused)."""
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        self.opt.load_state_dict({"state": state, "param_groups": self.opt.state_dict()["param_groups"]})


class FactorVAE(VAE):
    """A VAE whose training keeps a critic beside it (built by the first training step or a resume, never on load):
    its parameters and state dict are exactly the plain VAE's."""

    def __init__(self, config):
        super().__init__(config)
        self.critic: Critic | None = None  # a plain attribute, not a submodule: never in state_dict or the folder

    def critic_for(self, seed: int) -> Critic:
        if self.critic is None:
            device = next(self.parameters()).device
            self.critic = Critic(self.latent_dim, self.config.options, seed, device)
        return self.critic

    def training_state(self) -> dict[str, torch.Tensor]:
        """What training needs beyond the shipped weights (vae_core.resume saves it): the critic and its Adam."""
        return {} if self.critic is None else self.critic.state()

    def load_training_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if tensors:
            self.critic_for(0).load(tensors)  # the seed is moot: every weight is overwritten


def train_terms(net, model: FactorVAE, x, factors, exp, step, gen, dataset) -> dict:
    """`Kind.train_terms`: the critic's update, then the VAE's terms against the critic as it was before it."""
    m, t = exp.model, exp.train
    critic = model.critic_for(t.seed)
    out = net(x, generator=gen)
    z = out["z"]
    permuted = permute_dims(z.detach(), gen)
    # the VAE's TC reads a copy of D's weights: D's own step below changes them in place before the loop's backward
    frozen = {k: v.detach().clone() for k, v in critic.net.named_parameters()}
    critic_logits = functional_call(critic.net, frozen, (z,))
    disc = critic.step(z.detach(), permuted)
    weight = kl_weight(step, t.warmup_steps, t.cycles, t.steps)
    terms = factor_vae_loss(out["logits"], x, out["mu"], out["logvar"], critic_logits, m.likelihood,
                            m.options.tc_weight, t.beta * weight, m.gaussian_std)
    return {**terms, "disc": disc, "kl_weight": torch.tensor(weight)}


KIND = Kind("factor-vae", FactorVAE, FactorVAEOptions, train_terms=train_terms, title="FactorVAE",
            log_columns=("disc",))
