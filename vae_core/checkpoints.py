"""Model folders: save atomically, load with validation, list what is available.

A model folder holds `config.json` (model and training config, dataset), `model.safetensors` (weights only),
`card.json` (what a person wants to know), `training.csv` and, once evaluated, `projection.npz`. Nothing in
it can run code: weights are safetensors, metadata JSON, arrays npz read with `allow_pickle=False`.

Loading checks every file before trusting it: no pickle anywhere in the folder (by name or by content),
symlinks out of the folder, file sizes, the config's keys, types and ranges, the safetensors header's size,
structure, names, shapes, dtypes and byte offsets against the network the config describes, all before the
weights are read (so a lying header costs no allocation). Every failure is a `CheckpointError` naming the
file and the problem. Saves stage every file first and only then rename them into place, so a crash leaves
the previous files whole.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from . import onnx_folder, python_models
from .atomic import atomic_write_bytes, atomic_write_files
from .config import ConfigError, ExperimentConfig
from .folder_safety import (  # noqa: F401  re-exported: a model folder's checks, for every kind of folder
    MAX_FOLDER_ENTRIES,
    PICKLE_SUFFIXES,
    CheckpointError,
    budget_enforced,
    check_folder,
    safe_file,
)
from .kinds import kind
from .models.vae import VAE

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
LOG_FILE = "training.csv"
PROJECTION_FILE = "projection.npz"
# card keys about the stored weights (what `vae_core.evaluate` measures on them, how they are stored): figures of an
# earlier state once training moves on
EVALUATION_KEYS = ("final", "evaluation", "iwae", "sharpness", "swap", "leak", "metrics", "metrics_seconds",
                   "stored_as")
RESUME_FILE = "resume.safetensors"  # optimizer, step and weights for --resume; not shipped
MODELS_ENV = "VAE_EXPLORER_MODELS"  # extra folders of model folders, separated by os.pathsep
# the shipped models: pretrained/ in the repository, the package vae_explorer_pretrained when installed (pip install .)
_INSTALLED = Path(__file__).resolve().parent.parent / "vae_explorer_pretrained"
PRETRAINED_DIR = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parent.parent / "pretrained"
MAX_JSON_BYTES = 1_000_000
MAX_WEIGHTS_BYTES = 200_000_000
MAX_HEADER_BYTES = 1_000_000  # a safetensors header for our networks is a few KB
SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
                      "I64": torch.int64, "I32": torch.int32}
# what model.safetensors may store, with bytes per number: float32 as trained, or float16 to halve a shipped file
# (`store_weights_as_float16`); the network always computes in float32
STORED_WEIGHT_BYTES = {"F32": 4, "F16": 2}


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, _json_bytes(obj))


def read_json(folder: str | Path, name: str) -> dict:
    """A JSON object from a model folder; CheckpointError if missing, oversize or not an object."""
    path = safe_file(Path(folder), name, MAX_JSON_BYTES)
    obj = _parse_json(path, path.read_bytes(), "not valid JSON")
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return obj


def _parse_json(path: Path, data: bytes, what: str) -> Any:
    """json.loads, with every way hostile text can fail (bad syntax or encoding, nesting deep enough to
    exhaust the stack, integers of more digits than Python converts) reported as CheckpointError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise CheckpointError(f"{path}: {what} (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limits
        raise CheckpointError(f"{path}: {what} ({str(exc)[:200]})") from None


def load_config(folder: str | Path) -> ExperimentConfig:
    """The validated config of a model folder (of a kind trained here: a model from other code has no config.json)."""
    data = read_json(folder, CONFIG_FILE)
    try:
        config = ExperimentConfig.from_dict(data)
    except ConfigError as exc:
        raise CheckpointError(f"{Path(folder) / CONFIG_FILE}: {exc}") from None
    if not kind(config.model.kind).trained_here:
        raise CheckpointError(f"{Path(folder) / CONFIG_FILE}: kind {config.model.kind!r} is not trained here; a model "
                              "from other code is an ONNX folder with explorer.json")
    return config


def steps_in_all(card: dict) -> int | None:
    """The training steps a model saw in all: its own run's (`steps`) and, for a fine-tune, those its starting
    weights had seen (`steps_before`, written when the run began from --init-from). None without a count."""
    own, before = card.get("steps"), card.get("steps_before", 0)
    counts = [v for v in (own, before) if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**12]
    return sum(counts) if isinstance(own, int) and len(counts) == 2 else None


MAX_LOG_BYTES = 5_000_000  # training.csv: a row every 50 steps of a million-step run is about 3 MB
LOG_CURVES = ("recon", "kl", "kl_weight", "capacity", "tc")
KL_DIM_PREFIX = "kl_z"  # training.csv's columns kl_z0, kl_z1, ...: each latent's KL (nats) over the logged steps
MAX_LOG_DIMS = 512


def read_training_log(folder: str | Path) -> dict[str, np.ndarray] | None:
    """A folder's training.csv as curves over steps: {"step": (n,), and each of LOG_CURVES it has: (n,), and
    "kl_per_dim": (n, latents) where the log has kl_z0, kl_z1, ...}, rows that are not numbers left out (a folder
    is anyone's); None without a usable log."""
    import csv
    import io

    try:
        text = safe_file(Path(folder), LOG_FILE, MAX_LOG_BYTES).read_text(encoding="utf-8", errors="replace")
    except CheckpointError:
        return None
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    dims = [f"{KL_DIM_PREFIX}{d}" for d in range(MAX_LOG_DIMS) if f"{KL_DIM_PREFIX}{d}" in (reader.fieldnames or ())]
    names = (*LOG_CURVES, *dims)
    curves: dict[str, list[float]] = {name: [] for name in ("step", *names)}
    for row in rows:
        try:
            step = float(row.get("step", ""))
        except (TypeError, ValueError):
            continue
        if not np.isfinite(step):
            continue
        curves["step"].append(step)
        for name in names:
            try:
                curves[name].append(float(row.get(name) or "nan"))
            except (TypeError, ValueError):
                curves[name].append(float("nan"))
    if len(curves["step"]) < 2:
        return None
    log = {name: np.asarray(values) for name, values in curves.items()
           if name in ("step", *LOG_CURVES) and (name == "step" or np.isfinite(values).any())}
    per_dim = np.array([curves[name] for name in dims], dtype=np.float64).T
    if dims and np.isfinite(per_dim).any():
        log["kl_per_dim"] = per_dim
    return log


def read_card(folder: str | Path) -> dict:
    """The model card, or an empty dict when the folder has none yet."""
    if not (Path(folder) / CARD_FILE).exists():
        return {}
    return read_json(folder, CARD_FILE)


def _read_safetensors_header(path: Path, f, size: int) -> tuple[dict, int]:
    """Read and check the structure of a safetensors header; returns (tensor entries, header length).

    Only the 8-byte length and the header itself are read, after the length is checked against the file size
    and MAX_HEADER_BYTES.
    """
    head = f.read(8)
    if len(head) < 8:
        raise CheckpointError(f"{path}: truncated ({size} bytes, no header)")
    (header_len,) = struct.unpack("<Q", head)
    if header_len > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path}: header of {header_len} bytes, over the {MAX_HEADER_BYTES}-byte limit")
    if header_len > size - 8:
        raise CheckpointError(f"{path}: truncated (header says {header_len} bytes, file has {size - 8})")
    header = _parse_json(path, f.read(header_len), "corrupt safetensors header")
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: corrupt safetensors header (__metadata__ must map names to strings)")
    for name, info in header.items():
        ok = (isinstance(info, dict) and set(info) == {"dtype", "shape", "data_offsets"}
              and isinstance(info["dtype"], str) and isinstance(info["shape"], list)
              and all(_is_count(n) for n in info["shape"]) and isinstance(info["data_offsets"], list)
              and len(info["data_offsets"]) == 2 and all(_is_count(n) for n in info["data_offsets"])
              and info["data_offsets"][0] <= info["data_offsets"][1])
        if not ok:
            raise CheckpointError(f"{path}: corrupt safetensors header (entry {str(name)[:80]!r} is malformed)")
    return header, header_len


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def _check_weights_header(path: Path, header: dict, model_config, data_len: int) -> None:
    """Names, shapes and dtypes in the file must be exactly those of the configured network, and the byte
    offsets must tile the data exactly (each tensor its own size, no gaps, no overlaps, nothing after)."""
    with torch.device("meta"):  # shapes without allocating a byte
        expected = {k: v for k, v in kind(model_config.kind).build(model_config).state_dict().items()}
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: tensors do not match config.json (missing {missing[:5]}, "
                              f"unexpected {[n[:80] for n in extra[:5]]})")
    for name, tensor in expected.items():
        info = header[name]
        if list(info["shape"]) != list(tensor.shape):
            raise CheckpointError(f"{path}: {name} has shape {info['shape']}, config.json implies "
                                  f"{list(tensor.shape)}")
        if info["dtype"] not in STORED_WEIGHT_BYTES:
            raise CheckpointError(f"{path}: {name} has dtype {info['dtype'][:20]}, expected F32 or F16")
    position = 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        begin, end = info["data_offsets"]
        needed = expected[name].numel() * STORED_WEIGHT_BYTES[info["dtype"]]
        if begin != position or end - begin != needed:
            raise CheckpointError(f"{path}: {name} has byte offsets {[begin, end]}; a {list(expected[name].shape)}"
                                  f" {info['dtype']} tensor needs {needed} bytes from byte {position}")
        position = end
    if position != data_len:
        raise CheckpointError(f"{path}: truncated or padded (tensors need {position} bytes, file holds {data_len})")


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
    if python_models.is_registered(str(folder)):  # named on the serve command line: its code runs
        try:
            model, config = python_models.load_python_model(str(folder))
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from None
        return LoadedModel(python_models.REGISTERED[str(folder)], Path(folder), model.to(device), config, {})
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a model folder")
    if onnx_folder.is_onnx_folder(folder):  # a model from other code
        try:
            model, config = onnx_folder.load_onnx_folder(folder)
        except ConfigError as exc:
            raise CheckpointError(f"{folder}: {exc}") from None
        return LoadedModel(folder.name, folder, model.to(device), config, {})
    check_folder(folder)
    config = load_config(folder)
    card = read_card(folder)
    path = safe_file(folder, WEIGHTS_FILE, MAX_WEIGHTS_BYTES)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        header, header_len = _read_safetensors_header(path, f, size)
        _check_weights_header(path, header, config.model, size - 8 - header_len)
        f.seek(0)
        raw = f.read(size + 1)  # the size the config implies, checked above; +1 sees a file that grew since
    if len(raw) != size:
        raise CheckpointError(f"{path}: changed while being read")
    try:
        state = load_safetensors_bytes(raw)
    except Exception as exc:  # noqa: BLE001  the safetensors parser's own checks
        raise CheckpointError(f"{path}: corrupt ({exc})") from None
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: {name} holds NaN or infinite values")
    model = kind(config.model.kind).build(config.model)
    model.load_state_dict({name: tensor.float() for name, tensor in state.items()}, strict=True)
    model.to(device).eval()
    return LoadedModel(folder.name, folder, model, config, card)


