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
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from .atomic import atomic_write_bytes, atomic_write_files
from .config import ConfigError, ExperimentConfig
from .kinds import kind
from .models.vae import VAE

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
LOG_FILE = "training.csv"
PROJECTION_FILE = "projection.npz"
# card keys that `vae_core.evaluate` measures on the weights: figures of an earlier state once training moves on
EVALUATION_KEYS = ("final", "evaluation", "iwae", "sharpness", "swap", "leak", "metrics", "metrics_seconds")
RESUME_FILE = "resume.safetensors"  # optimizer, step and weights for --resume; not shipped
MODELS_ENV = "VAE_EXPLORER_MODELS"  # extra folders of model folders, separated by os.pathsep
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
MAX_JSON_BYTES = 1_000_000
MAX_WEIGHTS_BYTES = 200_000_000
MAX_HEADER_BYTES = 1_000_000  # a safetensors header for our networks is a few KB
MAX_FOLDER_ENTRIES = 1000
# Files that Python loads by unpickling (running whatever code they name): never read, and a folder holding
# one is refused, so nobody is led to load it by hand either.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".dill")
SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
                      "I64": torch.int64, "I32": torch.int32}


class CheckpointError(Exception):
    """A model folder cannot be used; the message names the file and the problem."""


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, _json_bytes(obj))


PICKLE_PROBE_BYTES = 1_000_000  # of a file (or a zip member) parsed as pickle opcodes


def _is_pickle_stream(head: bytes) -> bool:
    """Whether `head` parses as a whole pickle stream of any protocol (0 and 1 included: they have no PROTO
    header), ending in STOP. Parsed by pickletools, never loaded."""
    import pickletools

    names = []
    try:
        for opcode, _arg, _pos in pickletools.genops(head):  # stops after STOP, raises on what is not a pickle
            names.append(opcode.name)
    except Exception:  # noqa: BLE001  text or binary that is not a whole pickle stream
        return False
    return names[-1:] == ["STOP"] and len(names) >= 2


def _looks_like_pickle(path: Path) -> bool:
    """A pickle stream of any protocol, or a zip archive holding one under any name (torch.save's format)."""
    try:
        with open(path, "rb") as f:
            head = f.read(PICKLE_PROBE_BYTES)
        # safetensors: a little-endian u64 header length, then "{"; a length of 0x0280 to 0x0580 + 256k starts
        # with the same two bytes as a pickle's PROTO opcode, so that layout is not taken for one
        safetensors_layout = head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size
        if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") and not safetensors_layout:
            return True
        if head[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()[:MAX_FOLDER_ENTRIES]
                if any(m.filename.endswith((".pkl", ".pickle")) for m in members):
                    return True
                for member in members:  # npz members are .npy arrays, read with allow_pickle=False: skipped
                    if not member.filename.endswith(".npy") or path.suffix != ".npz":
                        with archive.open(member) as f:
                            if _is_pickle_stream(f.read(PICKLE_PROBE_BYTES)):
                                return True
            return False
        return not safetensors_layout and head[:1] not in (b"{", b"[") and _is_pickle_stream(head)
    except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError):
        return False


def check_folder(folder: str | Path) -> None:
    """Refuse a model folder holding a pickle (by name or by content) or too many entries to inspect.

    Only regular files are opened (never a symlink or a FIFO, which could block), and only their first bytes.
    """
    folder = Path(folder)
    try:
        entries = []
        with os.scandir(folder) as it:
            for entry in it:
                entries.append(entry)
                if len(entries) > MAX_FOLDER_ENTRIES:
                    raise CheckpointError(f"{folder}: over {MAX_FOLDER_ENTRIES} entries; not a model folder")
    except OSError as exc:
        raise CheckpointError(f"{folder}: cannot be listed ({exc.strerror})") from None
    for entry in sorted(entries, key=lambda e: e.name):
        path = Path(entry.path)
        pickled = path.suffix.lower() in PICKLE_SUFFIXES
        if not pickled and entry.is_file(follow_symlinks=False):
            pickled = _looks_like_pickle(path)
        if pickled:
            raise CheckpointError(
                f"{path}: a pickle file (loading it can run arbitrary code); model folders hold only "
                "safetensors and JSON here: remove it, or convert it to safetensors"
            )


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
    """The validated config of a model folder."""
    data = read_json(folder, CONFIG_FILE)
    try:
        return ExperimentConfig.from_dict(data)
    except ConfigError as exc:
        raise CheckpointError(f"{Path(folder) / CONFIG_FILE}: {exc}") from None


def steps_in_all(card: dict) -> int | None:
    """The training steps a model saw in all: its own run's (`steps`) and, for a fine-tune, those its starting
    weights had seen (`steps_before`, written when the run began from --init-from). None without a count."""
    own, before = card.get("steps"), card.get("steps_before", 0)
    counts = [v for v in (own, before) if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**12]
    return sum(counts) if isinstance(own, int) and len(counts) == 2 else None


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
        if SAFETENSORS_DTYPES.get(info["dtype"]) != torch.float32:
            raise CheckpointError(f"{path}: {name} has dtype {info['dtype'][:20]}, expected F32")
    position = 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        begin, end = info["data_offsets"]
        if begin != position or end - begin != expected[name].numel() * 4:
            raise CheckpointError(f"{path}: {name} has byte offsets {[begin, end]}; a {list(expected[name].shape)}"
                                  f" F32 tensor needs {expected[name].numel() * 4} bytes from byte {position}")
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
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a model folder")
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
    model.load_state_dict(state, strict=True)
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
    stamp = _stamp(folder)
    cached = _entries.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    entry = ModelEntry(folder.name, folder)
    try:
        check_folder(folder)
        entry.config = load_config(folder)
        entry.card = read_card(folder)
        if not (folder / WEIGHTS_FILE).exists():
            raise CheckpointError(f"{folder / WEIGHTS_FILE}: missing")
    except CheckpointError as exc:
        entry.error = str(exc)
    if len(_entries) >= MAX_CACHED_ENTRIES:
        _entries.clear()
    _entries[folder] = (stamp, entry)
    return entry
