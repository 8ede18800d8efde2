"""The latent map on the page: a Plotly figure the browser updates in place (app/plotly_map/map.js), with its
"Colour by" choice made in the browser.

Streamlit's own Plotly element is keyed by a hash of its whole figure, so a new colouring or one placed upload
threw the chart away and drew it anew in the browser (1.6-2.8 s of CPU in headless Chromium here, where
`Plotly.react` on the same figure takes 0.3 s). The component keeps one chart and reacts to each new figure.

What the browser draws of the points is published once as a file (`published`: the uncoloured figure, every
colouring, the points' pictures; gzipped, named by its content) that map.js fetches once; each rerun of the page
sends only those names, the images placed on the map and the colour chosen. At 60,000 points that data was 1.7 MB
sent again at every rerun: 30-80 ms of the server's time to hand it to Streamlit and 60-120 ms for the whole
`show`, most of an upload's wait. Every colouring rides with the figure, so changing "Colour by" redraws in the
browser without a round trip to the server.

The points themselves are painted by map.js on a canvas of its own: Plotly keeps an invisible copy of them for
hovering, selecting, zooming and the axes. Plotly's WebGL points cost a software-drawing browser 0.4-0.9 s per
redraw of 60,000 (a new colouring, a placed image's annotation, a zoom), the canvas 0.05-0.09 s; placed images are
marked on the page over the map, not in Plotly's layout (a new annotation redrew every point).
Where the component cannot be served, the page draws Streamlit's element and selectbox instead, with the same
selection in the session.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
import streamlit as st

from app import charts, components
from vae_core.checkpoints import atomic_write_bytes

ASSETS = Path(__file__).resolve().parent / "plotly_map"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"  # as the Python package ships it
SELECTION_MODES = ("points", "box", "lasso")
MAX_PICTURES = 2500  # the points sent with their pictures: faces' 2,500 at 32 px are about 1 MB as one JPEG
PICTURE_PX = 32
COLOUR_LABEL = "Colour by"
NO_COLOUR = "none"
_served: Path | None = None


def served_files() -> Path:
    """This process's private folder (`components.private_folder`) of the map's served files: plotly.min.js gzipped
    once (Streamlit would gzip the 4.6 MB file anew for every page that opens the map, 0.12 s of the server's CPU
    each; a .gz file it serves as it is, and map.js inflates it), and the maps' data (`published`)."""
    global _served
    if _served is None or not (_served / "plotly.min.js.gz").is_file():
        folder = components.private_folder("vae-explorer-map-")
        atomic_write_bytes(folder / "plotly.min.js.gz", gzip.compress(PLOTLY_JS.read_bytes(), 6, mtime=0))
        _served = folder
    return _served


def gzipped_json(value) -> tuple[str, bytes]:
    """`value` as gzipped JSON, named by its content (sha256.json.gz): a name map.js fetches once."""
    data = gzip.compress(json.dumps(value).encode(), 6, mtime=0)
    return f"{hashlib.sha256(data).hexdigest()}.json.gz", data


def published(named: tuple[str, bytes] | None) -> str | None:
    """The name under which the served folder holds `named` (gzipped_json), written there if it is not."""
    if named is None:
        return None
    name, data = named
    target = served_files() / name
    if not target.is_file():
        atomic_write_bytes(target, data)
    return name


def _mount():
    if not (ASSETS / "map.js").is_file() or not PLOTLY_JS.is_file():
        return None, f"missing map.js in {ASSETS} or {PLOTLY_JS}"
    try:
        folders = {"plotly_map": ASSETS, "map_files": served_files()}
    except OSError as exc:
        return None, f"plotly.js could not be prepared ({exc})"
    return components.mount("plotly_map", folders, js="map.js", css="map.css",
                            isolate_styles=False)  # plotly.js styles its chart from the document


def value_colours(dataset, factor: str) -> tuple[str, ...] | None:
    """The colours (CSS) `dataset` draws the values of `factor` in, where its values are colours: its
    `<factor>_colours` (RGB 0-255, one per value); None for a factor whose values are not colours."""
    rgb = getattr(dataset, f"{factor}_colours", None)
    try:
        return tuple(f"rgb({int(r)}, {int(g)}, {int(b)})" for r, g, b in rgb) if rgb else None
    except (TypeError, ValueError):  # not a list of RGB triples: the palette's colours instead
        return None


def colour_choices(factors: list[str], dataset) -> tuple[tuple[str, tuple[str, ...] | None, bool,
                                                                tuple[str, ...] | None], ...]:
    """"Colour by"'s choices after none: each factor in `factors` with its values' names, whether it has an
    order, and its values' own colours where they are colours, as `dataset` says."""
    categorical = getattr(dataset, "categorical_factors", None)
    return tuple((f, getattr(dataset, f"{f}_names", None), f != "label" and categorical is not None
                  and f not in categorical, value_colours(dataset, f)) for f in factors)


def colouring(proj, choices, name: str) -> charts.Colouring:
    """Choice `name` of `choices` (colour_choices), or none."""
    return next((charts.map_colouring(proj, f, names, ordered, colours) for f, names, ordered, colours in choices
                 if f == name), charts.UNCOLOURED)