def save_model(folder: str | Path, model: VAE, config: ExperimentConfig, card: dict | None = None) -> None:
    """Write model.safetensors, config.json and (if given) card.json: all staged before any is replaced."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    files = {folder / WEIGHTS_FILE: save_safetensors_bytes(state), folder / CONFIG_FILE: _json_bytes(config.to_dict())}
    if card is not None:
        files[folder / CARD_FILE] = _json_bytes(card)
    atomic_write_files(files)


def store_weights_as_float16(folder: str | Path) -> dict:
    """Round a folder's weights to float16 in place, halving model.safetensors (the zoo's budget), and drop the
    card's measured figures: they were measured on the float32 weights, so evaluate again (`vae_core.evaluate
    --store-float16` does both). Returns what the rounding changed, for the card.

    Raises:
        CheckpointError: a weight beyond float16's range, or a folder that does not load.
    """
    if not (Path(folder) / WEIGHTS_FILE).is_file():  # an ONNX folder, a function named on the command line
        raise CheckpointError(f"{folder}: only a folder with {WEIGHTS_FILE} stores its weights as float16")
    loaded = load_model(folder)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in loaded.model.state_dict().items()}
    rounded = {k: v.to(torch.float16) for k, v in state.items()}
    for name, tensor in rounded.items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{folder}: {name} holds weights beyond float16's range; keep float32")
    largest = max(float((rounded[k].float() - v).abs().max()) for k, v in state.items() if v.numel())
    card = {k: v for k, v in loaded.card.items() if k not in EVALUATION_KEYS}
    card["stored_as"] = {"dtype": "float16", "largest_weight_change": largest}
    atomic_write_files({Path(folder) / WEIGHTS_FILE: save_safetensors_bytes(rounded),
                        Path(folder) / CARD_FILE: _json_bytes(card)})
    return card["stored_as"]


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


def missing_model_dirs() -> list[str]:
    """The folders named in $VAE_EXPLORER_MODELS that are not folders (a misspelt path was ignored without a word)."""
    return [str(d) for d in model_dirs()[1:] if not d.is_dir()]


def list_models(extra: list[str | Path] | None = None) -> list[ModelEntry]:
    """Every model in `model_dirs` (a folder with a config.json, or an ONNX folder with explorer.json), after the
    functions named on the serve command line (vae_core.python_models); broken ones carry their error.

    The config and card (an ONNX folder's manifest) are validated here; weights and graphs when a model is loaded,
    and a named function is called then.
    """
    entries: list[ModelEntry] = [ModelEntry(spec, Path(path)) for path, spec in python_models.REGISTERED.items()]
    seen: set[Path] = set()
    for root in model_dirs(extra):
        one = (root / CONFIG_FILE).exists() or onnx_folder.is_onnx_folder(root)
        candidates = [root] if one else sorted(root.glob("*")) if root.is_dir() else []
        for folder in candidates:
            if not ((folder / CONFIG_FILE).exists() or onnx_folder.is_onnx_folder(folder)) or folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            entries.append(_entry(folder))
    return entries


_entries: dict[Path, tuple[tuple, ModelEntry]] = {}  # folder -> (its stamp, its checked entry)
MAX_CACHED_ENTRIES = 1024


def _stamp(folder: Path) -> tuple:
    """What changes when a folder's files do: every write here renames a file into place, which changes the
    folder's own time, and the times of the files an entry is made from. (Loading checks the folder again.)"""
    times = []
    for path in (folder, folder / CONFIG_FILE, folder / CARD_FILE, folder / WEIGHTS_FILE):
        try:
            times.append(path.stat().st_mtime_ns)
        except OSError:
            times.append(None)
    return tuple(times)


def _entry(folder: Path) -> ModelEntry:
    """A folder's entry, checked again only when one of its files changed: the app lists the models on every
    page run, and reading a folder of a thousand files to check them took 0.75 s for 60 folders each time."""
    stamp = (_stamp(folder), budget_enforced())  # checked again when the budget is turned on
    cached = _entries.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    entry = ModelEntry(folder.name, folder)
    try:
        check_folder(folder)
        if onnx_folder.is_onnx_folder(folder):  # from other code: its graphs are checked when it is opened
            entry.config = onnx_folder.onnx_folder_config(folder)
            for name in (onnx_folder.ENCODER, onnx_folder.DECODER):
                safe_file(folder, name, onnx_folder.MAX_ONNX_BYTES)
        else:
            entry.config = load_config(folder)
            entry.card = read_card(folder)
            if not (folder / WEIGHTS_FILE).exists():
                raise CheckpointError(f"{folder / WEIGHTS_FILE}: missing")
    except CheckpointError as exc:
        entry.error = str(exc)
    except ConfigError as exc:  # an ONNX folder's manifest
        entry.error = f"{folder / onnx_folder.MANIFEST}: {exc}"
    if len(_entries) >= MAX_CACHED_ENTRIES:
        _entries.clear()
    _entries[folder] = (stamp, entry)
    return entry
