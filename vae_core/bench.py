"""The project's benchmark: `python -m vae_core.bench` prints a table of the figures the issues set targets for.

- dSprites rendering rate (images/s, one thread);
- training throughput of `vae_core.train` next to a bare PyTorch loop of the same network on the same
  batches, measured alternately in one run, as a ratio (the cost of our data pipeline and bookkeeping);
- the same with `--channels-last` (channels-last memory format) over the default, on dSprites and on faces;
- aggregate training speed, in model-steps per second at batch 64: one `vae_core.train` run next to a stack of
  runs stepped together (`vae_core.stacked`), measured alternately in one run (on the CPU and on a GPU alike:
  `--device cuda`);
- single-image decode latency p50 / p95;
- a 10 x 11 traversal grid decoded in one batch;
- the whole disentanglement metric suite on a dSprites model (when `--metrics` is given; slow);
- with `--scale FOLDER` instead: an MNIST-size set of one's own images (60,000 PNGs, a stand-in made here), what
  the app's first and second start cost with it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .config import ExperimentConfig, ModelConfig, TrainConfig
from .data import DSprites
from .models.vae import VAE
from .objectives import compute_loss
from .train import batch_for_step, dataset_info, train


def render_rate(n: int = 20_000, chunk: int = 1000) -> float:
    """dSprites images rendered per second (numpy, one thread)."""
    dataset = DSprites()
    factors = dataset.sample_factors(n, np.random.default_rng(0))
    dataset.images_from_factors(factors[:chunk])  # warm
    began = time.perf_counter()
    for start in range(0, n, chunk):
        dataset.images_from_factors(factors[start:start + chunk])
    return n / (time.perf_counter() - began)


def _bare_loop(exp: ExperimentConfig, batches: list[torch.Tensor]) -> float:
    """Images per second of the plainest loop of the same network, objective and optimizer."""
    torch.manual_seed(exp.train.seed)
    model = VAE(exp.model)
    opt = torch.optim.Adam(model.parameters(), lr=exp.train.lr)
    began = time.perf_counter()
    for step, x in enumerate(batches):
        outputs = model(x)
        loss = compute_loss(outputs, x, exp.model, exp.train, step, 737_280)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(batches) * batches[0].shape[0] / (time.perf_counter() - began)


def training_ratio(steps: int = 150, rounds: int = 2) -> tuple[float, float, float]:
    """(ours images/s, bare images/s, ratio), best of `rounds` alternating runs of each."""
    dataset = DSprites()
    # steps + 1 in the config so the run stops (with its checkpoint) before the one-off final evaluation
    exp = ExperimentConfig(ModelConfig(), TrainConfig(objective="beta-vae", beta=4.0, steps=steps + 1),
                           dataset_info(dataset))
    batches = [batch_for_step(dataset, exp.train.batch_size, exp.train.seed, 0, s) for s in range(steps)]
    ours, bare = [], []
    for _ in range(rounds):
        bare.append(_bare_loop(exp, batches))
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            train(exp, tmp, progress=False, dataset=dataset, stop_after=steps)
            ours.append(steps * exp.train.batch_size / (time.perf_counter() - began))
    return max(ours), max(bare), max(ours) / max(bare)


def memory_format_rates(dataset_name: str, steps: int = 150, rounds: int = 2) -> tuple[float, float]:
    """(contiguous, channels-last) images/s of `vae_core.train` on `dataset_name`, best of `rounds` alternating
    runs of each on the same batches."""
    from .data import get_dataset

    dataset = get_dataset(dataset_name)
    exp = ExperimentConfig(ModelConfig(channels=dataset.channels),
                           TrainConfig(dataset=dataset_name, objective="beta-vae", beta=4.0, steps=steps + 1),
                           dataset_info(dataset))
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for channels_last in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                began = time.perf_counter()
                train(exp, tmp, progress=False, dataset=dataset, stop_after=steps, channels_last=channels_last)
                rates[channels_last].append(steps * exp.train.batch_size / (time.perf_counter() - began))
    return max(rates[False]), max(rates[True])


def _decode_times_ms(num_latents: int, repeats: int, warmup: int) -> list[float]:
    """Milliseconds per decode of a batch of `num_latents` latents, with the standard 64x64 decoder."""
    model = VAE(ModelConfig()).eval()
    z = torch.randn(num_latents, model.latent_dim)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model.decode_image(z)
        for _ in range(repeats):
            began = time.perf_counter()
            model.decode_image(z)
            times.append((time.perf_counter() - began) * 1e3)
    return times


def decode_latency(repeats: int = 300) -> tuple[float, float]:
    """(p50, p95) milliseconds to decode one 64x64 image."""
    times = _decode_times_ms(1, repeats, warmup=20)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def traversal_grid_ms(rows: int = 10, cols: int = 11, repeats: int = 20) -> float:
    """Median milliseconds to decode a rows x cols traversal grid in one batch."""
    return float(np.median(_decode_times_ms(rows * cols, repeats, warmup=1)))


def metric_suite_seconds() -> tuple[float, dict[str, float]]:
    """Seconds for the whole metric suite, protocol sample counts, on a dSprites-shaped model, and its parts."""
    from .metrics import compute_all_metrics, representation_from_model

    model = VAE(ModelConfig()).eval()
    began = time.perf_counter()
    results = compute_all_metrics(DSprites(), representation_from_model(model), seed=0)
    return time.perf_counter() - began, results["seconds"]


def stacked_rate(members: int = 4, steps: int = 40, rounds: int = 2, device: str = "cpu") -> tuple[float, float]:
    """(model-steps/s of one run, aggregate model-steps/s of `members` runs stacked), best of `rounds`, the
    standard 64x64 beta-VAE at batch 64, training loops only (no folder written)."""
    from .stacked import Member, Stack

    dataset = DSprites()
    exp = ExperimentConfig(ModelConfig(), TrainConfig(objective="beta-vae", beta=4.0, steps=10**9),
                           dataset_info(dataset))
    rates: dict[int, list[float]] = {1: [], members: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for m in (1, members):
                runs = [Member(f"m{i}", ExperimentConfig(exp.model, TrainConfig(**{**vars(exp.train), "seed": i}),
                                                          exp.dataset), Path(tmp) / f"m{i}") for i in range(m)]
                stack = Stack(runs, torch.device(device), dataset)
                stack.train_step()  # warm
                began = time.perf_counter()
                for _ in range(steps):
                    stack.train_step()
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                rates[m].append(steps * m / (time.perf_counter() - began))
    return max(rates[1]), max(rates[members])


SCALE_IMAGES = 60_000  # an MNIST-size set of a researcher's own images
STAND_IN_CLASSES = ("ring", "disc", "square", "frame", "cross", "plus", "bar", "column", "slash", "dot")


def _draw_stand_in(draw, name: str, x: int, y: int, r: int, w: int) -> None:
    """One stand-in image of class `name`: white strokes on black at (x, y), radius r, stroke width w."""
    box = [x - r, y - r, x + r, y + r]
    if name in ("ring", "disc"):
        draw.ellipse(box, outline=255, width=w, fill=255 if name == "disc" else None)
    elif name in ("square", "frame"):
        draw.rectangle(box, outline=255, width=w, fill=255 if name == "square" else None)
    elif name == "dot":
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=255)
    else:
        lines = {"cross": [box, [x - r, y + r, x + r, y - r]], "plus": [[x - r, y, x + r, y], [x, y - r, x, y + r]],
                 "bar": [[x - r, y, x + r, y]], "column": [[x, y - r, x, y + r]], "slash": [[x - r, y + r, x + r, y - r]]}
        for line in lines[name]:
            draw.line(line, fill=255, width=w + 1)


def stand_in_folder(folder: Path, n: int = SCALE_IMAGES, seed: int = 0) -> Path:
    """An MNIST-size stand-in made here (nothing is downloaded): `n` greyscale 28 x 28 PNGs of white strokes on
    black, ten classes in sub-folders (a ring, a disc, a square, ...) of random place and size. Kept: a folder that
    already holds `n` PNGs is used as it is."""
    from PIL import Image, ImageDraw

    if folder.is_dir() and sum(1 for _ in folder.rglob("*.png")) == n:
        return folder
    rng = np.random.default_rng(seed)
    for name in STAND_IN_CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = STAND_IN_CLASSES[i % len(STAND_IN_CLASSES)]
        image = Image.new("L", (28, 28), 0)
        _draw_stand_in(ImageDraw.Draw(image), name, *(int(v) for v in rng.integers((9, 9, 4, 1), (19, 19, 9, 4))))
        image.save(folder / name / f"{i:05d}.png")
    return folder


def scale_figures(folder: Path, n: int = SCALE_IMAGES, steps: int = 300) -> list[tuple[str, str, str]]:
    """The own-images scale rows: a model trained on an `n`-image stand-in folder (32 px greyscale, `steps`
    steps), then what the app's first start costs (decoding the folder, encoding every image and its map, as
    `python -m vae_core.evaluate` writes it) and its second (the kept folder and projection.npz read back)."""
    import os

    from . import checkpoints as ckpt
    from .data.own import load_image_folder
    from .projection import load_projection, write_projection

    os.environ.setdefault("XDG_CACHE_HOME", str(folder / "cache"))
    data = stand_in_folder(folder / "images", n)
    for kept in (Path(os.environ["XDG_CACHE_HOME"]) / "vae-explorer" / "folders").glob("*.npz"):
        kept.unlink()  # a first start decodes the folder
    model_folder = folder / "model"
    began = time.perf_counter()
    dataset = load_image_folder(data, 32, 1)
    first_load = time.perf_counter() - began
    if not (model_folder / ckpt.WEIGHTS_FILE).is_file():
        exp = ExperimentConfig(model=ModelConfig(image_size=32, channels=1, latent_dim=10),
                               train=TrainConfig(dataset=f"folder:{data}", objective="beta-vae", beta=1.0,
                                                 steps=steps, batch_size=64, checkpoint_every=steps))
        train(exp, model_folder, progress=True, dataset=dataset)
    model = ckpt.load_model(model_folder).model.eval()
    began = time.perf_counter()
    write_projection(model_folder, model, dataset, progress=True)
    projection_s = time.perf_counter() - began
    began = time.perf_counter()
    again = load_image_folder(data, 32, 1)
    points = load_projection(model_folder).num_points
    second = time.perf_counter() - began
    assert again.num_images == n
    return [(f"own images: decode {n:,} PNGs (first start)", f"{first_load:.1f} s", ""),
            (f"  encode {points:,} and map them (UMAP)", f"{projection_s:.1f} s", ""),
            ("  first start in all", f"{first_load + projection_s:.1f} s", "<= 120 s"),
            ("  second start (kept images, projection.npz)", f"{second:.1f} s", "seconds"),
            ("  the map in the browser", "benchmarks/browser.py --scale", "")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", action="store_true", help="also time the metric suite (about a minute)")
    parser.add_argument("--steps", type=int, default=150, help="training steps per measurement")
    parser.add_argument("--stack", type=int, default=4, help="runs in the stacked-training measurement")
    parser.add_argument("--device", default="cpu", help="for the stacked-training measurement (cuda on a GPU)")
    parser.add_argument("--scale", type=Path, metavar="FOLDER",
                        help=f"only the own-images scale rows: a {SCALE_IMAGES:,}-image stand-in set, its model and "
                             "map made in FOLDER (kept for benchmarks/browser.py --scale FOLDER)")
    args = parser.parse_args(argv)
    if args.scale is not None:
        _print_table(scale_figures(args.scale.resolve()))
        return 0
    rows = [("dSprites rendering (1 thread)", f"{render_rate():,.0f} images/s", ">= 20,000 images/s")]
    ours, bare, ratio = training_ratio(args.steps)
    rows.append(("training, vae_core.train", f"{ours:,.0f} images/s", ""))
    rows.append(("training, bare PyTorch loop", f"{bare:,.0f} images/s", ""))
    rows.append(("  ratio (ours / bare)", f"{ratio:.3f}", ">= 0.9"))
    for name in ("dsprites", "faces"):
        contiguous, channels_last = memory_format_rates(name, args.steps)
        rows.append((f"training {name}, --channels-last / default", f"{channels_last / contiguous:.3f}",
                     f"{contiguous:,.0f} -> {channels_last:,.0f} images/s"))
    one, stacked = stacked_rate(args.stack, device=args.device)
    rows.append((f"training 1 run ({args.device})", f"{one:,.1f} model-steps/s", ""))
    rows.append((f"training {args.stack} runs stacked ({args.device})", f"{stacked:,.1f} model-steps/s",
                 ">= 6,600 on an H200"))
    rows.append(("  ratio (stacked / 1 run)", f"{stacked / one:.2f}", ""))
    p50, p95 = decode_latency()
    rows.append(("decode one image p50", f"{p50:.2f} ms", "<= 2 ms"))
    rows.append(("decode one image p95", f"{p95:.2f} ms", ""))
    rows.append(("10 x 11 traversal grid decode", f"{traversal_grid_ms():.1f} ms", "<= 100 ms"))
    if args.metrics:
        total, parts = metric_suite_seconds()
        rows.append(("metric suite (protocol counts)", f"{total:.1f} s", "<= 120 s"))
        rows.extend((f"  {part}", f"{value:.1f} s", "") for part, value in parts.items())
    _print_table(rows)
    return 0


def _print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':>18}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>18}  {target}")
    threads = torch.get_num_threads()
    print(f"(torch {torch.__version__}, {threads} thread{'s' if threads != 1 else ''})")


if __name__ == "__main__":
    raise SystemExit(main())