def _packed(colouring: charts.Colouring) -> dict:
    """A colouring as map.js reads it: its traces' JSON (the points' properties, then the legend's entries), and
    each point's class as a number with the classes' names (the hover text, without 10,000 strings)."""
    traces = go.Figure([go.Scattergl(**colouring.points), *colouring.legend]).to_json()
    codes = None if colouring.codes is None else {  # uint8 or uint16, in this machine's (little-endian) order
        "dtype": colouring.codes.dtype.str[1:], "bdata": base64.b64encode(colouring.codes.tobytes()).decode()}
    return {"traces": traces, "codes": codes, "names": list(colouring.names), "palette": list(colouring.palette),
            "edge": colouring.edge, "labels": [html.unescape(n) for n in colouring.names]}  # text for textContent


# What every rerun of the page would otherwise build anew (most of its script's time under uploads, by py-spy:
# plotly checks each property of a 10,000-point trace): kept per projection, keyed by the arrays themselves.
@st.cache_data(max_entries=32, show_spinner=False)
def _points(coords: np.ndarray, axis: str, factors: np.ndarray, factor_names: tuple, label_names: tuple,
            choices: tuple, _proj) -> tuple[str, bytes]:
    """The map's points as map.js draws them (gzipped_json): the uncoloured figure and every colouring."""
    figure = charts.map_figure(coords, charts.UNCOLOURED, axis=axis, marked=False).to_json()
    return gzipped_json({"figure": figure, "colourings": {name: _packed(colouring(_proj, choices, name))
                                                          for name in (NO_COLOUR, *(c[0] for c in choices))}})


def picture_sheet(images: np.ndarray, columns: int = 50) -> bytes:
    """Images (n, C, H, W) in [0, 1] as one sheet, PICTURE_PX square each, `columns` a row: a PNG for greyscale
    (dSprites' 2,500 are about 90 KB), a JPEG for colour (a PNG of faces was 5 times larger)."""
    import io

    import torch
    from PIL import Image

    small = torch.nn.functional.interpolate(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
                                            size=PICTURE_PX, mode="area").numpy()
    tiles = (np.clip(small, 0, 1).transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8)
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * PICTURE_PX, columns * PICTURE_PX, tiles.shape[3]), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * PICTURE_PX:(r + 1) * PICTURE_PX, c * PICTURE_PX:(c + 1) * PICTURE_PX] = tile
    buffer = io.BytesIO()
    grey = sheet.shape[2] == 1
    Image.fromarray(sheet[..., 0] if grey else sheet).save(buffer, "PNG" if grey else "JPEG",
                                                           **({} if grey else {"quality": 85}))
    return buffer.getvalue()


def pictures(num_points: int, dataset, proj) -> dict | None:
    """The pictures map.js draws on the map (hovered, and zoomed in): up to MAX_PICTURES of the projection's points
    (all of a small set, else a fixed random sample), their images on one sheet. None when they cannot be made."""
    from vae_core.projection import images_for_rows

    rows = np.arange(num_points) if num_points <= MAX_PICTURES else np.sort(
        np.random.default_rng(0).choice(num_points, MAX_PICTURES, replace=False))
    try:
        sheet = picture_sheet(images_for_rows(dataset, proj, rows))
    except Exception:  # noqa: BLE001  data that does not match its projection: a map of dots, as before
        return None
    grey = sheet[:4] == b"\x89PNG"
    return {"rows": {"dtype": "i4", "bdata": base64.b64encode(rows.astype("<i4").tobytes()).decode()},
            "sheet": f"data:image/{'png' if grey else 'jpeg'};base64,{base64.b64encode(sheet).decode()}",
            "px": PICTURE_PX, "columns": 50}


@st.cache_data(max_entries=8, show_spinner=False)
def _pictures_file(key: tuple, num_points: int, _dataset, _proj) -> tuple[str, bytes] | None:
    """`pictures` as gzipped_json, made once per `key` (the model folder and its state: the data and projection
    are its arguments' own)."""
    shown = pictures(num_points, _dataset, _proj)
    return None if shown is None else gzipped_json(shown)


def placed_marks(placed: np.ndarray | None, names: list[str]) -> list[dict]:
    """Images placed on the map as map.js marks them: each its place and its name (shown as text, never as markup:
    names come from uploads), cut to 40 characters."""
    points = [] if placed is None else placed.tolist()
    return [{"x": x, "y": y, "name": " ".join(str(name).split())[:40]} for (x, y), name in zip(points, names)]


def show(coords: np.ndarray, proj, choices, default: str, placed: np.ndarray | None, placed_names: list[str],
         axis: str, key: str, on_select, pictures_key: tuple | None = None, dataset=None) -> None:
    """The map of `proj` at `coords`, coloured as the person chooses among `choices` (colour_choices; `default`
    first), with the images placed at `placed` (named by `placed_names`, as they came) and, with `dataset` and its
    `pictures_key` (`pictures`' key), the points' pictures; a selection on it is in
    `st.session_state[key]["selection"]` when `on_select` is called."""
    mount, _ = _mount()
    if mount is None:
        names = [NO_COLOUR, *(c[0] for c in choices)]
        chosen = st.selectbox(COLOUR_LABEL, names, index=names.index(default))
        st.plotly_chart(charts.map_figure(coords, colouring(proj, choices, chosen), placed,
                                          [charts.label(n) for n in placed_names], axis),
                        key=key, selection_mode=SELECTION_MODES, on_select=on_select)
        return
    points = _points(coords, axis, proj.factors, proj.factor_names, proj.label_names, choices, proj)
    shown_pictures = None if dataset is None else _pictures_file(pictures_key, proj.num_points, dataset, proj)
    data = {"points": published(points), "pictures": published(shown_pictures), "colour": default,
            "label": COLOUR_LABEL, "marks": placed_marks(placed, placed_names)}
    mount(key=key, data=data, default={"selection": None}, on_selection_change=on_select)
