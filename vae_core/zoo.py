"""The pretrained zoo's recorded settings, and `python -m vae_core.zoo` (`make pretrained`) to rebuild it.

Each entry is the exact command line of `vae_core.train` that produced the shipped folder. Every batch and noise
draw is a function of (seed, step) and no schedule depends on the planned length, so a run stopped at step k
has exactly the weights of a run asked for k steps: the shipped models are reproducible from these lines (bit for
bit on the CPU with the same number of threads; on a GPU, whose convolution kernels are not bitwise deterministic,
close but not equal).
Rebuilding resumes folders that are part-way, then re-evaluates each (`vae_core.evaluate`, after rounding the
weights of `STORED_AS_FLOAT16` to float16). The browser's decoder is not part of a folder: the app derives it from
the weights (`vae_core.export.derived_decoder`).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from .checkpoints import PRETRAINED_DIR, read_card

ZOO: dict[str, str] = {
    "dsprites-ae": "--dataset dsprites --objective ae --steps 30000 --reset-optimizer-at 26000 --lr-from 26000:1e-4",
    "dsprites-vae": "--dataset dsprites --objective vae --beta 1 --steps 68000 --reset-optimizer-at 26000 "
                    "--reset-optimizer-at 50000 --lr-from 56000:1e-4",
    "dsprites-beta-vae": "--dataset dsprites --objective beta-vae --beta 4 --steps 132000 --reset-optimizer-at 16000 "
                         "--reset-optimizer-at 48000 --lr-from 120000:1e-4",
    "dsprites-beta-tcvae": "--dataset dsprites --objective beta-tcvae --beta 6 --seed 1 --steps 98000 "
                           "--reset-optimizer-at 26000 --reset-optimizer-at 74000 --lr-from 74000:1e-4",
    "dsprites-factorvae": "--dataset dsprites --objective factor-vae --tc-weight 40 --steps 20000",
    "faces-vae": "--dataset faces --objective vae --beta 1 --steps 42000 --reset-optimizer-at 6000",
    "faces-beta-vae": "--dataset faces --objective beta-vae --beta 4 --steps 30000 --reset-optimizer-at 6000",
    "faces-beta-tcvae": "--dataset faces-expressive --objective beta-tcvae --beta 6 --seed 1 --steps 14000",
    "digits-vae": "--dataset digits --objective vae --beta 1 --latent-dim 10 --steps 8000",
    "digits-vae-2d": "--dataset digits --objective vae --beta 1 --latent-dim 2 --steps 8000",
    "dsprites-cvae": "--dataset dsprites --objective cvae --condition shape --steps 28000 --reset-optimizer-at 8000",
    "dsprites-cvae-adversary": "--dataset dsprites --objective cvae --condition shape --adversary 10 "
                               "--init-from pretrained/dsprites-cvae --steps 16000",
    "dsprites-vq-vae": "--dataset dsprites --objective vq-vae --vq-ema --steps 2000",
    "faces-vae-gan": "--dataset faces --objective vae-gan --init-from pretrained/faces-vae --gan-weight 20 --lr 2e-4 "
                     "--batch-size 32 --steps 1000",
}
# folders whose weights are stored as float16 (half the bytes, for the zoo's 35 MiB), rounded before they are
# evaluated, so that the card's figures are those of the shipped weights
STORED_AS_FLOAT16 = frozenset({"dsprites-ae", "dsprites-factorvae", "digits-vae", "digits-vae-2d", "faces-beta-tcvae", "faces-vae-gan"})


def resumable_training(settings: str, folder: Path, log_every: int = 200) -> list[str]:
    """`vae_core.train` with `settings` into `folder`, resuming whatever the folder already holds."""
    return [sys.executable, "-m", "vae_core.train", *shlex.split(settings), "--out", str(folder),
            "--checkpoint-every", "2000", "--log-every", str(log_every), "--resume"]


def train_command(name: str, out_dir: Path = PRETRAINED_DIR) -> list[str]:
    """The training command line for zoo entry `name`, resuming whatever is already in its folder."""
    return resumable_training(ZOO[name], out_dir / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", choices=[[], *ZOO], help="zoo entries (default: all)")
    parser.add_argument("--out-dir", type=Path, default=PRETRAINED_DIR)
    parser.add_argument("--no-evaluate", action="store_true")
    parser.add_argument("--list", action="store_true", help="print the recorded settings and stop")
    args = parser.parse_args(argv)
    names = args.names or list(ZOO)
    if args.list:
        for name in names:
            print(f"{name}: {ZOO[name]}")
        return 0
    for name in names:
        card = read_card(args.out_dir / name) if (args.out_dir / name).is_dir() else {}
        print(f"== {name}: {ZOO[name]} (now at step {card.get('steps', 0)})", flush=True)
        subprocess.run(train_command(name, args.out_dir), check=True)
        if not args.no_evaluate:
            subprocess.run([sys.executable, "-m", "vae_core.evaluate", str(args.out_dir / name),
                            *(["--store-float16"] if name in STORED_AS_FLOAT16 else [])], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
