"""Train a model into a model folder: `python -m vae_core.train --dataset dsprites --objective beta-vae ...`.

Every batch and every noise draw is a function of (seed, rank, step), and the resume file holds the weights
and the optimizer at a step, so a run killed at any moment and resumed with `--resume` ends with exactly the
weights of an uninterrupted run. Checkpoints are written atomically; a non-finite loss stops the run and
leaves the last good checkpoint untouched. Under `torchrun --nproc_per_node=N` the same command trains with
DistributedDataParallel (gloo on the CPU, nccl on GPUs), each process drawing its own batches.

Importable without streamlit or umap, so it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import os
import platform
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from . import card_figures, family
from . import checkpoints as ckpt
from .atomic import FolderBusy, writing
from .card_figures import EVAL_SAMPLES
from .config import (
    LIKELIHOODS,
    ConfigError,
    DatasetInfo,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
)
from .corruption import CORRUPTIONS, corrupt
from .data import dataset_names, get_dataset
from .kinds import KINDS, OBJECTIVES, log_columns, objective
from .models.vae import VAE
from .objectives import compute_loss
from .resume import load_resume_state, load_shipped_state, save_resume_state
from .train_checks import check_command, data_notes

LOG_FIELDS = ("step", "total", "recon", "kl", "kl_weight", "capacity", "tc", "lr", "elapsed_s")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _seed_for(*keys: int) -> int:
    return int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0] >> 1)


def batch_for_step(dataset, batch_size: int, seed: int, rank: int, step: int) -> torch.Tensor:
    """The batch a given process trains on at a given step: (B, C, H, W), the same on every run."""
    return batch_and_factors_for_step(dataset, batch_size, seed, rank, step)[0]


def batch_and_factors_for_step(dataset, batch_size: int, seed: int, rank: int, step: int):
    """The batch of `batch_for_step` and what the dataset returns beside it (factors or labels)."""
    rng = np.random.default_rng([seed, rank, step])
    images, factors = dataset.sample(batch_size, rng)
    return torch.from_numpy(images), factors


def dataset_info(dataset) -> DatasetInfo:
    return DatasetInfo(
        name=dataset.name,
        factor_names=tuple(dataset.factor_names),
        factor_sizes=tuple(int(s) for s in dataset.factor_sizes),
        label_names=tuple(dataset.label_names),
    )


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {threads} thread{'s' if threads != 1 else ''}, torch {torch.__version__}"


def _write_log(folder: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    extra = [k for k in log_columns() if any(k in row for row in rows)]
    dims = max((sum(1 for k in row if k.startswith(ckpt.KL_DIM_PREFIX)) for row in rows), default=0)
    extra += [f"{ckpt.KL_DIM_PREFIX}{d}" for d in range(dims)]
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS + tuple(extra))
    writer.writeheader()
    writer.writerows(rows)
    ckpt.atomic_write_bytes(folder / ckpt.LOG_FILE, buf.getvalue().encode())


def _setup_distributed() -> tuple[int, int, torch.device | None]:
    """(rank, world size, device) under torchrun; (0, 1, None) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    device = None
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return dist.get_rank(), dist.get_world_size(), device


