"""Counterfactual edits: move a latent point so that one generating factor takes a chosen value and the rest stay.

A procedural grid has **twins**: images that differ in one factor only. An edit is a small network per model and
factor, trained on twin pairs with the model's posterior means: (the latent of an image, the target value) -> the
change to its twin's latent. Where a factor lives on one latent the learned change is along that axis alone; where it
is spread (an entangled model) the change spreads too: the edit's move per latent is itself the lesson.

Its figures, on held-out images (a tenth of the grid, never trained on): the share whose edited decode a judge of the
factor reads as the target ("on target"), and the share whose other factors' readings change ("side effects"),
beside the same figures for decoding the true twin's own latent (the ceiling: an edit cannot make a model draw better
than it draws), the attribute vector (the mean latent of the target value minus that of the image's own, White 2016)
and the best single latent (moved to its mean at the target value). Judges are classifiers trained on the data
(`vae_core.condition_eval.train_condition_judge`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

HIDDEN = 64
HELD_OUT_EVERY = 10  # grid images whose index is a multiple of this are held out of training


class EditNet(nn.Module):
    """(z, one-hot target value) -> the change to z that gives the factor that value."""

    def __init__(self, latent_dim: int, values: int, hidden: int = HIDDEN):
        super().__init__()
        self.values = values
        self.net = nn.Sequential(nn.Linear(latent_dim + values, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, latent_dim))

    def forward(self, z: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, nn.functional.one_hot(value, self.values).float()], 1))


@dataclass
class TwinPairs:
    base: np.ndarray  # (n, F) factor classes of the starting images
    value: np.ndarray  # (n,) the target value of the edited factor
    twin: np.ndarray  # (n, F) the base with that factor set to the target


def held_out(dataset, factors: np.ndarray) -> np.ndarray:
    """Whether each grid point is held out of training (a fixed tenth of the grid)."""
    return dataset.factors_to_index(factors) % HELD_OUT_EVERY == 0


def twin_pairs(dataset, factor: str, n: int, rng: np.random.Generator, split: str = "train") -> TwinPairs:
    """n (base, target value, twin) triples; `split` "train" draws bases outside the held-out tenth, "held_out"
    inside it."""
    k = list(dataset.factor_names).index(factor)
    bases = []
    while sum(len(b) for b in bases) < n:
        draw = dataset.sample_factors(4 * n, rng)
        keep = held_out(dataset, draw) == (split == "held_out")
        bases.append(draw[keep])
    base = np.concatenate(bases)[:n]
    value = rng.integers(0, dataset.factor_sizes[k], n)
    twin = base.copy()
    twin[:, k] = value
    return TwinPairs(base, value, twin)


@torch.inference_mode()
def means(model, dataset, factors: np.ndarray, batch: int = 512) -> np.ndarray:
    """Posterior means of the grid images at `factors`."""
    out = [model.encode(torch.from_numpy(dataset.images_from_factors(factors[i:i + batch])))[0]
           for i in range(0, len(factors), batch)]
    return torch.cat(out).numpy()


def train_edit(model, dataset, factor: str, pairs: int = 20_000, steps: int = 3000, seed: int = 0,
               lr: float = 3e-3) -> tuple[EditNet, dict]:
    """An edit of `factor` for `model`, trained on twin pairs of the training part of the grid.

    Returns (the network in eval mode, {"seconds", "pairs", "steps", "final_mse"})."""
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    data = twin_pairs(dataset, factor, pairs, rng)
    z, z_twin = means(model, dataset, data.base), means(model, dataset, data.twin)
    k = list(dataset.factor_names).index(factor)
    torch.manual_seed(seed)
    net = EditNet(z.shape[1], dataset.factor_sizes[k])
    zt, dt, vt = torch.from_numpy(z), torch.from_numpy(z_twin - z), torch.from_numpy(data.value)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    with torch.enable_grad(), torch.inference_mode(False):
        for _ in range(steps):
            i = torch.randint(0, len(zt), (256,), generator=gen)
            loss = ((net(zt[i], vt[i]) - dt[i]) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    net.eval()
    return net, {"seconds": round(time.perf_counter() - began, 1), "pairs": pairs, "steps": steps,
                 "final_mse": round(float(loss.detach()), 5)}


@torch.inference_mode()
def apply_edit(net: EditNet, z: np.ndarray, value: int) -> np.ndarray:
    """The point(s) z (n, D) or (D,) moved so that the edited factor takes `value`."""
    z = np.asarray(z, dtype=np.float32)
    single = z.ndim == 1
    zt = torch.from_numpy(np.atleast_2d(z))
    moved = zt + net(zt, torch.full((len(zt),), int(value), dtype=torch.long))
    return moved[0].numpy() if single else moved.numpy()


def move_per_latent(net: EditNet, model, dataset, factor: str, value: int, n: int = 500, seed: int = 1) -> np.ndarray:
    """The edit's mean absolute move per latent, to `value`, over held-out images: one bar for a factor that lives on
    one latent, many for a spread one."""
    data = twin_pairs(dataset, factor, n, np.random.default_rng(seed), split="held_out")
    z = means(model, dataset, data.base)
    return np.abs(apply_edit(net, z, value) - z).mean(0)


def attribute_vectors(model, dataset, factor: str, n: int = 5000, seed: int = 2) -> np.ndarray:
    """(values, D): the mean latent of each value of the factor over training images (White 2016's vector from one
    value to another is the difference of two rows)."""
    rng = np.random.default_rng(seed)
    base = twin_pairs(dataset, factor, n, rng).base
    k = list(dataset.factor_names).index(factor)
    z = means(model, dataset, base)
    return np.stack([z[base[:, k] == v].mean(0) for v in range(dataset.factor_sizes[k])])


def best_latent(model, dataset, factor: str, n: int = 5000, seed: int = 3) -> tuple[int, np.ndarray]:
    """(the latent whose value tells the factor best, its mean at each value of the factor): moving that one latent
    is "the slider for it", where there is one."""
    means_by_value = attribute_vectors(model, dataset, factor, n, seed)
    spread = means_by_value.std(0)
    d = int(spread.argmax())
    return d, means_by_value[:, d]


@torch.inference_mode()
def judge_readings(judges: dict, images: np.ndarray, batch: int = 500) -> dict[str, np.ndarray]:
    """Each judge's reading (class index) of each image."""
    return {name: torch.cat([judge(torch.from_numpy(images[i:i + batch])).argmax(1)
                             for i in range(0, len(images), batch)]).numpy() for name, judge in judges.items()}


