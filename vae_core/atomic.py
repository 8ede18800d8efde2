"""Writing model folders safely: files staged and renamed into place (never half-written), and one writer at
a time (a lock on the folder, which also clears the temporary files a killed writer left behind)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".writing.lock"


class FolderBusy(RuntimeError):
    """Another process is writing the folder."""


def _fsync_dir(folder: Path) -> None:
    """Make renames in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stage(path: Path, data: bytes) -> str:
    """`data` in a fsynced temporary file beside `path`; returns its name (removed again on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide shipped files from other users
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_files(files: dict[Path, bytes]) -> None:
    """Write several files so that a crash leaves each either old or new, never half-written: every file is
    staged (written and fsynced) before the first is renamed into place, so a failure while writing changes
    nothing, and the renames that follow take microseconds."""
    staged: dict[Path, str] = {}
    try:
        for path, data in files.items():
            staged[Path(path)] = _stage(Path(path), data)
        for path, tmp in staged.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    for folder in {p.parent for p in staged}:
        _fsync_dir(folder)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`: never half-written."""
    atomic_write_files({Path(path): data})


@contextlib.contextmanager
def writing(folder: str | Path) -> Iterator[Path]:
    """Hold `folder` for one writer: a second process asking for it gets FolderBusy at once, instead of both
    writing and leaving a mixed folder. The temporary files of an earlier writer that was killed are removed
    first (no one else can be writing them while the lock is held). The folder is created if needed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise FolderBusy(f"{folder} is being written by {holder}; wait for it to finish or choose another "
                             "--out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        yield folder
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would let two writers lock two files)
