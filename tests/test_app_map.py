"""The Latent map page in AppTest: selections, named classes, uploads placed, projections missing or broken, a box
decoded at its centre."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from vae_core.projection import load_projection

from .app_fixtures import png_bytes
from .test_app import (
    assert_healthy,
    go_to,
    image_urls,
    open_app,
    picture,
    slider,
)

pytestmark = pytest.mark.usefixtures("torch_threads_restored")


SERVED = "models_root"  # the model folders the app lists in this module (conftest.served_models)


def test_map_selection_fills_the_gallery_and_sends_points_on(models_root):
    at = open_app("latent_map")
    spec = map_spec(at)
    assert '"customdata"' in spec and "UMAP" in spec
    at.session_state["map_selection"] = {"points": [{"customdata": 3}, {"customdata": [7]}, {"customdata": -1}]}
    at.run()
    assert_healthy(at)
    assert len(image_urls(at)) == 2 and "posX" in at.image[0].captions[0]
    next(b for b in at.button if b.label.startswith("Open the first")).click().run()
    assert_healthy(at)
    means = load_projection(models_root / "grey64").means
    assert slider(at, "z0").value == pytest.approx(round(means[3, 0] / 0.05) * 0.05, abs=1e-6)
    go_to(at, "latent_map")
    next(b for b in at.button if b.label.startswith("Interpolate")).click().run()
    assert_healthy(at)
    assert at.radio(key="interp_A_src").value == "From the map"
    assert [s.value for s in at.subheader][-1] == "From map point 3 to map point 7"


def map_data(at: AppTest) -> dict:
    """What the page sent to the browser's map component (app.map_chart), with the file of the points it names
    read as map.js reads it: the figure and its colourings."""
    import gzip

    from app import map_chart

    (chart,) = at.get("bidi_component")
    assert chart.proto.component_name == "vae_explorer.plotly_map"
    data = json.loads(chart.proto.json)
    assert "figure" not in data and "colourings" not in data  # each rerun sends the points' file name, not them
    points = json.loads(gzip.decompress((map_chart.served_files() / data["points"]).read_bytes()))
    return {**data, **points}


def map_spec(at: AppTest) -> str:
    """The map's figure as JSON, uncoloured."""
    return map_data(at)["figure"]


def colouring(at: AppTest, name: str) -> tuple[dict, list[dict], list[str] | None]:
    """Colouring `name` as the component receives it: the points' properties, the legend's entries, each
    point's hover text."""
    packed = map_data(at)["colourings"][name]
    points, *legend = json.loads(packed["traces"])["data"]
    text = None if packed["codes"] is None else [packed["names"][c] for c in _values(packed["codes"])]
    return points, legend, text


def _map_traces(at: AppTest) -> list[dict]:
    return json.loads(map_spec(at))["data"]


def _values(array) -> list:
    """A plotly array from a figure's JSON: a list, or a typed array ({"dtype", "bdata"})."""
    if isinstance(array, dict):
        import base64

        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def test_map_classes_are_named_and_drawn_interleaved(models_root):
    at = open_app("latent_map")
    data = map_data(at)
    assert list(data["colourings"]) == ["none", "shape", "scale", "orientation", "posX", "posY"]
    assert data["colour"] == "shape"  # the first factor that varies
    points, legend, text = colouring(at, "shape")
    assert [t["name"] for t in legend] == ["square", "ellipse", "heart"]
    rows = _values(json.loads(map_spec(at))["data"][0]["customdata"])
    factors = load_projection(models_root / "grey64").factors[:, 1]
    drawn = np.asarray([factors[r] for r in rows])
    assert len(drawn) == len(factors) and (np.diff(drawn) != 0).sum() > 10  # not drawn class by class
    # each point's colour is its class's legend colour: a class index on a scale of one flat band per class
    colours = {t["name"]: t["marker"]["color"] for t in legend}
    marker, bands = points["marker"], points["marker"]["colorscale"]
    assert points["showlegend"] is False
    for row, position, name in zip(rows, _values(marker["color"]), text):
        span = (position - marker["cmin"]) / (marker["cmax"] - marker["cmin"])
        band = next(c for (lo, c), (hi, _) in zip(bands[::2], bands[1::2]) if lo <= span <= hi)
        assert band == colours[name] and name == ["square", "ellipse", "heart"][int(factors[row])]
    points, legend, text = colouring(at, "scale")  # an ordered factor: one continuous scale, not six colours
    assert "colorbar" in points["marker"] and not legend and _values(points["marker"]["color"]) == [
        load_projection(models_root / "grey64").factors[r, 2] for r in rows]
    assert colouring(at, "none")[2] is None


