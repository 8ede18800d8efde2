"""Plotly figures of the pages; they only draw numbers that vae_core computed."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from vae_core.projection import Projection

MAX_CATEGORIES = 12  # more classes than this are coloured on a continuous scale
PLACED_COLOUR = "#d62728"  # images placed on the latent map
PLACED_SLOTS = 8  # marks for placed images come in groups of this many (charts.placed_marks)


CATEGORY_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                    "#bcbd22", "#17becf", "#393b79", "#637939")


MAP_MARKER = {"size": 4, "opacity": 0.7}
OWN_COLOUR_EDGE = {"width": 0.5, "color": "rgba(40, 40, 40, 0.6)"}  # around points drawn in their class's own colour


@dataclass(frozen=True)
class Colouring:
    """The data's points coloured by one factor, or by nothing: what changes on the map with "Colour by"."""

    points: dict  # the points trace's properties that depend on the colouring (marker, name, legend, hover)
    codes: np.ndarray | None = None  # per point, in drawing order: its index into `names` (its hover text)
    names: tuple[str, ...] = ()
    legend: tuple[go.Scattergl, ...] = ()  # one entry per class, drawing nothing
    palette: tuple[str, ...] = ()  # each class's colour (CSS), in `names` order: what the browser paints
    edge: str | None = None  # the outline around each point (CSS), where classes are drawn in their own colours

    def text(self) -> np.ndarray | None:
        return None if self.codes is None else np.array(self.names)[self.codes]


UNCOLOURED = Colouring({"marker": MAP_MARKER, "name": "data", "hovertemplate": "row %{customdata}<extra></extra>"},
                        palette=CATEGORY_COLOURS[:1])


def drawing_order(n: int) -> np.ndarray:
    """The points are drawn in a fixed shuffled order, so where classes share a place (faces that differ only in
    the mouth share a code) none is always drawn on top."""
    return np.random.default_rng(0).permutation(n)


def map_colouring(proj: Projection, colour: str | None, value_names: tuple[str, ...] | None = None,
                  ordered: bool = False, value_colours: tuple[str, ...] | None = None) -> Colouring:
    """The points coloured by factor `colour`. A factor with an order (`ordered`: scale, mouth, position) is
    coloured on a continuous scale, one without (shape, hair) by class, named by `value_names` where the dataset
    names its values, and drawn in `value_colours` (CSS colours, one per value) where its values are colours (a
    face's hair is drawn in its own colour, not a palette's: blonde in green contradicted its name)."""
    if colour is None:
        return UNCOLOURED
    values = proj.factors[drawing_order(proj.num_points), proj.factor_names.index(colour)]
    classes = np.unique(values)
    names = proj.label_names if colour == "label" and proj.label_names else value_names

    def name_of(c: int) -> str:  # plotly reads tags in text (links among them): names from a folder are escaped
        return label(names[c] if names is not None and 0 <= c < len(names) else f"{colour} {c}")

    # per point: its class's position among `classes` (numpy arrays: plotly checks a list element by element,
    # 0.5 s for 10,000 colour strings, and sends an array as packed bytes)
    position = np.searchsorted(classes, values).astype(np.uint8 if len(classes) <= 256 else np.uint16)
    class_names = tuple(name_of(int(c)) for c in classes)
    hover = "%{text}<br>row %{customdata}<extra></extra>"
    own = value_colours is not None and len(classes) and 0 <= classes.min() and classes.max() < len(value_colours)
    if not ordered and (len(classes) <= MAX_CATEGORIES or own):
        palette = tuple(value_colours[int(c)] for c in classes) if own else CATEGORY_COLOURS[:len(classes)]
        outline = {"line": OWN_COLOUR_EDGE} if own else {}  # a pale colour (porcelain skin) on a pale plot
        steps = [[edge, shade] for i, shade in enumerate(palette)
                 for edge in (i / len(palette), (i + 1) / len(palette))]  # one flat band per class
        marker = {**MAP_MARKER, "color": position, "colorscale": steps, "cmin": -0.5, "cmax": len(palette) - 0.5,
                  "showscale": False, **outline}
        legend = tuple(go.Scattergl(x=[None], y=[None], mode="markers", name=name,
                                    marker={"size": 8, "color": shade, **outline})
                       for name, shade in zip(class_names, palette))
        return Colouring({"marker": marker, "showlegend": False, "hovertemplate": hover}, position, class_names,
                         legend, palette, OWN_COLOUR_EDGE["color"] if own else None)
    ticks = classes if len(classes) <= MAX_CATEGORIES else None
    bar = {"title": label(colour), **({"tickvals": ticks.tolist(), "ticktext": [name_of(int(c)) for c in ticks]}
                                      if ticks is not None else {})}
    marker = {**MAP_MARKER, "color": values, "colorscale": "Viridis", "colorbar": bar}
    span = float(classes.max() - classes.min()) or 1.0  # plotly's scale runs from the least value to the most
    palette = tuple(sample_colorscale("Viridis", ((classes - classes.min()) / span).tolist()))
    return Colouring({"marker": marker, "name": label(colour), "showlegend": False, "hovertemplate": hover},
                     position, class_names, palette=palette)


