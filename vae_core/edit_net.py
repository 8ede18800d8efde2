"""A counterfactual edit's network (`EditNet`, learned in `vae_core.edits`) and how edits are stored beside a model:
edits.safetensors (every factor's network in 8 bits, keys "<factor>.<parameter>") and edits.json (the model's
weights' SHA-256 and each factor's figures). An edit whose hash is not that of the model's weights is not used.
"""

from __future__ import annotations

import torch
from torch import nn

HIDDEN = 64
SOURCE_HIDDEN, SOURCE_STEPS = 64, 3000  # an edit's reader of the present value: width, steps (held out on
# dsprites-vae: shape 98.9%, scale 97.9%; 32 units and 1,500 steps read 94.2% and 80.9%). One hidden layer by default;
# dsprites-beta-vae's shape needs two of 128 (held out, 60,000 training latents: one of 64 units read 93.2% of the
# shapes right at 3,000 steps, 97.5% at 10,000, 84.8% of the hearts; two of 128 at 6,000 steps 99.9%)

class EditNet(nn.Module):
    """(z, one-hot target value) -> the change to z that gives the factor that value: `depth` hidden layers of
    `hidden` units. With `reads_source` it also reads the factor's present value from z (`source`, a small classifier
    trained on the same latents) and takes it as a second one-hot: a heart turns into a square by another move than
    an ellipse does."""

    def __init__(self, latent_dim: int, values: int, hidden: int = HIDDEN, depth: int = 2, reads_source: bool = False,
                 source_hidden: int = SOURCE_HIDDEN, source_depth: int = 1):
        super().__init__()
        self.values, self.hidden, self.depth, self.reads_source = values, hidden, depth, reads_source
        self.net = _mlp(latent_dim + values * (2 if reads_source else 1), hidden, depth, latent_dim)
        self.source = _mlp(latent_dim, source_hidden, source_depth, values) if reads_source else None

    def read_source(self, z: torch.Tensor) -> torch.Tensor:
        """The factor's present value at each z (n,), as the edit reads it."""
        return self.source(z).argmax(1)

    def forward(self, z: torch.Tensor, value: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        """`source`: the factor's present value (n,), read from z where not given (only used with `reads_source`)."""
        parts = [z, nn.functional.one_hot(value, self.values).float()]
        if self.reads_source:
            parts.append(nn.functional.one_hot(self.read_source(z) if source is None else source, self.values).float())
        return self.net(torch.cat(parts, 1))


def _mlp(inputs: int, hidden: int, depth: int, outputs: int) -> nn.Sequential:
    layers, width = [], inputs
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def as_stored(net: EditNet, latent_dim: int) -> EditNet:
    """The edit as `save_edits` stores it and `stored_edits` loads it back (`packed`, then `unpacked`): what its
    figures measure."""
    return _edit_from(unpacked(packed(net.state_dict())), latent_dim, net.values)


def state_dict_bytes(net: EditNet) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in net.state_dict().items()})


def load_edit(data: bytes, latent_dim: int, values: int) -> EditNet:
    """An edit from safetensors bytes (full precision or `packed`), strictly (its shapes must be those of an edit of
    this model and factor)."""
    from safetensors.torch import load

    return _edit_from(unpacked(load(data)), latent_dim, values)


def _edit_from(tensors: dict, latent_dim: int, values: int) -> EditNet:
    """An EditNet of the architecture the tensors hold (width, depth, reader: see `EditNet`), loaded strictly (where
    a tensor is missing or another shape, the load says so)."""
    def shape_of(part: str, default_hidden: int) -> tuple[int, int]:
        first = tensors.get(f"{part}.0.weight")
        hidden = int(first.shape[0]) if first is not None and first.ndim == 2 else default_hidden
        return hidden, max(1, sum(1 for k in tensors if k.startswith(f"{part}.") and k.endswith(".weight")) - 1)

    (hidden, depth), (source_hidden, source_depth) = shape_of("net", HIDDEN), shape_of("source", SOURCE_HIDDEN)
    net = EditNet(latent_dim, values, hidden, depth, reads_source=any(k.startswith("source.") for k in tensors),
                  source_hidden=source_hidden, source_depth=source_depth)
    net.load_state_dict(tensors, strict=True)
    return net.eval()