def test_the_colourings_sent_are_those_of_the_figure_python_draws(models_root):
    """The browser composes a coloured map from the uncoloured figure and a colouring (map.js `coloured`); the
    fallback draws charts.latent_map's figure. Both carry the same colours, names and legend."""
    from app import charts

    at = open_app("latent_map")
    proj = load_projection(models_root / "grey64")
    for name in ("shape", "posX"):
        points, legend, text = colouring(at, name)
        drawn = json.loads(charts.latent_map(proj.umap, proj, name, axis="UMAP", ordered=name == "posX",
                                             value_names=("square", "ellipse", "heart") if name == "shape"
                                             else None).to_json())["data"]
        assert _values(points["marker"]["color"]) == _values(drawn[0]["marker"]["color"])
        assert text == list(drawn[0]["text"]) and [t["name"] for t in legend] == [t["name"] for t in drawn[1:]]


def test_a_factor_whose_values_are_colours_is_drawn_in_those_colours(models_root):
    """Faces: "Colour by background" drew green in blue, blue in orange; the hover showed "blue" in an orange box
    (its point's colour). Each class is now drawn, in its legend and at its points, in the renderer's own colour."""
    from vae_core.data import faces

    at = open_app("latent_map", model="faces64")
    rows = _values(json.loads(map_spec(at))["data"][0]["customdata"])
    proj = load_projection(models_root / "faces64")
    for factor, rgb, names in (("background", faces.BACKGROUNDS, faces.BACKGROUND_NAMES),
                               ("hair_colour", faces.HAIR_COLOURS, faces.HAIR_NAMES),
                               ("skin_tone", faces.SKIN_TONES, faces.SKIN_NAMES)):
        points, legend, text = colouring(at, factor)
        own = {name: "rgb({}, {}, {})".format(*colour) for name, colour in zip(names, rgb)}
        assert {t["name"]: t["marker"]["color"] for t in legend} == own
        marker, bands = points["marker"], points["marker"]["colorscale"]
        values = proj.factors[:, proj.factor_names.index(factor)]
        for row, position, name in zip(rows, _values(marker["color"]), text):
            span = (position - marker["cmin"]) / (marker["cmax"] - marker["cmin"])
            band = next(c for (lo, c), (hi, _) in zip(bands[::2], bands[1::2]) if lo <= span <= hi)
            assert band == own[name] and name == names[values[row]]  # the point, its hover text, its colour
    points, legend, _ = colouring(at, "face_shape")  # not colours: ordered, on a scale
    assert "colorbar" in points["marker"] and not legend


def test_changing_the_colouring_asks_nothing_of_the_server_where_the_component_runs(monkeypatch):
    """The page offers no "Colour by" widget of its own (the component's select changes it in the browser); where
    the component cannot be served, Streamlit's selectbox and chart draw the chosen colouring."""
    from app import map_chart

    at = open_app("latent_map")
    assert not [s for s in at.selectbox if s.label == map_chart.COLOUR_LABEL]
    assert map_data(at)["label"] == map_chart.COLOUR_LABEL
    monkeypatch.setattr(map_chart, "_mount", lambda: (None, "no component here"))
    at = open_app("latent_map")
    box = next(s for s in at.selectbox if s.label == map_chart.COLOUR_LABEL)
    assert box.value == "shape"
    box.set_value("shape").run()
    (chart,) = at.get("plotly_chart")
    assert [t.get("name") for t in json.loads(chart.proto.spec)["data"][1:]] == ["square", "ellipse", "heart"]


def test_uploads_are_placed_on_the_map():
    at = open_app("latent_map")
    at.file_uploader[0].set_value([("a.png", png_bytes(seed=1), "image/png"), ("b.txt", b"no", "text/plain")]).run()
    assert_healthy(at)
    assert [m["name"] for m in map_data(at)["marks"]] == ["a.png"]
    assert "annotations" not in json.loads(map_spec(at))["layout"]  # marked over the map, not redrawn by Plotly
    assert len(at.error) == 1 and "b.txt" in at.error[0].value


