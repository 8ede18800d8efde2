"""Model folders: save atomically, load with validation, list what is available.

A model folder holds `config.json` (model and training config, dataset), `model.safetensors` (weights only),
`card.json` (what a person wants to know), `training.csv` and, once evaluated, `projection.npz`. Nothing in
it can run code: weights are safetensors, metadata JSON, arrays npz read with `allow_pickle=False`.

Loading checks every file before trusting it: symlinks out of the folder, file sizes, the config's keys and
ranges, the safetensors header's names, shapes and dtypes against the network the config describes, all
before any weights are read. Every failure is a `CheckpointError` naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from .config import ConfigError, ExperimentConfig
from .family import build_model
from .model import VAE

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
LOG_FILE = "training.csv"
PROJECTION_FILE = "projection.npz"
RESUME_FILE = "resume.safetensors"  # optimizer, step and weights for --resume; not shipped
MODELS_ENV = "VAE_EXPLORER_MODELS"  # extra folders of model folders, separated by os.pathsep
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
MAX_JSON_BYTES = 1_000_000
MAX_WEIGHTS_BYTES = 200_000_000
SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
                      "I64": torch.int64, "I32": torch.int32}


class CheckpointError(Exception):
    """A model folder cannot be used; the message names the file and the problem."""


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide shipped files from other users
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def safe_file(folder: Path, name: str, max_bytes: int) -> Path:
    """The path of `name` inside `folder`, refusing symlinks that leave it, non-files and oversize files."""
    path = folder / name
    if not path.exists():
        raise CheckpointError(f"{path}: missing")
    resolved = path.resolve()
    if folder.resolve() not in resolved.parents:
        raise CheckpointError(f"{path}: a link to {resolved}, outside the model folder; refused")
    if not resolved.is_file():
        raise CheckpointError(f"{path}: not a regular file")
    size = resolved.stat().st_size
    if size > max_bytes:
        raise CheckpointError(f"{path}: {size} bytes, over the {max_bytes}-byte limit")
    return resolved


def read_json(folder: str | Path, name: str) -> dict:
    """A JSON object from a model folder; CheckpointError if missing, oversize or not an object."""
    path = safe_file(Path(folder), name, MAX_JSON_BYTES)
    try:
        obj = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return obj


def load_config(folder: str | Path) -> ExperimentConfig:
    """The validated config of a model folder."""
    data = read_json(folder, CONFIG_FILE)
    try:
        return ExperimentConfig.from_dict(data)
    except ConfigError as exc:
        raise CheckpointError(f"{Path(folder) / CONFIG_FILE}: {exc}") from None


def read_card(folder: str | Path) -> dict:
    """The model card, or an empty dict when the folder has none yet."""
    if not (Path(folder) / CARD_FILE).exists():
        return {}
    return read_json(folder, CARD_FILE)


def _read_safetensors_header(path: Path, raw: bytes) -> dict:
    """Parse and check a safetensors header against the file's length (catches truncation)."""
    if len(raw) < 8:
        raise CheckpointError(f"{path}: truncated ({len(raw)} bytes, no header)")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if header_len > len(raw) - 8:
        raise CheckpointError(f"{path}: truncated (header says {header_len} bytes, file has {len(raw) - 8})")
    try:
        header = json.loads(raw[8: 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: corrupt safetensors header") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header")
    header.pop("__metadata__", None)
    data_len = len(raw) - 8 - header_len
    end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
    if end != data_len:
        raise CheckpointError(f"{path}: truncated or padded (tensors need {end} bytes, file holds {data_len})")
    return header


def _check_weights_header(path: Path, header: dict, model_config) -> None:
    """Names, shapes and dtypes in the file must be exactly those of the configured network."""
    with torch.device("meta"):  # shapes without allocating a byte
        expected = {k: v for k, v in build_model(model_config).state_dict().items()}
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: tensors do not match config.json (missing {missing[:5]}, unexpected {extra[:5]})")
    for name, tensor in expected.items():
        info = header[name]
        if list(info.get("shape", [])) != list(tensor.shape):
            raise CheckpointError(f"{path}: {name} has shape {info.get('shape')}, config.json implies "
                                  f"{list(tensor.shape)}")
        if SAFETENSORS_DTYPES.get(info.get("dtype")) != torch.float32:
            raise CheckpointError(f"{path}: {name} has dtype {info.get('dtype')}, expected F32")


@dataclass
class LoadedModel:
    """A model ready to use, with everything its folder says about it."""

    name: str
    path: Path
    model: VAE
    config: ExperimentConfig
    card: dict = field(default_factory=dict)


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Validate a model folder and rebuild its model with strict loading, in eval mode.

    Raises:
        CheckpointError: naming the file and the problem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a model folder")
    config = load_config(folder)
    path = safe_file(folder, WEIGHTS_FILE, MAX_WEIGHTS_BYTES)
    raw = path.read_bytes()
    header = _read_safetensors_header(path, raw)
    _check_weights_header(path, header, config.model)
    try:
        state = load_safetensors_bytes(raw)
    except Exception as exc:  # noqa: BLE001  the safetensors parser's own checks
        raise CheckpointError(f"{path}: corrupt ({exc})") from None
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: {name} holds NaN or infinite values")
    model = build_model(config.model)
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    return LoadedModel(folder.name, folder, model, config, read_card(folder))


def save_model(folder: str | Path, model: VAE, config: ExperimentConfig, card: dict | None = None) -> None:
    """Write config.json, model.safetensors and (if given) card.json, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    atomic_write_json(folder / CONFIG_FILE, config.to_dict())
    atomic_write_bytes(folder / WEIGHTS_FILE, save_safetensors_bytes(state))
    if card is not None:
        atomic_write_json(folder / CARD_FILE, card)


def update_card(folder: str | Path, updates: dict) -> dict:
    """Merge `updates` into card.json (atomically) and return the new card."""
    card = read_card(folder)
    card.update(updates)
    atomic_write_json(Path(folder) / CARD_FILE, card)
    return card


@dataclass
class ModelEntry:
    """One folder in the model list: usable (error is None) or not, with the reason."""

    name: str
    path: Path
    error: str | None = None
    card: dict = field(default_factory=dict)
    config: ExperimentConfig | None = None


def model_dirs(extra: list[str | Path] | None = None) -> list[Path]:
    """pretrained/, then the folders in $VAE_EXPLORER_MODELS, then `extra`."""
    dirs = [PRETRAINED_DIR]
    dirs += [Path(p) for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
    dirs += [Path(p) for p in extra or []]
    return dirs


def list_models(extra: list[str | Path] | None = None) -> list[ModelEntry]:
    """Every model folder (a folder with a config.json) in `model_dirs`; broken ones carry their error.

    The config and card are validated here; weights are checked when a model is loaded.
    """
    entries: list[ModelEntry] = []
    seen: set[Path] = set()
    for root in model_dirs(extra):
        candidates = [root] if (root / CONFIG_FILE).exists() else sorted(root.glob("*")) if root.is_dir() else []
        for folder in candidates:
            if not (folder / CONFIG_FILE).exists() or folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            entry = ModelEntry(folder.name, folder)
            try:
                entry.config = load_config(folder)
                entry.card = read_card(folder)
                if not (folder / WEIGHTS_FILE).exists():
                    raise CheckpointError(f"{folder / WEIGHTS_FILE}: missing")
            except CheckpointError as exc:
                entry.error = str(exc)
            entries.append(entry)
    return entries