def latent_map(coords: np.ndarray, proj: Projection, colour: str | None, placed: np.ndarray | None = None,
               placed_names: list[str] | None = None, axis: str = "", value_names: tuple[str, ...] | None = None,
               ordered: bool = False, value_colours: tuple[str, ...] | None = None) -> go.Figure:
    """The map coloured by factor `colour` (map_colouring), row ids in customdata."""
    return map_figure(coords, map_colouring(proj, colour, value_names, ordered, value_colours), placed,
                      placed_names, axis)


def map_figure(coords: np.ndarray, colouring: Colouring, placed: np.ndarray | None = None,
               placed_names: list[str] | None = None, axis: str = "", marked: bool = True) -> go.Figure:
    """The map: the data's points at `coords` (row ids in customdata), the colouring's legend entries, and
    (`marked`) the images placed at `placed` (named by `placed_names`, already escaped) as annotations."""
    rows = drawing_order(len(coords))
    xy = coords[rows]
    fig = go.Figure(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", customdata=rows, text=colouring.text(),
                                 **colouring.points))
    fig.add_traces(list(colouring.legend))
    # uirevision: the same while the points are, so a redraw (a new colouring, a placed upload) keeps the
    # person's zoom and selection; other coordinates (PCA, another model) start afresh
    revision = hashlib.sha256(np.ascontiguousarray(coords).tobytes()).hexdigest()[:16]
    fig.update_layout(**(placed_marks(placed, placed_names, map_home(coords)) if marked else {}), height=560, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      uirevision=revision, dragmode="select",
                      legend={"itemsizing": "constant", "orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
                      xaxis_title=f"{axis} 1", yaxis_title=f"{axis} 2")  # the legend above: clear of a colour bar
    fig.update_xaxes(automargin=True, zeroline=False)  # room for the axes' labels however the chart is drawn
    fig.update_yaxes(automargin=True, zeroline=False)
    return fig


def placed_marks(placed: np.ndarray | None, names: list[str] | None, home: tuple[float, float]) -> dict:
    """The layout's annotations marking images placed on the map at `placed`: each its name (already escaped) on
    an arrow that ends in a dot at its place. They come in slots of PLACED_SLOTS: the empty ones wait, invisible,
    at `home` (a point inside the map, so they do not widen its axes).

    Not a trace: new data in any trace makes Plotly recompute and redraw the 10,000 points (0.15-0.2 s in a
    software-drawing browser). New annotations are drawn in 13-25 ms, but only while their number stays the same:
    one more, or one shown or hidden, redraws everything again (measured in the page). Not shapes: invisible
    shapes inside a box selection left it with no points selected."""
    points = [] if placed is None else [tuple(p) for p in placed.tolist()]
    names = list(names or [])[:len(points)]
    slots = -(-max(len(points), 1) // PLACED_SLOTS) * PLACED_SLOTS
    annotations = []
    for i in range(slots):
        (x, y), shown = (points[i], 1) if i < len(points) else (home, 0)
        annotations.append({"x": x, "y": y, "text": names[i] if i < len(names) else "", "opacity": shown,
                            "showarrow": True, "ax": 0, "ay": -26, "arrowhead": 6, "arrowsize": 1.6,
                            "arrowwidth": 1.5, "arrowcolor": PLACED_COLOUR, "bgcolor": "rgba(255,255,255,0.8)",
                            "font": {"color": PLACED_COLOUR, "size": 13}})
    return {"annotations": annotations}


def map_home(coords: np.ndarray) -> tuple[float, float]:
    """A point inside the map: where its empty slots for placed images wait (placed_marks)."""
    x, y = np.median(coords, axis=0).tolist()
    return x, y


def label(text) -> str:
    """Text from a model folder (class and factor names) as plotly shows it literally: its tags (`<a href>`,
    `<b>`) escaped, and cut to 40 characters."""
    return html.escape(" ".join(str(text).split())[:40])


def selected_rows(selection: dict | None, num_rows: int) -> list[int]:
    """Row ids of the selected points, in selection order, without duplicates or ids that are not rows."""
    rows: list[int] = []
    for point in (selection or {}).get("points", []) or []:
        custom = point.get("customdata") if isinstance(point, dict) else None
        if isinstance(custom, (list, tuple)):
            custom = custom[0] if custom else None
        try:
            row = int(custom)
        except (TypeError, ValueError):
            continue
        if 0 <= row < num_rows and row not in rows:
            rows.append(row)
    return rows


def clicked_latent(state: dict | None, latent_dim: int) -> int | None:
    """The latent of the last heatmap cell clicked (its column label "z3"), from st.plotly_chart's state."""
    points = ((state or {}).get("selection") or {}).get("points") or []
    label = points[-1].get("x") if points and isinstance(points[-1], dict) else None
    if isinstance(label, str) and label[:1] == "z" and label[1:].isdigit() and int(label[1:]) < latent_dim:
        return int(label[1:])
    return None


def selection_centre(selection: dict | None) -> tuple[float, float] | None:
    """The centre of the last box or lasso drawn on a map (in its coordinates), or None when there is none."""
    for kind in ("box", "lasso"):
        shapes = (selection or {}).get(kind) or []
        shape = shapes[-1] if isinstance(shapes, list) and shapes else None
        try:
            xs, ys = np.asarray(shape["x"], dtype=np.float64), np.asarray(shape["y"], dtype=np.float64)
        except (TypeError, KeyError, ValueError):
            continue
        if xs.size and ys.size and np.isfinite(xs).all() and np.isfinite(ys).all():
            return float(xs.min() + xs.max()) / 2, float(ys.min() + ys.max()) / 2
    return None


def kl_bars(kl: np.ndarray, order: list[int], threshold: float = 0.01) -> go.Figure:
    """Per-dimension KL, highest first, inactive dimensions in grey."""
    colours = ["#1f77b4" if kl[d] > threshold else "#bbbbbb" for d in order]
    fig = go.Figure(go.Bar(x=[f"z{d}" for d in order], y=[kl[d] for d in order], marker_color=colours,
                           hovertemplate="%{x}: %{y:.3f} nats<extra></extra>"))
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title="KL (nats)",
                      title={"text": "KL per dimension (grey: inactive)", "font": {"size": 13}})
    return fig


def training_curves(log: dict[str, np.ndarray]) -> go.Figure:
    """Reconstruction and KL over the training steps (two axes), with the KL's weight (beta's schedule: a warm-up,
    cycles) or the capacity where they moved: posterior collapse as it happened, the KL falling to nothing."""
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    steps = log["step"]
    fig.add_trace(go.Scatter(x=steps, y=log.get("recon"), name="recon (nats/image)", line={"color": "#1f77b4"}),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=steps, y=log.get("kl"), name="KL (nats)", line={"color": "#d62728"}),
                  secondary_y=True)
    for name, text in (("kl_weight", "KL weight"), ("capacity", "capacity C (nats)")):
        values = log.get(name)
        if values is not None and np.nanmax(values) - np.nanmin(values) > 1e-9:  # a schedule, not a constant
            fig.add_trace(go.Scatter(x=steps, y=values, name=text, line={"dash": "dot", "color": "#7f7f7f"}),
                          secondary_y=True)
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": -0.3},
                      title={"text": "How it trained (training.csv)", "font": {"size": 13}})
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="recon", secondary_y=False)
    fig.update_yaxes(title_text="KL", secondary_y=True)
    return fig