def train(
    exp: ExperimentConfig,
    out: str | Path,
    resume: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    dataset=None,
    stop_after: int | None = None,
    channels_last: bool = False,
) -> dict:
    """Train (or resume) the model `exp` describes into the folder `out`; returns the card.

    Args:
        dataset: an already built dataset (else built from exp.train).
        stop_after: stop once this step is reached, as if killed right after a checkpoint (for tests).
        channels_last: keep activations and convolution weights channels-last (`python -m vae_core.bench`:
            faster for one-channel images on the CPU); like the device, a choice of kernels, so the card's
            hardware line records it and it is not part of the recipe.
    """
    out = Path(out)
    rank, world, dist_device = _setup_distributed()
    device = torch.device(dist_device or device or ("cuda" if torch.cuda.is_available() else "cpu"))
    t = exp.train
    if dataset is None:
        dataset = get_dataset(t.dataset, t.data_root, exp.model.image_size, exp.model.channels)
    torch.manual_seed(t.seed)  # the initial weights
    model = family.build_model(exp.model).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    steps_before = int(ckpt.read_card(out).get("steps_before", 0)) if resume and (out / ckpt.CARD_FILE).exists() else 0
    if t.init_from and not (resume and (out / ckpt.WEIGHTS_FILE).exists()):
        family.init_from(model, t.init_from)
        steps_before = ckpt.steps_in_all(ckpt.read_card(t.init_from)) or 0  # a fine-tune counts its base's steps
    opt = torch.optim.Adam(model.parameters(), lr=t.lr)
    start, rows, elapsed_before, accum = 0, [], 0.0, {}
    if resume and (out / ckpt.RESUME_FILE).exists():
        start, rows, accum = load_resume_state(out, model, opt)
        elapsed_before = float(rows[-1]["elapsed_s"]) if rows else 0.0
    elif resume and (out / ckpt.WEIGHTS_FILE).exists():
        start, rows = load_shipped_state(out, model, exp)
        elapsed_before = float(rows[-1]["elapsed_s"]) if rows else 0.0
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        ckpt.atomic_write_json(out / ckpt.CONFIG_FILE, exp.to_dict())
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    gen = torch.Generator(device=device)
    sample = not objective(t.objective).autoencoder
    began = time.perf_counter()

    def _elapsed() -> float:
        return elapsed_before + time.perf_counter() - began

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=t.steps, initial=start, desc=out.name, unit="step", dynamic_ncols=True)
    sums: dict = {k: torch.tensor(v) if isinstance(v, list) else v for k, v in accum.get("sums", {}).items()}
    count = int(accum.get("count", 0))
    model.train()
    for step in range(start, t.steps):
        if step in t.optimizer_resets:
            opt.state.clear()  # a warm restart: Adam re-initialises its moments and step count lazily
        for group in opt.param_groups:
            group["lr"] = t.lr_at(step)
        x, factors = batch_and_factors_for_step(dataset, t.batch_size, t.seed, rank, step)
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        gen.manual_seed(_seed_for(t.seed, rank, step))
        if KINDS[exp.model.kind].train_terms is None:  # the VAE's objectives
            x_in = corrupt(x, t.corruption, t.corruption_level, gen)  # x itself unless a denoising autoencoder
            outputs = net(x_in, generator=gen, sample=sample)
            terms = compute_loss(outputs, x, exp.model, t, step, dataset.num_images)
        else:
            terms = family.step_terms(net, model, x, factors, exp, step, gen, dataset)
        finite = torch.isfinite(terms["total"]).float()
        if world > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() < 1:
            if bar:
                bar.close()
            raise NonFiniteLoss(f"non-finite loss at step {step}; the last good checkpoint in {out} is kept "
                                "(try a lower --lr)")
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        for key in ("total", "recon", "kl", "kl_per_dim", "tc", *log_columns()):
            if key in terms:
                sums[key] = sums.get(key, 0.0) + terms[key].detach()
        count += 1
        done = step + 1
        if done % t.log_every == 0 or done == t.steps:
            kl_per_dim = sums.pop("kl_per_dim", None)
            means = {k: float(v) / count for k, v in sums.items()}
            capacity = terms.get("capacity")
            rows.append({
                "step": done,
                "total": round(means["total"], 4),
                "recon": round(means["recon"], 4),
                "kl": round(means["kl"], 4),
                "kl_weight": round(float(terms["kl_weight"]), 4),
                "capacity": "" if capacity is None else round(float(capacity), 4),
                "tc": round(means["tc"], 4) if "tc" in means else "",
                "lr": t.lr_at(step),
                "elapsed_s": round(_elapsed(), 2),
                **{k: round(means[k], 4) for k in log_columns() if k in means},
                **({} if kl_per_dim is None else  # each latent's KL: posterior collapse latent by latent
                   {f"{ckpt.KL_DIM_PREFIX}{d}": round(float(v) / count, 4) for d, v in enumerate(kl_per_dim)}),
            })
            if bar:
                bar.set_postfix(loss=f"{means['total']:.2f}", recon=f"{means['recon']:.2f}", kl=f"{means['kl']:.2f}")
            sums, count = {}, 0
        if bar:
            bar.update(1)
        if done % t.checkpoint_every == 0 or done == t.steps or done == stop_after:
            if rank == 0:
                accum = {"count": count, "sums": {k: v.tolist() if torch.is_tensor(v) and v.dim() else float(v)
                                                  for k, v in sums.items()}}
                save_resume_state(out, model, opt, done, rows, accum)
                _write_log(out, rows)
                card = _training_card(exp, out, model, dataset, world, done, _elapsed(), device, steps_before,
                                      channels_last)
                # figures of earlier weights go; the end of the run and `evaluate` write them anew
                kept = {k: v for k, v in ckpt.read_card(out).items() if k not in ckpt.EVALUATION_KEYS}
                ckpt.save_model(out, model, exp, {**kept, **card})
            if world > 1:
                dist.barrier()
        if done == stop_after:
            break
    if bar:
        bar.close()
    card = {}
    if rank == 0 and (stop_after is None or stop_after >= t.steps):
        card = _training_card(exp, out, model, dataset, world, t.steps, _elapsed(), device, steps_before,
                              channels_last)
        card["final"] = card_figures.figures(model, dataset, exp, EVAL_SAMPLES, 12345)
        ckpt.update_card(out, card)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return card