SCALE_SUFFIX = ".row_scale"  # an 8-bit weight's per-row scale is stored under the weight's name with this suffix


def packed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An edit's tensors as stored: each weight matrix in 8 bits, a row's integers times its float16 scale (its
    largest magnitude over 127); biases in float16. A quarter of float32's bytes; the move keeps about 2 of its 3
    significant digits, and the figures measured on the stored edit are those of the unpacked one."""
    out = {}
    for name, v in state.items():
        v = v.detach().float()
        if v.ndim == 2:
            scale = (v.abs().amax(1) / 127).clamp_min(1e-12).half()
            out[name] = torch.round(v / scale.float()[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
            out[name + SCALE_SUFFIX] = scale.contiguous()
        else:
            out[name] = v.half().contiguous()
    return out


def unpacked(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`packed`'s inverse (float32; tensors stored at full or half precision pass as they are)."""
    return {name: v.float() * tensors[name + SCALE_SUFFIX].float()[:, None] if name + SCALE_SUFFIX in tensors
            else v.float() for name, v in tensors.items() if not name.endswith(SCALE_SUFFIX)}


# ---- stored beside a model: edits.safetensors (every factor's network, keys "<factor>.<parameter>") and
# edits.json ({"weights_sha256": of the model's weights, "factors": {factor: {"values": K, "figures": ...}}})

EDITS_WEIGHTS, EDITS_CARD = "edits.safetensors", "edits.json"
MAX_EDITS_BYTES = 4 * 1024 * 1024


def save_edits(folder, nets: dict[str, EditNet], figures: dict[str, dict]) -> None:
    """Write a model folder's edits (atomically), tied to its weights by their SHA-256."""
    import json
    from pathlib import Path

    from safetensors.torch import save

    from .checkpoints import atomic_write_files
    from .export import weights_digest

    folder = Path(folder)
    tensors = {f"{factor}.{k}": v for factor, net in nets.items() for k, v in packed(net.state_dict()).items()}
    card = {"weights_sha256": weights_digest(folder),
            "factors": {factor: {"values": net.values, **figures.get(factor, {})} for factor, net in nets.items()}}
    atomic_write_files({folder / EDITS_WEIGHTS: save(tensors),
                        folder / EDITS_CARD: (json.dumps(card, indent=2, sort_keys=True) + "\n").encode()})


def stored_edits(folder, latent_dim: int, factor_sizes: dict[str, int]) -> tuple[dict[str, EditNet], dict, str | None]:
    """(the edits stored beside a model, their card, why none are used): none when the files are missing, another
    model's (their weights' hash differs), or do not fit this model's latent and factors."""
    import json
    from pathlib import Path

    from safetensors.torch import load

    from .checkpoints import CheckpointError, safe_file
    from .export import weights_digest

    folder = Path(folder)
    if not (folder / EDITS_CARD).exists():
        return {}, {}, None
    try:
        card = json.loads(safe_file(folder, EDITS_CARD, MAX_EDITS_BYTES).read_text())
        if card.get("weights_sha256") != weights_digest(folder):
            return {}, {}, "its stored edits were made for other weights"
        tensors = load(safe_file(folder, EDITS_WEIGHTS, MAX_EDITS_BYTES).read_bytes())
        nets = {}
        for factor, info in card.get("factors", {}).items():
            if factor not in factor_sizes or info.get("values") != factor_sizes[factor]:
                continue
            own = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.split(".", 1)[0] == factor}
            nets[factor] = _edit_from(unpacked(own), latent_dim, factor_sizes[factor])
        return nets, card, None
    except (CheckpointError, OSError, ValueError, RuntimeError, AttributeError, TypeError) as exc:
        return {}, {}, f"its stored edits cannot be read ({str(exc)[:200]})"
