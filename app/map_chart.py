"""The latent map on the page: a Plotly figure the browser updates in place (app/plotly_map/map.js).

Streamlit's own Plotly element is keyed by a hash of its whole figure, so a new colouring or one placed upload
threw the chart away and drew it anew in the browser (1.6-2.8 s of CPU in headless Chromium here, where
`Plotly.react` on the same figure takes 0.3 s). The component keeps one chart and reacts to each new figure.
Where it cannot be served, the page draws Streamlit's element instead, with the same selection in the session.
"""

from __future__ import annotations

from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit as st

from app import components

ASSETS = Path(__file__).resolve().parent / "plotly_map"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data"  # plotly.min.js, as the Python package ships it
SELECTION_MODES = ("points", "box", "lasso")


def _mount():
    if not (ASSETS / "map.js").is_file() or not (PLOTLY_JS / "plotly.min.js").is_file():
        return None, f"missing map.js in {ASSETS} or plotly.min.js in {PLOTLY_JS}"
    return components.mount("plotly_map", {"plotly_map": ASSETS, "plotly_js": PLOTLY_JS}, js="map.js",
                            css="map.css", isolate_styles=False)  # plotly.js styles its chart from the document


def show(fig: go.Figure, key: str, on_select) -> None:
    """Draw `fig`; a selection on it is in `st.session_state[key]["selection"]` when `on_select` is called."""
    mount, _ = _mount()
    if mount is None:
        st.plotly_chart(fig, key=key, selection_mode=SELECTION_MODES, on_select=on_select)
        return
    mount(key=key, data={"figure": fig.to_json()}, default={"selection": None}, on_selection_change=on_select)