def _training_card(exp: ExperimentConfig, out: Path, model: VAE, dataset, world: int, steps_done: int,
                   wall: float, device: torch.device, steps_before: int = 0, channels_last: bool = False) -> dict:
    """The card's account of how the model was trained (the evaluation command adds the figures); `steps_before`:
    the steps its starting weights had seen (`checkpoints.steps_in_all`)."""
    t = exp.train
    return {
        **({"steps_before": steps_before} if steps_before else {}),
        "name": out.name,
        "dataset": dataset.name,
        "objective": t.objective,
        "beta": t.beta,
        "schedule": {k: getattr(t, k) for k in ("gamma", "capacity_max", "capacity_steps", "warmup_steps",
                                                "cycles", "free_bits", "corruption", "corruption_level", "l1")},
        "steps": steps_done,
        "steps_planned": t.steps,
        "batch_size": t.batch_size,
        "processes": world,
        "lr": t.lr,
        "seed": t.seed,
        "latent_dim": exp.model.latent_dim,
        "likelihood": exp.model.likelihood,
        "parameters": sum(p.numel() for p in model.parameters()),
        "wall_time_s": round(wall, 1),
        "hardware": hardware_description(device) + (", channels-last" if channels_last else ""),
        "date": dt.date.today().isoformat(),
    }


