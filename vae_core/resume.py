"""Resuming a training run exactly: the resume file (weights, Adam's state, the step and the log so far, in one
atomic safetensors file kept apart from the shipped ones), and continuing a shipped folder from its weights
alone at a recorded optimizer reset.

A network that trains with state it does not ship (a FactorVAE's critic and the critic's own Adam) says so with
`training_state()` -> tensors and `load_training_state(tensors)`; those tensors go in the resume file under
`TRAINING_ONLY`, and such a network cannot continue from its shipped weights alone."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from . import checkpoints as ckpt
from .config import ExperimentConfig

TRAINING_ONLY = "aux."  # resume-file prefix of the state a network trains with but does not ship


def _optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    tensors, scalars = {}, {}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, scalars


def save_resume_state(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, log_rows: list,
                      log_accum: dict | None = None) -> None:
    """One atomic file with the weights, the optimizer and the step: what --resume needs and nothing shipped."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_tensors, opt_scalars = _optimizer_to_tensors(opt)
    tensors.update(opt_tensors)
    if hasattr(model, "training_state"):
        tensors.update({TRAINING_ONLY + k: v for k, v in model.training_state().items()})
    meta = {
        "step": json.dumps(step),
        "param_groups": json.dumps(opt.state_dict()["param_groups"]),
        "optim_scalars": json.dumps(opt_scalars),
        "log_rows": json.dumps(log_rows),
        "log_accum": json.dumps(log_accum or {}),  # the log row in progress, so a resume logs the same means
    }
    ckpt.atomic_write_bytes(folder / ckpt.RESUME_FILE, save_safetensors_bytes(tensors, metadata=meta))


def load_resume_state(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[int, list, dict]:
    """Restore weights and optimizer from the resume file; returns (step, log rows, the log row in progress)."""
    path = folder / ckpt.RESUME_FILE
    raw = path.read_bytes()
    from safetensors import safe_open  # metadata reader; the tensors come from the bytes below

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_safetensors_bytes(raw)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in json.loads(meta["optim_scalars"]).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    training_only = {k[len(TRAINING_ONLY):]: v for k, v in tensors.items() if k.startswith(TRAINING_ONLY)}
    if training_only:
        if not hasattr(model, "load_training_state"):
            raise ckpt.CheckpointError(f"{path} holds training-only state ({TRAINING_ONLY}*) that a "
                                       f"{type(model).__name__} does not take")
        model.load_training_state(training_only)
    return json.loads(meta["step"]), json.loads(meta["log_rows"]), json.loads(meta.get("log_accum", "{}"))


def load_shipped_state(folder: Path, model: torch.nn.Module, exp: ExperimentConfig) -> tuple[int, list]:
    """Continue from a model folder's weights alone (no resume file): allowed only at a recorded optimizer reset.

    A run with a reset at step k clears Adam's moments there, so its weights after k depend only on the weights at
    k: loading them and starting a fresh optimizer is exactly that run (from weights stored as float16, the run from
    the rounded weights: close, not exact). Returns (step, log rows).
    """
    step = int(ckpt.read_card(folder).get("steps", 0))
    t = exp.train
    if hasattr(model, "training_state"):
        raise ckpt.CheckpointError(
            f"{folder} has no {ckpt.RESUME_FILE}, and a {exp.model.kind} trains with state its folder does not ship "
            "(a critic and its optimiser): it continues only from its resume file")
    if step not in t.optimizer_resets:
        raise ckpt.CheckpointError(
            f"{folder} holds weights at step {step} but no {ckpt.RESUME_FILE}; continuing it exactly needs an "
            f"optimizer reset there: pass --reset-optimizer-at {step}")
    if step % t.log_every:
        raise ckpt.CheckpointError(f"step {step} is not a multiple of log_every={t.log_every}")
    model.load_state_dict(ckpt.load_model(folder).model.state_dict(), strict=True)
    with open(folder / ckpt.LOG_FILE, newline="") as f:
        rows = [row for row in csv.DictReader(f) if int(row["step"]) <= step]
    return step, rows