def test_placed_images_keep_the_number_of_marks_the_same_until_a_slot_runs_out():
    """Plotly redraws every point when the number of annotations changes, so marks come in slots; the empty ones
    are invisible and wait inside the map."""
    from app import charts

    home = (0.5, -1.0)
    for count in (0, 1, 7, 8, 9):
        placed = np.arange(2 * count, dtype=float).reshape(count, 2)
        marks = charts.placed_marks(placed, [f"{i}.png" for i in range(count)], home)
        slots = charts.PLACED_SLOTS * (1 + max(count - 1, 0) // charts.PLACED_SLOTS)
        assert len(marks["annotations"]) == slots and "shapes" not in marks
        assert [a["text"] for a in marks["annotations"] if a["opacity"]] == [f"{i}.png" for i in range(count)]
        assert [(a["x"], a["y"]) for a in marks["annotations"][:count]] == [tuple(p) for p in placed.tolist()]
        assert all((a["x"], a["y"]) == home and not a["opacity"] for a in marks["annotations"][count:])


def test_broken_projection_is_reported_and_replaced_by_a_live_pca():
    at = open_app("latent_map", model="bad-projection")
    warning = at.main.warning[0].value
    assert "projection.npz" in warning and "not a readable projection" in warning
    assert "live PCA" in at.info[0].value and map_spec(at)


def test_map_without_projection_is_a_live_pca():
    at = open_app("latent_map", model="faces64-noproj")
    assert "live PCA of 2,000 images" in at.info[0].value and "vae_core.evaluate" in at.info[0].value
    assert at.radio[0].options == ["PCA"]
    at = open_app("latent_map", model="colour32")
    assert "No map" in at.info[0].value


def test_a_box_anywhere_on_the_map_decodes_the_latent_under_its_centre(models_root):
    """The map as a canvas: the centre of a box maps back to a latent through the nearest map points."""
    from vae_core.explore import decode
    from vae_core.projection import place_points

    at = open_app("latent_map")
    proj = load_projection(models_root / "grey64")
    coords = proj.umap
    x, y = float(coords[:, 0].mean()) + 0.3, float(coords[:, 1].mean()) - 0.2
    at.session_state["map_selection"] = {"points": [], "box": [{"x": [x - 1, x + 1], "y": [y - 0.5, y + 0.5]}],
                                         "model": "grey64"}
    at.run()
    assert_healthy(at)
    shown = next(i for i in at.image if any((c or "").startswith("decoded at (") for c in i.captions))
    z = place_points(np.array([[x, y]]), coords, proj.means, k=8)[0].astype(np.float32)
    from app import models
    from vae_core.checkpoints import list_models

    model = models.open_model(next(e for e in list_models() if e.name == "grey64")).model
    expected = (np.clip(decode(model, z[None])[0], 0, 1) * 255 + 0.5).astype(np.uint8)
    got = picture(shown.value[0])
    k = got.shape[0] // 64
    np.testing.assert_array_equal(got[::k, ::k], expected[0])
    next(b for b in at.button if b.label == "Open this point in Explore").click().run()
    assert slider(at, "z0").value == pytest.approx(round(z[0] / 0.05) * 0.05, abs=1e-6)




def test_where_the_map_component_cannot_be_served_streamlits_chart_draws_the_same_figure(monkeypatch):
    from app import map_chart

    monkeypatch.setattr(map_chart, "_mount", lambda: (None, "no component here"))
    at = open_app("latent_map")
    assert_healthy(at)
    assert not at.get("bidi_component")
    (chart,) = at.get("plotly_chart")
    assert '"customdata"' in chart.proto.spec and "UMAP" in chart.proto.spec


def test_class_and_factor_names_from_a_folder_reach_the_map_as_text_not_tags():
    """plotly reads tags in a figure's text (a legend entry can be a working link): names are escaped."""
    from app import charts
    from vae_core.projection import Projection

    n = 6
    hostile = ("<a href='https://example.com'>Session expired, log in</a>", "<b>two</b>")
    proj = Projection(means=np.zeros((n, 2), np.float32), logvars=np.zeros((n, 2), np.float32),
                      factors=np.array([[0], [1]] * 3), factor_names=("label",), label_names=hostile,
                      umap=None, pca=np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32),
                      pca_explained=np.array([0.5, 0.3]), index=np.arange(n), seed=0, recon=None)
    spec = charts.latent_map(proj.pca, proj, "label", np.zeros((1, 2)), [charts.label("<i>mine</i>.png")],
                             "PCA").to_json()
    assert "<a " not in spec and "<b>" not in spec and "<i>" not in spec
    assert "&lt;a href=" in spec and "&lt;b&gt;two" in spec


def test_factor_names_from_a_card_reach_the_information_grid_as_text_not_tags():
    from app import charts

    fig = charts.mi_heatmap(np.eye(2), ["<a href='https://example.com'>shape</a>", "scale"], ["z0", "z1"], "MI")
    spec = fig.to_json()
    assert "&lt;a href=" in spec and "z0" in spec


def test_plotly_js_and_the_maps_data_are_served_gzipped_from_a_private_folder():
    import gzip
    import os

    from app import map_chart

    folder = map_chart.served_files()
    assert folder.stat().st_uid == os.getuid() and folder.stat().st_mode & 0o777 == 0o700
    assert gzip.decompress((folder / "plotly.min.js.gz").read_bytes()) == map_chart.PLOTLY_JS.read_bytes()
    assert map_chart.served_files() == folder
    name = map_chart.published(map_chart.gzipped_json({"figure": "{}"}))
    assert json.loads(gzip.decompress((folder / name).read_bytes())) == {"figure": "{}"}
    assert re.fullmatch(r"[0-9a-f]{64}\.json\.gz", name)
    assert all(p.name == "plotly.min.js.gz" or re.fullmatch(r"[0-9a-f]{64}\.json\.gz", p.name)
               for p in folder.iterdir())  # nothing else of this machine is served