def lr_change(text: str) -> tuple[int, float]:
    """`--lr-from STEP:RATE` as a (step, rate) pair."""
    step, sep, rate = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(step), float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not STEP:RATE (e.g. 56000:1e-4)") from None


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    m = ModelConfig()
    p = argparse.ArgumentParser(prog="python -m vae_core.train", description=__doc__.split("\n\n")[0])
    g = p.add_argument_group('run', 'where the model goes, and how the run is continued')
    g.add_argument("--out", required=True, help="the model folder to write (e.g. pretrained/NAME)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    g.add_argument("--reset-optimizer-at", type=int, action="append", default=[], metavar="STEP",
                   help="clear Adam's moments at this step (repeatable); lets --resume continue a folder that "
                   "has weights but no resume file")
    g.add_argument("--overwrite", action="store_true", help="replace an existing model in --out")
    g.add_argument("--init-from", default=None, metavar="FOLDER",
                   help="start from the matching weights of this model folder (e.g. a VAE-GAN from its VAE)")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--channels-last", action="store_true",
                   help="channels-last memory format: faster for one-channel images on a CPU (python -m vae_core.bench)")
    g.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    g.add_argument("--log-every", type=int, default=d.log_every)
    g.add_argument("--seed", type=int, default=d.seed)
    g = p.add_argument_group('data')
    g.add_argument("--dataset", default=d.dataset, help=f"one of: {', '.join(dataset_names())}")
    g.add_argument("--data-root", default=None, help="folder holding mnist / fashion-mnist IDX files")
    g.add_argument("--download", action="store_true", help="download mnist / fashion-mnist (needs internet)")
    g.add_argument("--image-size", type=int, default=None, choices=(32, 64), help="default: the dataset's")
    g.add_argument("--channels", type=int, default=None, choices=(1, 3),
                   help="folder:PATH: 1 trains on grey images, 3 (the default) on colour; other data has its own")
    g = p.add_argument_group('model')
    g.add_argument("--latent-dim", type=int, default=m.latent_dim)
    g.add_argument("--likelihood", default=m.likelihood, choices=LIKELIHOODS)
    g.add_argument("--gaussian-std", type=float, default=m.gaussian_std)
    g = p.add_argument_group('optimisation')
    g.add_argument("--steps", type=int, default=d.steps)
    g.add_argument("--batch-size", type=int, default=d.batch_size)
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--lr-from", type=lr_change, action="append", default=[], metavar="STEP:RATE",
                   help="from this step on, train at this learning rate (repeatable; with --resume, lowers the rate "
                   "of a run that has stopped improving, e.g. --lr-from 56000:1e-4)")
    g = p.add_argument_group('objective', 'the VAE objectives and their schedules')
    g.add_argument("--objective", default=d.objective,
                   choices=[name for name, o in OBJECTIVES.items() if KINDS[o.kind].trained_here])
    g.add_argument("--beta", type=float, default=None, help="KL weight (TC weight for beta-tcvae); default: the "
                   "objective's (" + ", ".join(f"{o.name} {o.default_beta:g}" for o in OBJECTIVES.values()) + ")")
    g.add_argument("--gamma", type=float, default=d.gamma, help="capacity-vae: weight of |KL - C|")
    g.add_argument("--capacity-max", type=float, default=d.capacity_max)
    g.add_argument("--capacity-steps", type=int, default=d.capacity_steps)
    g.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="KL warm-up length (0: off)")
    g.add_argument("--cycles", type=int, default=d.cycles, help="cyclical KL annealing cycles (0: off)")
    g.add_argument("--free-bits", type=float, default=d.free_bits, help="per-dimension KL floor in nats")
    g.add_argument("--lambda-od", type=float, default=d.lambda_od, help="dip-vae-i/ii: off-diagonal covariance weight")
    g.add_argument("--lambda-d-factor", type=float, default=None,
                   help="dip-vae-i/ii: diagonal weight over lambda_od (default 10 for I, 1 for II)")
    g.add_argument("--mmd-weight", type=float, default=d.mmd_weight,
                   help="info-vae: weight of the MMD between q(z) and the prior")
    g = p.add_argument_group('denoising and sparse autoencoders', 'objective ae')
    g.add_argument("--corruption", default=d.corruption, choices=CORRUPTIONS,
                   help="ae: denoising autoencoder input corruption")
    g.add_argument("--corruption-level", type=float, default=d.corruption_level,
                   help="gaussian: noise std in pixel units; mask: fraction of pixels dropped")
    g.add_argument("--l1", type=float, default=d.l1, help="ae: sparse autoencoder's L1 weight on the code")
    for record in (k for k in KINDS.values() if k.trained_here):  # each kind's own options (vae_core.records)
        trained_by = [o.name for o in OBJECTIVES.values() if o.kind == record.name]
        if record.command_options():
            g = p.add_argument_group(record.name, f"objective {', '.join(trained_by)}")
        for f in record.command_options():
            flag, help_text = "--" + f.name.replace("_", "-"), f"{record.name}: {f.metadata['help']}"
            if isinstance(f.default, bool):
                g.add_argument(flag, action="store_true", help=help_text)
            else:
                g.add_argument(flag, type=type(f.default), default=f.default, help=f"{help_text} (default "
                               f"{f.default!r})" if f.default not in ("", None) else help_text)
    return p


