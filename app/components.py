"""This app's components-v2 modules (Explore's live decoder, the latent map) and the folders served beside them.

Streamlit serves a v2 component's files from an `asset_dir` declared by an installed package's pyproject.toml;
this app is not installed as one, so each folder is registered with the runtime's component manager directly
(`app.streamlit_internals.register_component_folders`), once per manager. A module reaches a sibling folder by a relative address:
`new URL("../vae_explorer.<folder>/<file>", import.meta.url)`.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import weakref
from pathlib import Path

import streamlit as st

from app import streamlit_internals

PROJECT = "vae_explorer"

# component manager (one per runtime) -> {component name: its mount function}. Keyed weakly by the manager
# itself: an id() of a runtime that has gone can be reused by the next one (AppTest starts many), which then
# lacked the registration.
_mounts: weakref.WeakKeyDictionary[object, dict[str, object]] = weakref.WeakKeyDictionary()


def mount(name: str, folders: dict[str, Path], js: str, css: str | None = None, isolate_styles: bool = True):
    """(the mount function of component `PROJECT.name`, None), registering `folders` (served name -> folder; one
    of them named `name` holds `js` and `css`) first; (None, the reason) when this Streamlit cannot serve it.
    `isolate_styles`: drawn in a shadow root (False for a library that styles its elements from the document)."""
    try:
        mounted = _mounts.setdefault(streamlit_internals.component_registry(), {})
        if name not in mounted:
            streamlit_internals.register_component_folders(PROJECT, folders)
            mounted[name] = st.components.v2.component(f"{PROJECT}.{name}", js=js, css=css,
                                                        isolate_styles=isolate_styles)
        return mounted[name], None
    except Exception as exc:  # noqa: BLE001  the page says why and draws its fallback (tests check the internal)
        return None, f"this Streamlit cannot serve the component ({type(exc).__name__}: {exc})"


def private_folder(prefix: str) -> Path:
    """A fresh folder for this process's served files: private (0700, a name no one could have made first, so no
    one else can plant a page in what the app serves), removed when the server exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
