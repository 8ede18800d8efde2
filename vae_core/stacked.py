"""Many training runs stepped together in one process: `python -m vae_core.stacked PLAN --out DIR`.

A GPU runs one small VAE far below its arithmetic: 12 separate processes side by side reached 55 steps/s each on
an H200, bound by kernel launches, not by FLOPs. Here the runs of a *stack* (the same network, objective and
schedule, seeds apart) have their parameters stacked (`torch.func.stack_module_state`) and take one vmapped
forward and backward and one Adam step together: M runs cost about the launches of one.

Each member draws exactly what `vae_core.train` would draw for its seed: its batch from (seed, 0, step), its
reparameterisation noise from a generator seeded by (seed, 0, step). Adam is elementwise, so one Adam over the
stacked tensors is M independent Adams. A stacked run therefore follows the single runs it stacks; on the CPU it
matches them to float32 rounding (vmap batches the convolutions into other kernels, which sum in another order:
`tests/test_stacked.py` measures the difference and holds it to `SAME_WEIGHTS_TOLERANCE`).

Several stacks train in one loop (`train_stacks`), one step of each in turn; a deadline ends the job early with
every member written at the step it reached, and the summary (`stacked.json`) names who did not finish. `pack`
splits the written folders into tar archives of at most 16 MiB each (what a GPU job may send back).

Importable without streamlit or umap, so it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import checkpoints as ckpt
from . import family
from .config import ExperimentConfig
from .data import get_dataset
from .kinds import KINDS, objective
from .objectives import compute_loss
from .train import _seed_for, _training_card, _write_log, batch_for_step, build_parser, config_from_args

SAME_WEIGHTS_TOLERANCE = 1e-5  # max abs weight difference from the single runs after the test's steps (CPU)
ARCHIVE_BYTES = 16 * 2**20  # a GPU job returns at most 8 files of this size
LOGGED = ("total", "recon", "kl", "tc")
# settings of a stack's members that may differ: everything else must match, or they cannot share one vmap
PER_MEMBER = ("seed", "checkpoint_every", "log_every")


class StackError(ValueError):
    """Members that cannot be stacked; names the member and what differs."""


@dataclass
class Member:
    name: str
    exp: ExperimentConfig
    out: Path


class _Forward(nn.Module):
    """A VAE's training forward pass with its noise given, not drawn: the draw happens outside vmap, per member,
    from the generator `vae_core.train` would use (`VAE.reparameterize`'s arithmetic, eps passed in)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None) -> dict[str, torch.Tensor]:
        mu, logvar = self.model.encode(x)
        z = mu if eps is None else mu + torch.exp(0.5 * logvar) * eps
        return {"mu": mu, "logvar": logvar, "z": z, "logits": self.model.decode(z)}


def check_stack(members: list[Member]) -> None:
    """Refuse, before any step, members that cannot share one vmapped step, naming the first that differs."""
    if not members:
        raise StackError("a stack needs at least one member")
    first = members[0]
    for m in members:
        kind = KINDS[m.exp.model.kind]
        if kind.train_terms is not None:
            raise StackError(f"{m.name}: a {kind.name} trains by its kind's own terms; only VAE objectives stack")
        if m.exp.train.corruption != "none":
            raise StackError(f"{m.name}: a denoising autoencoder draws its corruption inside the step; not stacked")
    for m in members[1:]:
        if m.exp.model != first.exp.model:
            diff = [k for k, v in vars(m.exp.model).items() if vars(first.exp.model)[k] != v]
            raise StackError(f"{m.name}: its network differs from {first.name}'s ({', '.join(diff)})")
        if m.exp.dataset != first.exp.dataset:
            raise StackError(f"{m.name}: trains on {m.exp.dataset.name}, {first.name} on {first.exp.dataset.name}")
        mine = {k: v for k, v in vars(m.exp.train).items() if k not in PER_MEMBER}
        theirs = {k: v for k, v in vars(first.exp.train).items() if k not in PER_MEMBER}
        if mine != theirs:
            diff = [k for k in mine if mine[k] != theirs[k]]
            raise StackError(f"{m.name}: its training settings differ from {first.name}'s ({', '.join(diff)}); "
                             f"only {', '.join(PER_MEMBER)} may differ within a stack")
    outs = [m.out.resolve() for m in members]
    if len(set(outs)) != len(outs):
        raise StackError("two members write the same folder")


class Stack:
    """M runs of one network and schedule, stepped together."""

    def __init__(self, members: list[Member], device: torch.device, dataset=None):
        check_stack(members)
        self.members, self.device = members, device
        self.exp = members[0].exp
        t = self.exp.train
        self.dataset = dataset or get_dataset(t.dataset, t.data_root, self.exp.model.image_size,
                                              self.exp.model.channels)
        nets = []
        for m in members:  # each member's initial weights exactly as `train` makes them for its seed
            torch.manual_seed(m.exp.train.seed)
            nets.append(_Forward(family.build_model(m.exp.model)).to(device))
        self.base = _Forward(family.build_model(self.exp.model)).to("meta")
        self.params, self.buffers = stack_module_state(nets)
        self.opt = torch.optim.Adam(list(self.params.values()), lr=t.lr)
        self.sample = not objective(t.objective).autoencoder
        self.step = 0
        self.rows: list[list[dict]] = [[] for _ in members]
        self._sums = [{} for _ in members]
        self._count = 0
        self.wall = 0.0

        def loss(params, buffers, x, eps):
            outputs = functional_call(self.base, (params, buffers), (x, eps))
            terms = compute_loss(outputs, x, self.exp.model, t, self._at, self.dataset.num_images)
            return {k: terms[k] for k in LOGGED if k in terms}

        self._loss = vmap(loss, in_dims=(0, 0, 0, 0 if self.sample else None))

    @property
    def done(self) -> bool:
        return self.step >= self.exp.train.steps

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        t, gen = self.exp.train, torch.Generator(device=self.device)
        x = torch.stack([batch_for_step(self.dataset, t.batch_size, m.exp.train.seed, 0, self.step)
                         for m in self.members]).to(self.device, non_blocking=True)
        if not self.sample:
            return x, None
        eps = []
        for m in self.members:
            gen.manual_seed(_seed_for(m.exp.train.seed, 0, self.step))
            eps.append(torch.randn((t.batch_size, self.exp.model.latent_dim), generator=gen, device=self.device))
        return x, torch.stack(eps)

    def train_step(self) -> None:
        t = self.exp.train
        began = time.perf_counter()
        if self.step in t.optimizer_resets:
            self.opt.state.clear()
        for group in self.opt.param_groups:
            group["lr"] = t.lr_at(self.step)
        x, eps = self._batch()
        self._at = self.step
        terms = self._loss(self.params, self.buffers, x, eps)
        if not torch.isfinite(terms["total"]).all():
            bad = [m.name for m, ok in zip(self.members, torch.isfinite(terms["total"]).tolist()) if not ok]
            raise FloatingPointError(f"non-finite loss at step {self.step} in {', '.join(bad)} (try a lower --lr)")
        self.opt.zero_grad(set_to_none=True)
        terms["total"].sum().backward()
        self.opt.step()
        for i in range(len(self.members)):
            for k, v in terms.items():
                self._sums[i][k] = self._sums[i].get(k, 0.0) + v[i].detach()
        self._count += 1
        self.step += 1
        if self.step % t.log_every == 0 or self.step == t.steps:
            self._log()
        self.wall += time.perf_counter() - began

    def _log(self) -> None:
        for i, sums in enumerate(self._sums):
            means = {k: float(v) / self._count for k, v in sums.items()}
            self.rows[i].append({"step": self.step, "total": round(means["total"], 4),
                                 "recon": round(means["recon"], 4), "kl": round(means["kl"], 4), "kl_weight": "",
                                 "capacity": "", "tc": round(means["tc"], 4) if "tc" in means else "",
                                 "lr": self.exp.train.lr, "elapsed_s": round(self.wall, 2)})
        self._sums, self._count = [{} for _ in self.members], 0

    def member_model(self, i: int) -> nn.Module:
        model = family.build_model(self.exp.model)
        state = {k.removeprefix("model."): v[i].detach().cpu() for k, v in {**self.params, **self.buffers}.items()}
        model.load_state_dict(state)
        return model.eval()

    def write(self, figures: bool = False) -> None:
        """Each member's folder at the step reached: weights, config, card, training.csv."""
        from . import card_figures
        from .card_figures import EVAL_SAMPLES

        for i, m in enumerate(self.members):
            model = self.member_model(i)
            card = _training_card(m.exp, m.out, model, self.dataset, 1, self.step, self.wall, self.device)
            card["stacked_with"] = [o.name for o in self.members if o is not m]
            if figures and self.done:
                card["final"] = card_figures.figures(model, self.dataset, m.exp, EVAL_SAMPLES, 12345)
            ckpt.save_model(m.out, model, m.exp, card)
            _write_log(m.out, self.rows[i])


def train_stacks(stacks: list[Stack], deadline_s: float | None = None, figures: bool = False,
                 checkpoint_every: int | None = None) -> dict:
    """Step every stack in turn until each is done or the deadline passes; write every member; return the summary
    (steps reached per member, which finished, the aggregate model-steps per second)."""
    began = time.perf_counter()
    stopped_early = False
    while not all(s.done for s in stacks):
        if deadline_s is not None and time.perf_counter() - began > deadline_s:
            stopped_early = True
            break
        for s in stacks:
            if not s.done:
                s.train_step()
                if checkpoint_every and s.step % checkpoint_every == 0 and not s.done:
                    s.write()
    wall = time.perf_counter() - began
    for s in stacks:
        s.write(figures=figures)
    model_steps = sum(s.step * len(s.members) for s in stacks)
    return {
        "wall_s": round(wall, 2),
        "model_steps": model_steps,
        "model_steps_per_s": round(model_steps / wall, 1) if wall > 0 else None,
        "stopped_at_deadline": stopped_early,
        "members": {m.name: {"steps": s.step, "planned": s.exp.train.steps, "finished": s.done, "folder": str(m.out)}
                    for s in stacks for m in s.members},
        "unfinished": [m.name for s in stacks for m in s.members if not s.done],
    }


def member_from_settings(name: str, settings: str, out_dir: Path) -> Member:
    """A member from a `vae_core.train` command line (as the zoo records them), written to out_dir/name."""
    args = build_parser().parse_args([*shlex.split(settings), "--out", str(out_dir / name)])
    dataset = get_dataset(args.dataset, args.data_root, args.image_size, None, False)
    return Member(name, config_from_args(args, dataset), out_dir / name)


def group(members: list[Member]) -> list[list[Member]]:
    """Members split into stacks: those whose settings match but for PER_MEMBER share one, in the order given."""
    stacks: dict[str, list[Member]] = {}
    for m in members:
        key = json.dumps({"model": vars(m.exp.model), "dataset": vars(m.exp.dataset),
                          "train": {k: v for k, v in vars(m.exp.train).items() if k not in PER_MEMBER}},
                         sort_keys=True, default=str)
        stacks.setdefault(key, []).append(m)
    return list(stacks.values())


def plan(name: str, steps: int, seeds: int, sweep_seeds: int) -> list[tuple[str, str]]:
    """(member name, training settings) for a named plan: `zoo` (dsprites-vae, -beta-vae and -beta-tcvae, `seeds`
    seeds each), `sweep` (the beta sweep, `sweep_seeds` seeds per beta), or `all` (both)."""
    from .sweep import SWEEP_BETAS, SWEEP_SETTINGS
    from .zoo import ZOO

    out = []
    if name in ("zoo", "all"):
        for entry in ("dsprites-vae", "dsprites-beta-vae", "dsprites-beta-tcvae"):
            base = _without(ZOO[entry], "--seed", "--steps", "--reset-optimizer-at", "--lr-from")
            out += [(f"{entry}-seed{s}", f"{base} --seed {s} --steps {steps}") for s in range(seeds)]
    if name in ("sweep", "all"):
        for beta in SWEEP_BETAS:
            base = f"{_without(SWEEP_SETTINGS, '--seed', '--steps')} --beta {beta:g}"
            out += [(f"beta-{beta:g}-seed{s}", f"{base} --seed {s} --steps {steps}") for s in range(sweep_seeds)]
    if not out:
        raise ValueError(f"unknown plan {name!r}: zoo, sweep or all")
    return out


def _without(settings: str, *options: str) -> str:
    """A command line with these options (and each one's value) taken out."""
    words, kept = shlex.split(settings), []
    skip = False
    for w in words:
        if skip:
            skip = False
        elif w in options:
            skip = True
        else:
            kept.append(w)
    return shlex.join(kept)


def pack(folders: list[Path], out_dir: Path, limit: int = ARCHIVE_BYTES) -> list[Path]:
    """The model folders in tar.gz archives of at most `limit` bytes each (a folder is never split), in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    archives, batch, size = [], [], 0
    sizes = {f: sum(p.stat().st_size for p in f.iterdir() if p.is_file()) for f in folders}
    for f in folders:
        if sizes[f] > limit:
            raise ValueError(f"{f}: {sizes[f]:,} bytes, more than an archive may hold ({limit:,})")
        if batch and size + sizes[f] > limit:
            archives.append(batch)
            batch, size = [], 0
        batch.append(f)
        size += sizes[f]
    if batch:
        archives.append(batch)
    paths = []
    for n, batch in enumerate(archives):
        path = out_dir / f"models-{n}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for f in batch:
                for p in sorted(f.iterdir()):
                    if p.is_file() and not p.name.startswith("."):
                        tar.add(p, arcname=f"{f.name}/{p.name}")
        if path.stat().st_size > limit:
            raise ValueError(f"{path}: {path.stat().st_size:,} bytes after packing, over {limit:,}")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.stacked", description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", choices=["zoo", "sweep", "all"])
    parser.add_argument("--out", type=Path, required=True, help="folder for the member folders and stacked.json")
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--seeds", type=int, default=5, help="seeds for each zoo entry")
    parser.add_argument("--sweep-seeds", type=int, default=3, help="seeds for each beta of the sweep")
    parser.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                        help="stop stepping after this long and write every member where it is")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS")
    parser.add_argument("--device", default=None)
    parser.add_argument("--figures", action="store_true", help="each finished member's recon and KL on its card")
    parser.add_argument("--archive", type=Path, default=None, help="pack the folders into tar.gz files here")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        members = [member_from_settings(n, s, args.out) for n, s in plan(args.plan, args.steps, args.seeds,
                                                                           args.sweep_seeds)]
        stacks = [Stack(g, device) for g in group(members)]
    except (StackError, ValueError) as exc:
        parser.error(str(exc))
    print(f"{len(members)} runs in {len(stacks)} stacks on {device}", flush=True)
    summary = train_stacks(stacks, args.deadline, args.figures, args.checkpoint_every)
    ckpt.atomic_write_json(args.out / "stacked.json", summary)
    print(f"{summary['model_steps']:,} model-steps in {summary['wall_s']} s: {summary['model_steps_per_s']} "
          f"model-steps/s" + (f"; not finished: {', '.join(summary['unfinished'])}" if summary["unfinished"] else ""))
    if args.archive:
        for path in pack([m.out for m in members], args.archive):
            print(f"{path}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