def config_from_args(args: argparse.Namespace, dataset) -> ExperimentConfig:
    if args.image_size and args.image_size != dataset.image_size:
        raise ValueError(f"--image-size {args.image_size}: {args.dataset} images are {dataset.image_size}px and are "
                         f"not resized; leave --image-size out or pass {dataset.image_size}")
    given = vars(args)  # every TrainConfig field has an option of the same name (build_parser)
    train_cfg = TrainConfig(**{  # beta None: the objective's default
        **{f.name: given[f.name] for f in fields(TrainConfig) if f.name in given},
        "optimizer_resets": tuple(sorted(set(args.reset_optimizer_at))),
        "lr_changes": tuple(args.lr_from),
    })
    kind = KINDS[objective(args.objective).kind]
    for other in KINDS.values():  # an option of another kind would be ignored without a word: refuse it
        for f in other.command_options() if other is not kind else ():
            if given.get(f.name, f.default) != f.default:
                raise ConfigError(f"--{f.name.replace('_', '-')} is an option of a {other.name} (objective "
                                  f"{', '.join(o.name for o in OBJECTIVES.values() if o.kind == other.name)}), not "
                                  f"of objective {args.objective}")
    model_cfg = ModelConfig(**{
        **{f.name: given[f.name] for f in fields(ModelConfig) if f.name in given and f.name != "options"},
        "image_size": args.image_size or dataset.image_size, "channels": dataset.channels, "kind": kind.name,
        "options": kind.options_from(given, dataset),
    })
    return ExperimentConfig(model=model_cfg, train=train_cfg, dataset=dataset_info(dataset))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_command(args)
    except ValueError as exc:
        parser.error(str(exc))
    out = Path(args.out)
    try:
        if args.resume and (out / ckpt.CONFIG_FILE).exists():
            ckpt.check_folder(out)  # a pickle beside the model is refused before anything is read
            exp = ckpt.load_config(out)
            if args.steps != TrainConfig().steps:  # --steps extends (or shortens) a resumed run
                exp = replace(exp, train=replace(exp.train, steps=args.steps))
            if args.reset_optimizer_at:
                resets = tuple(sorted(set(exp.train.optimizer_resets) | set(args.reset_optimizer_at)))
                exp = replace(exp, train=replace(exp.train, optimizer_resets=resets))
            if args.lr_from:
                exp = replace(exp, train=replace(exp.train, lr_changes=exp.train.lr_changes + tuple(args.lr_from)))
            dataset = get_dataset(exp.train.dataset, exp.train.data_root, exp.model.image_size, exp.model.channels)
        else:
            if (out / ckpt.WEIGHTS_FILE).exists() and not args.overwrite:
                parser.error(f"{out} already holds a model; pass --resume to continue it or --overwrite")
            dataset = get_dataset(args.dataset, args.data_root, args.image_size, args.channels, args.download)
            if args.channels is not None and args.channels != dataset.channels:
                raise ValueError(f"--channels {args.channels}: {args.dataset} images have {dataset.channels} "
                                 "channel(s) of their own; --channels is for folder:PATH")
            data_notes(dataset)
            exp = config_from_args(args, dataset)
            if args.init_from:
                ckpt.load_model(args.init_from)  # a folder that cannot be used is refused before training
            if args.overwrite:  # nothing of the replaced model may stay: its resume state, map, edits and README
                for name in (ckpt.RESUME_FILE, ckpt.PROJECTION_FILE, ckpt.CARD_FILE, ckpt.LOG_FILE, "edits.json",
                             "edits.safetensors", "README.md"):
                    (out / name).unlink(missing_ok=True)
    except (ValueError, ConfigError, FileNotFoundError, ckpt.CheckpointError) as exc:
        parser.error(str(exc))
    try:
        lead = int(os.environ.get("RANK", "0")) == 0  # under torchrun, the process that writes the folder
        with writing(out) if lead else contextlib.nullcontext():
            card = train(exp, out, resume=args.resume, device=args.device, progress=not args.quiet,
                         dataset=dataset, channels_last=args.channels_last)
    except (NonFiniteLoss, FolderBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # disk full, a read-only folder, a folder removed under the run
        print(f"error: could not write {out}: {exc.strerror or exc}. Files are written whole or not at all, so "
              "the last checkpoint there is intact: free some space (or choose a writable --out) and continue "
              "with --resume.", file=sys.stderr)
        return 1
    if card:
        final = card["final"]
        usage = KINDS[exp.model.kind].usage
        usage = usage(final) if usage is not None else f"{final['active_dims']} active dims"
        print(f"{out}: recon {final['recon']:.2f} nats/image, KL {final['kl']:.2f} nats, {usage}, "
              f"{card['wall_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
