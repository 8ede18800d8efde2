"""The checks every model folder passes before anything in it is read: no pickle in it (by name or by content), no
more entries than a model folder has, a cost within the budget (`vae_core.folder_budget`: weights, compute, the
browser's decoder, the projection, judged from config.json and file headers), and each file opened only inside the
folder, as a regular file, under a size limit. `vae_core.checkpoints` (our folders) and `vae_core.onnx_folder` (models from other code) both rely on them."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

MAX_FOLDER_ENTRIES = 1000
# Files that Python loads by unpickling (running whatever code they name): never read, and a folder holding
# one is refused, so nobody is led to load it by hand either.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".dill")


class CheckpointError(Exception):
    """A model folder cannot be used; the message names the file and the problem."""


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


_serving = None  # the budget's check, where this process is the app's server: it alone holds folders to it


def serve_within_budget(check=None) -> None:
    """Hold every folder this process lists or opens to the cost budget: `check(folder)` raising for a folder over
    it (`vae_core.folder_budget.check_budget`, handed over by the app's server: a classroom's folders are anyone's,
    and the class shares the server; this module cannot import it, which reads configs through checkpoints). The
    command-line tools leave it off: a person training, evaluating or exporting their own model on their own
    command line may use any size. None turns it off."""
    global _serving
    _serving = check


def budget_enforced() -> bool:
    return _serving is not None


def check_folder(folder: str | Path, budget: bool | None = None) -> None:
    """Refuse a model folder holding a pickle (by name or by content), too many entries to inspect, or (with
    `budget`, by default where `serve_within_budget` turned it on; False: not) costing more than
    `vae_core.folder_budget.BUDGET` (FolderTooLarge, naming the figure and the limit).

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
    if _serving is not None and budget is not False:
        _serving(folder)


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