@torch.inference_mode()
def edit_figures(model, dataset, factor: str, judges: dict, net: EditNet | None, target: int, n: int = 500,
                 seed: int = 4, source: np.ndarray | None = None) -> dict:
    """On-target and side-effect shares over n held-out images (`source`: the factor's values they start from, e.g.
    the frowns; default: every value but the target), for the ceiling (the twin's own latent), the edit, the
    attribute vector and the best single latent.

    On target: the judge of `factor` reads `target` in the decode. Side effects: any other judge reads the decode
    differently from how it reads the decode of the image's own latent (what the model draws of it unedited)."""
    from .explore import decode

    k = list(dataset.factor_names).index(factor)
    rng = np.random.default_rng(seed)
    starts = source if source is not None else np.array([v for v in range(dataset.factor_sizes[k]) if v != target])
    pool = twin_pairs(dataset, factor, 8 * n, rng, split="held_out").base
    base = pool[np.isin(pool[:, k], starts)][:n]
    twin = base.copy()
    twin[:, k] = target
    z, z_twin = means(model, dataset, base), means(model, dataset, twin)
    vectors = attribute_vectors(model, dataset, factor)
    d, axis_means = best_latent(model, dataset, factor)
    moved_axis = z.copy()
    moved_axis[:, d] = axis_means[target]
    candidates = {"ceiling (twin's latent)": z_twin,
                  "attribute vector": z + vectors[target] - vectors[base[:, k]],
                  f"best single latent (z{d})": moved_axis}
    if net is not None:
        candidates["edit"] = apply_edit(net, z, target)
    others = [name for name in judges if name != factor]
    own = judge_readings({name: judges[name] for name in others}, decode(model, z))
    out = {}
    for label, points in candidates.items():
        readings = judge_readings(judges, decode(model, points))
        changed = np.zeros(len(points), bool)
        for name in others:
            changed |= readings[name] != own[name]
        out[label] = {"on_target": float((readings[factor] == target).mean()), "side_effects": float(changed.mean())}
    return {"factor": factor, "target": int(target), "images": len(base), "rows": out, "best_latent": d}


