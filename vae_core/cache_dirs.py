"""Where the app keeps what it derives between runs (decoders for the browser, a folder's decoded images): under
~/.cache/vae-explorer (or $XDG_CACHE_HOME), each in a private folder. Setting $VAE_EXPLORER_CACHE empty keeps
nothing (the tests do)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

CACHE_ENV = "VAE_EXPLORER_CACHE"  # the decoders' folder; empty: nothing is kept anywhere


def private_folder(path: Path) -> Path | None:
    """`path`, made if missing (0700), when it is a folder of this user's that nobody else may enter; else None."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077
    return path if private else None


def cache_folder(name: str) -> Path | None:
    """The private cache folder `name` under ~/.cache/vae-explorer; None when caching is off or it cannot be
    trusted or made."""
    if os.environ.get(CACHE_ENV) == "":
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return private_folder(base / "vae-explorer" / name)
