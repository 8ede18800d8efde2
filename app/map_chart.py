"""The latent map on the page: a Plotly figure the browser updates in place (app/plotly_map/map.js).

Streamlit's own Plotly element is keyed by a hash of its whole figure, so a new colouring or one placed upload
threw the chart away and drew it anew in the browser (1.6-2.8 s of CPU in headless Chromium here, where
`Plotly.react` on the same figure takes 0.3 s). The component keeps one chart and reacts to each new figure.
Where it cannot be served, the page draws Streamlit's element instead, with the same selection in the session.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit as st

from app import components
from vae_core.checkpoints import atomic_write_bytes

ASSETS = Path(__file__).resolve().parent / "plotly_map"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"  # as the Python package ships it
SELECTION_MODES = ("points", "box", "lasso")
_served: Path | None = None


def served_plotly() -> Path:
    """This process's private folder (`components.private_folder`) holding plotly.min.js gzipped once: Streamlit would
    gzip the 4.6 MB file anew for every page that opens the map (0.12 s of the server's CPU each); a .gz file it
    serves as it is, and map.js inflates it."""
    global _served
    if _served is None or not (_served / "plotly.min.js.gz").is_file():
        folder = components.private_folder("vae-explorer-plotly-")
        atomic_write_bytes(folder / "plotly.min.js.gz", gzip.compress(PLOTLY_JS.read_bytes(), 6, mtime=0))
        _served = folder
    return _served


def _mount():
    if not (ASSETS / "map.js").is_file() or not PLOTLY_JS.is_file():
        return None, f"missing map.js in {ASSETS} or {PLOTLY_JS}"
    try:
        folders = {"plotly_map": ASSETS, "plotly_js": served_plotly()}
    except OSError as exc:
        return None, f"plotly.js could not be prepared ({exc})"
    return components.mount("plotly_map", folders, js="map.js", css="map.css",
                            isolate_styles=False)  # plotly.js styles its chart from the document


def show(fig: go.Figure, key: str, on_select) -> None:
    """Draw `fig`; a selection on it is in `st.session_state[key]["selection"]` when `on_select` is called."""
    mount, _ = _mount()
    if mount is None:
        st.plotly_chart(fig, key=key, selection_mode=SELECTION_MODES, on_select=on_select)
        return
    mount(key=key, data={"figure": fig.to_json()}, default={"selection": None}, on_selection_change=on_select)