def kl_per_dim_curves(log: dict[str, np.ndarray], threshold: float = 0.01) -> go.Figure | None:
    """Each latent's KL over the training steps (training.csv's kl_z columns), one line a latent, the ones that
    end inactive in grey: which latents collapsed, and when. None where the log has no such columns."""
    per_dim = log.get("kl_per_dim")
    if per_dim is None:
        return None
    steps = log["step"]
    fig = go.Figure()
    for d in range(per_dim.shape[1]):
        values = per_dim[:, d]
        last = values[np.isfinite(values)]
        active = last.size > 0 and last[-1] > threshold
        fig.add_trace(go.Scatter(x=steps, y=values, name=f"z{d}", mode="lines",
                                 line={"width": 1.5 if active else 1, "color": None if active else "#bbbbbb"},
                                 hovertemplate=f"z{d}" + " at step %{x}: %{y:.3f} nats<extra></extra>"))
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title="KL (nats)",
                      xaxis_title="step", legend={"orientation": "h", "y": -0.3},
                      title={"text": "KL per latent over the steps (grey: inactive at the end)", "font": {"size": 13}})
    return fig


def edit_moves(move: np.ndarray, factor: str) -> go.Figure:
    """An edit's mean absolute move per latent: one tall bar where the factor lives on one latent (disentangled),
    several where it is spread (entangled)."""
    fig = go.Figure(go.Bar(x=[f"z{d}" for d in range(len(move))], y=move, marker_color="#1f77b4",
                           hovertemplate="%{x}: moves %{y:.2f} on average<extra></extra>"))
    fig.update_layout(height=220, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title="mean |move|",
                      title={"text": f"The {label(factor)} edit's move per latent", "font": {"size": 13}})
    return fig


