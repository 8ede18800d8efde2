"""What the training command checks before a run: where the model goes, on which device, how big a batch
(`check_command`), and what a person should know of their own images (`data_notes`)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import torch

from . import checkpoints as ckpt


def data_notes(dataset) -> None:
    """What a person should know of their folder before a long run: files skipped, colour that is not there."""
    skipped = getattr(dataset, "skipped", [])
    if skipped:
        first, why = skipped[0]
        print(f"note: {len(skipped)} file(s) could not be read and are left out (the first, {first}: {why})",
              file=sys.stderr)
    images = getattr(dataset, "images", None)
    if images is not None and dataset.channels == 3 and np.allclose(images[:, 0], images[:, 1], atol=1 / 255) \
            and np.allclose(images[:, 1], images[:, 2], atol=1 / 255):
        print("note: every image is grey; --channels 1 trains on one channel instead of three copies of it",
              file=sys.stderr)


MAX_BATCH = 4096  # images in a batch: the literature's is 64; beyond this a step only runs away with memory


def check_command(args) -> None:
    """What the command line asks that no config can check: where the model goes and on which device; ValueError
    naming it."""
    if not args.out.strip():
        raise ValueError("--out is empty: name the model folder to write, e.g. --out pretrained/NAME")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {args.out}: a file, not a folder")
    holds_model = (out / ckpt.CONFIG_FILE).exists() or (out / ckpt.WEIGHTS_FILE).exists()
    # another file, not a lock or a temporary (hidden: a run starting or killed); under torchrun, only the process
    # that writes the folder judges it (the others would see its lock appear)
    others = out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())
    if others and not holds_model and not args.resume and int(os.environ.get("RANK", "0")) == 0:
        raise ValueError(f"--out {args.out}: a folder holding other files; a model goes in a new or empty folder")
    if args.resume and out.is_dir() and not holds_model:
        raise ValueError(f"--resume: {args.out} holds no model to continue (no {ckpt.CONFIG_FILE})")
    device = args.device
    if device is not None:
        if not re.fullmatch(r"cpu|cuda(:\d{1,2})?|mps", device):
            raise ValueError(f"--device {device[:40]!r}: cpu, cuda, cuda:N or mps")
        if device.startswith("cuda") and (not torch.cuda.is_available()
                                          or int((device + ":0").split(":")[1]) >= torch.cuda.device_count()):
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if args.batch_size > MAX_BATCH:
        raise ValueError(f"--batch-size {args.batch_size}: at most {MAX_BATCH} (the literature's is 64)")
