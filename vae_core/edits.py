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
(`vae_core.condition_eval.train_condition_judge`, kept by `vae_core.readings.judge`). The network itself and how
edits are stored beside a model: `vae_core.edit_net`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .edit_net import (
    EDITS_CARD,
    EDITS_WEIGHTS,
    HIDDEN,
    SOURCE_HIDDEN,
    SOURCE_STEPS,
    EditNet,
    as_stored,
    save_edits,
    stored_edits,
)
from .edit_recipes import recipe

HELD_OUT_EVERY = 10  # grid images whose index is a multiple of this are held out of training


@dataclass
class TwinPairs:
    base: np.ndarray  # (n, F) factor classes of the starting images
    value: np.ndarray  # (n,) the target value of the edited factor
    twin: np.ndarray  # (n, F) the base with that factor set to the target


def held_out(dataset, factors: np.ndarray) -> np.ndarray:
    """Whether each grid point is held out of training (a fixed tenth of the grid)."""
    return dataset.factors_to_index(factors) % HELD_OUT_EVERY == 0


def twin_pairs(dataset, factor: str, n: int, rng: np.random.Generator, split: str = "train",
               canonical: Callable[[np.ndarray], np.ndarray] | None = None) -> TwinPairs:
    """n (base, target value, twin) triples; `split` "train" draws bases outside the held-out tenth, "held_out"
    inside it. `canonical` (base factors (n, F) -> (n, F)): the look-alike of each base whose twin is taken (see
    `dsprites_canonical`); default the base itself."""
    k = list(dataset.factor_names).index(factor)
    bases = []
    while sum(len(b) for b in bases) < n:
        draw = dataset.sample_factors(4 * n, rng)
        keep = held_out(dataset, draw) == (split == "held_out")
        bases.append(draw[keep])
    base = np.concatenate(bases)[:n]
    value = rng.integers(0, dataset.factor_sizes[k], n)
    twin = (canonical(base) if canonical is not None else base).copy()
    twin[:, k] = value
    return TwinPairs(base, value, twin)


@torch.inference_mode()
def means(model, dataset, factors: np.ndarray, batch: int = 512) -> np.ndarray:
    """Posterior means of the grid images at `factors`."""
    out = [model.encode(torch.from_numpy(dataset.images_from_factors(factors[i:i + batch])))[0]
           for i in range(0, len(factors), batch)]
    return torch.cat(out).numpy()