def state_dict_bytes(net: EditNet) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in net.state_dict().items()})


def load_edit(data: bytes, latent_dim: int, values: int) -> EditNet:
    """An edit from safetensors bytes, strictly (its shapes must be those of an edit of this model and factor)."""
    from safetensors.torch import load

    net = EditNet(latent_dim, values)
    net.load_state_dict(load(data), strict=True)
    return net.eval()


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
    tensors = {f"{factor}.{k}": v.contiguous() for factor, net in nets.items() for k, v in net.state_dict().items()}
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
            net = EditNet(latent_dim, factor_sizes[factor])
            net.load_state_dict(own, strict=True)
            nets[factor] = net.eval()
        return nets, card, None
    except (CheckpointError, OSError, ValueError, RuntimeError, AttributeError, TypeError) as exc:
        return {}, {}, f"its stored edits cannot be read ({str(exc)[:200]})"


def main(argv: list[str] | None = None) -> int:
    """`python -m vae_core.edits FOLDER --factor mouth ...`: train, measure and store a model's edits."""
    import argparse
    import json

    from .checkpoints import load_model
    from .condition_eval import train_condition_judge
    from .data import get_dataset

    parser = argparse.ArgumentParser(prog="python -m vae_core.edits", description=main.__doc__.split(": ", 1)[1])
    parser.add_argument("folder")
    parser.add_argument("--factor", action="append", required=True, help="a factor of the model's grid (repeatable)")
    parser.add_argument("--target", type=int, action="append", help="the value each factor's figures edit to "
                        "(default: its last)")
    parser.add_argument("--from", dest="sources", action="append", default=None,
                        help="comma-separated values the figures' images start from, per factor (default: all others)")
    parser.add_argument("--judge-steps", type=int, default=1500)
    args = parser.parse_args(argv)
    loaded = load_model(args.folder)
    exp = loaded.config
    data = get_dataset(exp.train.dataset, exp.train.data_root, exp.model.image_size, exp.model.channels)
    judges = {}
    for name, size in zip(data.factor_names, data.factor_sizes):
        if size > 1:
            judges[name], accuracy = train_condition_judge(data, name, steps=args.judge_steps)
            print(f"judge of {name}: {accuracy:.1%} on fresh images", flush=True)
    nets, figures = {}, {}
    for i, factor in enumerate(args.factor):
        net, info = train_edit(loaded.model, data, factor)
        k = list(data.factor_names).index(factor)
        target = (args.target or [])[i] if args.target and i < len(args.target) else data.factor_sizes[k] - 1
        source = np.array([int(v) for v in args.sources[i].split(",")]) if args.sources and i < len(args.sources) \
            else None
        fig = edit_figures(loaded.model, data, factor, judges, net, target, source=source)
        nets[factor], figures[factor] = net, {**info, **fig}
        print(json.dumps({factor: figures[factor]}, indent=1), flush=True)
    save_edits(args.folder, nets, figures)
    print(f"wrote {args.folder}/{EDITS_WEIGHTS} and {EDITS_CARD}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