def mi_heatmap(matrix: np.ndarray, factor_names: list[str], dim_names: list[str], title: str,
               zmax: float | None = None) -> go.Figure:
    """Factor-by-latent mutual information as a grid of square cells with their numbers; `zmax` fixes the top of
    the colour scale (to compare two of them). Cells are scatter markers, not a plotly heatmap: Streamlit reports
    clicks on markers only, and a click on a cell plays that latent's traversal (`clicked_latent`)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rows, cols = matrix.shape
    xs = [label(dim_names[j]) for i in range(rows) for j in range(cols)]
    ys = [label(factor_names[i]) for i in range(rows) for j in range(cols)]  # a card's names: escaped
    values = matrix.flatten()
    top = float(zmax if zmax is not None else max(values.max(initial=0.0), 1e-9))
    fig = go.Figure(go.Scatter(
        x=xs, y=ys, mode="markers+text", text=[f"{v:.2f}" for v in values], textfont={"size": 9},
        marker={"symbol": "square", "size": 30, "color": values, "colorscale": "Blues", "cmin": 0, "cmax": top,
                "colorbar": {"thickness": 10}, "line": {"width": 0}},
        hovertemplate="%{y} / %{x}: %{text}<extra></extra>", name="mutual information", showlegend=False))
    fig.update_layout(height=80 + 34 * rows, margin={"l": 10, "r": 10, "t": 30, "b": 10}, dragmode=False,
                      title={"text": title, "font": {"size": 13}}, xaxis={"type": "category", "showgrid": False},
                      yaxis={"type": "category", "showgrid": False})
    return fig


def recon_histogram(errors: np.ndarray, value: float) -> go.Figure:
    fig = go.Figure(go.Histogram(x=errors, nbinsx=60, name="data", marker_color="#9ecae1"))
    fig.add_vline(x=value, line_color="#d62728", line_width=3, annotation_text="this image")
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False,
                      xaxis_title="reconstruction error (nats per image)", yaxis_title="images")
    return fig


def beta_sweep(points: list[dict]) -> go.Figure:
    """Against beta (log scale): reconstruction and, where present, KL on the left; MIG on the right."""
    from plotly.subplots import make_subplots

    betas = [p["beta"] for p in points]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("what β costs: nats per image", "what β buys: MIG"))
    fig.add_trace(go.Scatter(x=betas, y=[p["recon"] for p in points], mode="lines+markers",
                             name="reconstruction (lower is better)"), row=1, col=1)
    if all("kl" in p for p in points):
        fig.add_trace(go.Scatter(x=betas, y=[p["kl"] for p in points], mode="lines+markers",
                                 name="KL (nats the code carries)"), row=1, col=1)
    fig.add_trace(go.Scatter(x=betas, y=[p["mig"] for p in points], mode="lines+markers",
                             name="MIG (higher: more disentangled)"), row=1, col=2)
    fig.update_xaxes(type="log", title_text="β", tickvals=betas, ticktext=[f"{b:g}" for b in betas])
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.3})
    return fig


def manifold_figure(png_uri: str, size_px: int, latents: np.ndarray, position: tuple[float, float]) -> go.Figure:
    """The learned manifold (a decoded n x n grid over the prior's quantiles) with the current point marked.

    Args:
        png_uri: the grid as a PNG data URI (n x n cells, no gaps), size_px pixels a side; sent as an image, not
            as numbers, so moving a slider ships a few kilobytes. latents: (n, n, 2) the cells' z.
        position: (column, row) of the point in cell units (vae_core.manifold.grid_position).
    """
    n = latents.shape[0]
    cell = size_px / n
    col, row = position
    ticks = [int(i) for i in np.unique(np.linspace(0, n - 1, 5).round())]
    fig = go.Figure(go.Image(source=png_uri, x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[(col + 0.5) * cell - 0.5], y=[(row + 0.5) * cell - 0.5], mode="markers",
                             name="your point", hovertemplate="your point<extra></extra>",
                             marker={"size": 22, "symbol": "circle-open", "color": "#d62728",
                                     "line": {"width": 4, "color": "#d62728"}}))
    fig.update_layout(
        height=560, margin={"l": 10, "r": 10, "t": 10, "b": 10}, showlegend=False,
        xaxis={"title": "z0 (prior quantiles)", "tickvals": [(i + 0.5) * cell - 0.5 for i in ticks],
               "ticktext": [f"{latents[0, i, 0]:+.2f}" for i in ticks], "showgrid": False,
               "range": [-0.5, size_px - 0.5]},
        yaxis={"title": "z1", "tickvals": [(i + 0.5) * cell - 0.5 for i in ticks],
               "ticktext": [f"{latents[i, 0, 1]:+.2f}" for i in ticks], "showgrid": False,
               "range": [size_px - 0.5, -0.5], "scaleanchor": "x"},
    )
    return fig