def fit_edit(z: np.ndarray, z_twin: np.ndarray, value: np.ndarray, values: int, steps: int = 3000,
             hidden: int = HIDDEN, lr: float = 3e-3, batch: int = 256, seed: int = 0, norm: int = 2, depth: int = 2,
             source: np.ndarray | None = None, source_hidden: int = SOURCE_HIDDEN, source_depth: int = 1,
             source_steps: int = SOURCE_STEPS, reader_data: tuple[np.ndarray, np.ndarray] | None = None,
             twin_cost: np.ndarray | None = None) -> tuple[EditNet, dict]:
    """An EditNet fitted to move z (n, D) to z_twin given the target value (n,): least squares on the move
    (`norm` 2) or least absolute deviations (1: where several twins are possible it learns one of them, not their
    mean), Adam with a cosine schedule. z_twin is (n, D), one twin per start, or (n, C, D), C candidate twins per
    start of which the nearest counts (where the start's latent cannot say which twin is meant, as a heart's does
    not say its heading closely, the mean of the twins draws none of them; the nearest lets the edit commit to one),
    each candidate's distance plus its `twin_cost` (C,): a twin further from the start costs more.

    With `source` (n,), the factor's value at each z, the edit reads it: its reader (`source_depth` layers of
    `source_hidden`) is fitted first (cross-entropy, `source_steps`; on `reader_data`, (latents, values), where
    given), the move then learned from the reader's readings, as it is applied (learned from the true values, the
    edits of dsprites-vae missed where the reader misread). Returns (the network in eval mode, {"final_mse": the last
    batch's loss, "source_accuracy": the reader's share right on z, where it reads})."""
    torch.manual_seed(seed)
    net = EditNet(z.shape[1], values, hidden, depth, reads_source=source is not None, source_hidden=source_hidden,
                  source_depth=source_depth)
    zt = torch.from_numpy(z)
    dt = torch.from_numpy((z_twin if z_twin.ndim == 3 else z_twin[:, None]) - z[:, None])  # (n, C, D)
    cost = torch.zeros(dt.shape[1]) if twin_cost is None else torch.as_tensor(twin_cost, dtype=torch.float32)
    vt = torch.from_numpy(np.asarray(value, np.int64))
    st = torch.from_numpy(np.asarray(source, np.int64)) if source is not None else None
    gen = torch.Generator().manual_seed(seed)
    out = {}
    with torch.enable_grad(), torch.inference_mode(False):
        if st is not None:
            rz, rs = (zt, st) if reader_data is None else \
                (torch.from_numpy(reader_data[0]), torch.from_numpy(np.asarray(reader_data[1], np.int64)))
            reader = torch.optim.Adam(net.source.parameters(), lr=lr)
            for _ in range(source_steps):
                i = torch.randint(0, len(rz), (batch,), generator=gen)
                loss = nn.functional.cross_entropy(net.source(rz[i]), rs[i])
                reader.zero_grad()
                loss.backward()
                reader.step()
            with torch.no_grad():
                read = net.read_source(zt)
                out["source_accuracy"] = round(float((read == st).float().mean()), 4)
                st = read
        opt = torch.optim.Adam(net.net.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in range(steps):
            i = torch.randint(0, len(zt), (batch,), generator=gen)
            move = net(zt[i], vt[i], None if st is None else st[i])
            loss = ((move[:, None] - dt[i]).abs().pow(norm).sum(2) + cost).min(1).values.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    return net.eval(), {"final_mse": round(float(loss.detach()), 5), **out}


def twin_groups(dataset, factor: str, groups: int, rng: np.random.Generator,
                canonical: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Training bases with every one of their twins: (factors (groups * V, F), pairs (m, 2) of row indices, from
    image to twin), V the factor's values. Each group's V images are encoded once and give up to V * V ordered
    pairs, V times the pairs per image of `twin_pairs`. With `canonical`, a pair counts only where its twin draws
    the same image as the start's canonical twin (a heart is not a square's twin at any heading). Every image of a
    group keeps the base's heading: turning the group to the base's canonical heading first (as this did before)
    drew three in four hearts within their first quarter turn, and the edit missed the held-out hearts beyond it."""
    k = list(dataset.factor_names).index(factor)
    size = dataset.factor_sizes[k]
    base = twin_pairs(dataset, factor, groups, rng).base
    rows = np.repeat(base, size, axis=0)  # a group's images share every other factor, its heading too
    rows[:, k] = np.tile(np.arange(size), groups)
    offset = np.arange(groups)[:, None, None] * size
    i, j = (offset + np.indices((size, size))[0]).ravel(), (offset + np.indices((size, size))[1]).ravel()
    if canonical is None:
        return rows, np.stack([i, j], 1)
    wanted = canonical(rows[i])
    wanted[:, k] = rows[j, k]
    keep = (canonical(wanted) == canonical(rows[j])).all(1)
    return rows, np.stack([i[keep], j[keep]], 1)


def train_edit(model, dataset, factor: str, pairs: int = 20_000, steps: int = 3000, seed: int = 0,
               lr: float = 3e-3, hidden: int = HIDDEN, canonical: Callable[[np.ndarray], np.ndarray] | None = None,
               grouped: bool = False, depth: int = 2, reads_source: bool = False,
               batch: int = 256,
               candidates: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
               source_hidden: int = SOURCE_HIDDEN, source_depth: int = 1,
               source_steps: int = SOURCE_STEPS) -> tuple[EditNet, dict]:
    """An edit of `factor` for `model`, trained on twin pairs of the training part of the grid (`canonical`: see
    `twin_pairs`). `grouped`: the pairs' `pairs` images are whole groups of twins (`twin_groups`), else
    `pairs` (base, twin) pairs, twice as many images. `candidates` (grouped only; (start factors (m, F), twin
    factors (m, F)) -> ((m, C, F), (C,) each candidate's cost as a share of its median squared latent distance from
    the first candidate of least cost), e.g. `dsprites_heading_candidates`): each pair's twin is the nearest of these
    images' latents, cost added (`fit_edit`), and the reader learns from every image encoded. `depth`, `reads_source`,
    `source_hidden`, `source_depth`: see `EditNet`; `batch`: pairs per step.

    Returns (the network in eval mode, {"seconds", "encode_seconds", "images", "pairs", "steps", "hidden", "depth",
    "final_mse"} and "source_accuracy" where it reads the present value): "seconds" is the whole, encoding the
    pairs' images included."""
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    k = list(dataset.factor_names).index(factor)
    reader_data = twin_cost = None
    if grouped and candidates is not None:
        rows, index = twin_groups(dataset, factor, -(-pairs // dataset.factor_sizes[k]), rng)
        wanted, turned = candidates(rows[index[:, 0]], rows[index[:, 1]])  # (m, C, F), (C,)
        images, inverse = np.unique(np.concatenate([rows, wanted.reshape(-1, rows.shape[1])]), axis=0,
                                    return_inverse=True)
        latents, inverse = means(model, dataset, images), inverse.ravel()
        z = latents[inverse[:len(rows)]][index[:, 0]]
        z_twin = latents[inverse[len(rows):]].reshape(len(index), wanted.shape[1], -1)
        exact = z_twin[:, int(np.argmin(turned))]  # the twin at the start's own heading
        twin_cost = turned * np.median(((z_twin - exact[:, None]) ** 2).sum(2), axis=0)  # as far as it lies, typically
        value, source, reader_data, images = rows[index[:, 1], k], rows[index[:, 0], k], (latents, images[:, k]), \
            len(images)
    elif grouped:
        rows, index = twin_groups(dataset, factor, -(-pairs // dataset.factor_sizes[k]), rng, canonical)
        latents = means(model, dataset, rows)
        z, z_twin, images = latents[index[:, 0]], latents[index[:, 1]], len(rows)
        value, source = rows[index[:, 1], k], rows[index[:, 0], k]
    else:
        data = twin_pairs(dataset, factor, pairs, rng, canonical=canonical)
        z, z_twin, value, images = means(model, dataset, data.base), means(model, dataset, data.twin), data.value, \
            2 * pairs
        source = data.base[:, k]
    encoded = time.perf_counter()
    net, fit = fit_edit(z, z_twin, value, dataset.factor_sizes[k], steps, hidden, lr, batch=batch, seed=seed,
                        depth=depth, source=source if reads_source else None, source_hidden=source_hidden,
                        source_depth=source_depth, source_steps=source_steps, reader_data=reader_data,
                        twin_cost=twin_cost)
    return net, {"seconds": round(time.perf_counter() - began, 1), "encode_seconds": round(encoded - began, 1),
                 "images": images, "pairs": len(z), "steps": steps, "hidden": hidden, "depth": depth, **fit}


@torch.inference_mode()
def apply_edit(net: EditNet, z: np.ndarray, value) -> np.ndarray:
    """The point(s) z (n, D) or (D,) moved so that the edited factor takes `value` (one, or (n,) one per point)."""
    z = np.asarray(z, dtype=np.float32)
    single = z.ndim == 1
    zt = torch.from_numpy(np.atleast_2d(z))
    moved = zt + net(zt, torch.from_numpy(np.broadcast_to(np.asarray(value, np.int64), (len(zt),)).copy()))
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
def edit_figures(model, dataset, factor: str, readings: dict, net: EditNet | None, target: int | None, n: int = 500,
                 seed: int = 4, source: np.ndarray | None = None) -> dict:
    """On-target and side-effect shares over n held-out images for the ceiling (the twin's own latent), the edit,
    the attribute vector and the best single latent.

    Args:
        readings: factor -> a `vae_core.readings.Reading` or a judge (a classifier, read by its argmax); the factors
            without one (dSprites' orientation) are neither edited nor counted as side effects.
        target: the value every image is edited to (its images start from `source`'s values, default every other
            value), or None: each image to a random value other than its own.

    On target: the factor's reading of the decode shows the image's target. Side effects: another factor's reading
    of the decode differs from its reading of the decode of the image's own latent (what the model draws of it
    unedited)."""
    from .explore import decode
    from .readings import Reading, judge_reading

    readings = {name: r if isinstance(r, Reading) else judge_reading(r) for name, r in readings.items()}
    k = list(dataset.factor_names).index(factor)
    size = dataset.factor_sizes[k]
    rng = np.random.default_rng(seed)
    pool = twin_pairs(dataset, factor, 8 * n, rng, split="held_out").base
    if target is None:
        base = pool[:n]
        targets = (base[:, k] + rng.integers(1, size, len(base))) % size
    else:
        starts = source if source is not None else np.array([v for v in range(size) if v != target])
        base = pool[np.isin(pool[:, k], starts)][:n]
        targets = np.full(len(base), int(target))
    twin = base.copy()
    twin[:, k] = targets
    z, z_twin = means(model, dataset, base), means(model, dataset, twin)
    vectors = attribute_vectors(model, dataset, factor)
    d, axis_means = best_latent(model, dataset, factor)
    moved_axis = z.copy()
    moved_axis[:, d] = axis_means[targets]
    candidates = {"ceiling (twin's latent)": z_twin,
                  "attribute vector": z + vectors[targets] - vectors[base[:, k]],
                  f"best single latent (z{d})": moved_axis}
    if net is not None:
        candidates["edit"] = apply_edit(net, z, targets)
    others = [name for name in readings if name != factor]
    own_images = decode(model, z)
    own = {name: readings[name].read(own_images) for name in others}
    out = {}
    for label, points in candidates.items():
        images = decode(model, points)
        changed = np.zeros(len(points), bool)
        for name in others:
            changed |= ~readings[name].same(readings[name].read(images), own[name])
        hits = readings[factor].hits(readings[factor].read(images), targets)
        out[label] = {"on_target": float(hits.mean()), "side_effects": float(changed.mean())}
    return {"factor": factor, "target": "random" if target is None else int(target), "images": len(base),
            "rows": out, "best_latent": d, "side_effect_factors": others}


CEILING, EDIT = "ceiling (twin's latent)", "edit"
GOAL_ON_TARGET, GOAL_SIDE_EFFECTS = 0.05, 0.02  # the goal: within 5 points of the ceiling, side effects 2


def goal_met(rows: dict) -> bool | None:
    """Whether the edit is within the goal of its ceiling (None without both rows)."""
    try:
        ceiling, edit = rows[CEILING], rows[EDIT]
        return (edit["on_target"] >= ceiling["on_target"] - GOAL_ON_TARGET
                and edit["side_effects"] <= ceiling["side_effects"] + GOAL_SIDE_EFFECTS)
    except (KeyError, TypeError):
        return None


def goals_table(cards: dict[str, dict]) -> str:
    """A Markdown table of stored edits' figures, one row per model and factor: ceiling, edit, attribute vector and
    best single latent as on-target / side effects, and whether the edit meets the goal. `cards`: model name -> its
    edits.json."""

    def cell(figures) -> str:
        try:
            return f"{figures['on_target']:.1%} / {figures['side_effects']:.1%}"
        except (KeyError, TypeError, ValueError):
            return "-"

    lines = ["| model | factor | ceiling (twin's latent) | edit | attribute vector | best single latent | goal |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for model, card in cards.items():
        for factor, info in sorted(card.get("factors", {}).items()):
            rows = info.get("rows", {}) if isinstance(info, dict) else {}
            best = next((label for label in rows if label.startswith("best single latent")), None)
            met = goal_met(rows)
            lines.append(f"| {model} | {factor} | {cell(rows.get(CEILING))} | {cell(rows.get(EDIT))} | "
                         f"{cell(rows.get('attribute vector'))} | {cell(rows.get(best))}"
                         f"{' (' + best.split('(')[-1] if best else ''} | "
                         f"{'-' if met is None else 'met' if met else 'not met'} |")
    return "\n".join(lines)


def shape_edit_turns(folder, n: int = 500, seed: int = 4) -> str:
    """A line on how far a dSprites model's stored shape edit turns the sprite (`edit_recipes.dsprites_turns`) on the
    held-out images of its figures (`edit_figures`' draw: `n` of them, each edited to a random other shape), beside
    the ceiling (the true twin's latent decoded)."""
    from .checkpoints import load_model
    from .data import get_dataset
    from .edit_net import stored_edits
    from .edit_recipes import dsprites_turns
    from .explore import decode

    loaded = load_model(folder)
    dataset = get_dataset(loaded.config.train.dataset)
    nets, _, why = stored_edits(folder, loaded.model.latent_dim, dict(zip(dataset.factor_names, dataset.factor_sizes)))
    if "shape" not in nets or "orientation" not in dataset.factor_names:
        return f"{folder}: no stored dSprites shape edit{f' ({why})' if why else ''}"
    k = list(dataset.factor_names).index("shape")
    rng = np.random.default_rng(seed)
    start = twin_pairs(dataset, "shape", 8 * n, rng, split="held_out").base[:n]
    target = (start[:, k] + rng.integers(1, dataset.factor_sizes[k], n)) % dataset.factor_sizes[k]
    twin = start.copy()
    twin[:, k] = target
    model = loaded.model.eval()
    edited = decode(model, apply_edit(nets["shape"].eval(), means(model, dataset, start), target))[:, 0]
    ceiling = decode(model, means(model, dataset, twin))[:, 0]
    parts = []
    for name, drawn in (("edit", edited), ("ceiling", ceiling)):
        turns = dsprites_turns(dataset, start, target, drawn)
        parts.append(f"{name} median {np.median(turns):.1f} degrees, {np.mean(turns <= 10):.0%} within 10, "
                     f"{np.mean(turns > 30):.0%} over 30")
    return f"{Path(folder).name} shape edit turns the sprite ({n} held-out images): " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """`python -m vae_core.edits FOLDER [FOLDER ...] --factor shape --factor posX ...`: train, measure and store
    models' edits (a model's stored edits of other factors stay); `python -m vae_core.edits --table FOLDER ...`:
    print the goals table of their stored edits."""
    import argparse
    import json

    from .checkpoints import load_model
    from .data import get_dataset
    from .readings import readings_for

    parser = argparse.ArgumentParser(prog="python -m vae_core.edits", description=main.__doc__.split(": ", 1)[1])
    parser.add_argument("folders", nargs="+", help="model folders of one dataset")
    parser.add_argument("--table", action="store_true", help="only print the goals table of the stored edits")
    parser.add_argument("--factor", action="append", help="a factor of the model's grid (repeatable)")
    parser.add_argument("--target", action="append", help="the value each factor's figures edit to, or 'random' "
                        "(each image to a value other than its own); one for all factors or one each (default: the "
                        "factor's last value)")
    parser.add_argument("--from", dest="sources", action="append", default=None,
                        help="comma-separated values the figures' images start from, per factor (default: all others)")
    parser.add_argument("--turn-cost", type=float, default=None,
                        help="a dSprites shape edit may turn the sprite (see recipe()): what a turned twin costs, "
                        "a share of its typical latent distance (0.12 for dsprites-beta-vae); default: no turn")
    parser.add_argument("--turns", action="store_true", help="only measure how far each model's stored dSprites "
                        "shape edit turns the sprite (500 images edited to a random other shape, and their ceiling)")
    parser.add_argument("--judge-steps", type=int, default=3000)
    parser.add_argument("--judge-cache", help="a folder to keep the judges in between runs (they take minutes)")
    args = parser.parse_args(argv)
    if args.table:
        cards = {Path(f).name: json.loads((Path(f) / EDITS_CARD).read_text()) for f in args.folders
                 if (Path(f) / EDITS_CARD).exists()}
        print(goals_table(cards))
        return 0
    if args.turns:
        for folder in args.folders:
            print(shape_edit_turns(folder))
        return 0
    if not args.factor:
        parser.error("--factor is required to train edits")
    first = load_model(args.folders[0]).config
    data = get_dataset(first.train.dataset, first.train.data_root, first.model.image_size, first.model.channels)
    readings, quality = readings_for(data, args.judge_steps, args.judge_cache)
    for name, q in quality.items():
        print(f"reading of {name} ({q['how']}): {q['accuracy']:.1%} right on true images", flush=True)
    targets = args.target or []
    for folder in args.folders:
        loaded = load_model(folder)
        nets, figures = {}, {}
        for i, factor in enumerate(args.factor):
            net, info = train_edit(loaded.model, data, factor, **recipe(data, factor, args.turn_cost))
            net = as_stored(net, loaded.model.latent_dim)
            k = list(data.factor_names).index(factor)
            asked = targets[i] if i < len(targets) else targets[0] if len(targets) == 1 else None
            target = None if asked == "random" else int(asked) if asked is not None else data.factor_sizes[k] - 1
            source = np.array([int(v) for v in args.sources[i].split(",")]) if args.sources and i < len(args.sources) \
                else None
            fig = edit_figures(loaded.model, data, factor, readings, net, target, source=source)
            move = [round(float(v), 2) for v in move_per_latent(net, loaded.model, data, factor,
                                                                 data.factor_sizes[k] - 1)]
            nets[factor] = net
            turned = {} if args.turn_cost is None or "candidates" not in recipe(data, factor, 0.0) else \
                {"turn_cost": args.turn_cost}
            figures[factor] = {**info, **fig, "move_per_latent": move, "readings": quality,
                               "judge_steps": args.judge_steps, **turned,
                               **({} if source is None else {"source_values": [int(v) for v in source]})}
            print(f"{Path(folder).name} {factor}: " + json.dumps(fig["rows"]) + f" ({info['seconds']} s)", flush=True)
        kept, card, _ = stored_edits(folder, loaded.model.latent_dim, dict(data.named_sizes()))
        kept = {factor: net for factor, net in kept.items() if factor not in nets}  # the factors not asked stay
        figures.update({factor: {k: v for k, v in card["factors"][factor].items() if k != "values"} for factor in kept})
        save_edits(folder, {**kept, **nets}, figures)
        print(f"wrote {folder}/{EDITS_WEIGHTS} and {EDITS_CARD}" +
              (f" (kept the stored {', '.join(sorted(kept))})" if kept else ""), flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
