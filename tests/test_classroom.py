"""What a class sees on the shipped models (issue 33, round 2): the metrics' chance levels, Traversals' first
picture and its ranges, Disentanglement's first pair and its sheet's labels, drawn hearts on Reconstruct."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from vae_core.checkpoints import PRETRAINED_DIR
from vae_core.config import DatasetInfo
from vae_core.upload_corpus import _outline

from .app_fixtures import serve_models
from .test_app import assert_healthy, image_urls, open_app, picture

SHIPPED = ("dsprites-vae", "dsprites-beta-vae", "dsprites-beta-tcvae", "dsprites-cvae", "faces-vae", "faces-beta-vae")
pytestmark = [pytest.mark.usefixtures("torch_threads_restored"),
              pytest.mark.skipif(not all((PRETRAINED_DIR / n).is_dir() for n in SHIPPED),
                                 reason="needs the shipped models in pretrained/")]


@pytest.fixture(autouse=True)
def shipped_models_only(monkeypatch, tmp_path):
    """The app lists pretrained/ alone (an empty second folder), and keeps the pictures it shows."""
    serve_models(monkeypatch, tmp_path)


# ---- 3. the metrics table's chance levels

def test_chance_is_one_over_the_varying_factors_of_the_data():
    from vae_core.evaluate import row_meaning

    dsprites = DatasetInfo("dsprites", ("color", "shape", "scale", "orientation", "posX", "posY"), (1, 3, 6, 40, 32, 32))
    faces = DatasetInfo("faces", tuple("abcdefg"), (3, 4, 4, 3, 3, 5, 4))
    assert row_meaning("beta-VAE score", [dsprites, dsprites]).startswith("0.20 (chance, 5 factors) to 1")
    assert row_meaning("FactorVAE score", [faces]).startswith("0.14 (chance, 7 factors) to 1")
    both = row_meaning("beta-VAE score", [faces, dsprites])
    assert "0.20 (chance, 5 factors)" in both and "0.14 (chance, 7 factors)" in both
    assert row_meaning("beta-VAE score", [DatasetInfo("digits")]).startswith("chance to 1")
    assert "{" not in row_meaning("MIG", [dsprites])


def test_the_metrics_table_gives_the_chance_of_the_models_data():
    at = open_app("disentanglement", model=None)
    meaning = at.table[0].value.loc["beta-VAE score", "what it measures"]
    assert "0.20 (chance, 5 factors)" in meaning and "0.33" not in meaning
    at.selectbox(key="dis_1").set_value("faces-vae").run()
    meaning = at.table[0].value.loc["beta-VAE score", "what it measures"]
    assert "0.20 (chance, 5 factors)" in meaning and "0.14 (chance, 7 factors)" in meaning


# ---- 5. Traversals opens on a dataset example; the posterior range works or is not offered

def _frames(url: str, steps: int) -> list[np.ndarray]:
    strip = picture(url)
    scale = strip.shape[0] // 64
    return [strip[::scale, (66 * k) * scale:(66 * k + 64) * scale:scale] for k in range(steps)]


@pytest.mark.parametrize("model", ["dsprites-vae", "dsprites-cvae"])
def test_traversals_open_on_a_dataset_example_with_no_empty_rows(model):
    at = open_app("traversals", model=model)
    assert at.radio(key="trav_src").value == "Dataset example"
    assert any("from dataset example #0" in c.value for c in at.caption)
    rows = image_urls(at)
    steps = next(s for s in at.slider if s.label == "Steps").value
    empty = [r for r, url in enumerate(rows) if sum(frame.max() < 64 for frame in _frames(url, steps)) > steps // 2]
    assert not empty, f"rows {empty} are mostly black frames"


def test_the_posterior_range_is_the_encoded_examples_and_offered_only_with_one():
    at = open_app("traversals", model="dsprites-beta-vae")
    prior = image_urls(at)
    next(r for r in at.radio if r.label == "Range").set_value("posterior mean ± k σ").run()
    assert_healthy(at)
    assert not at.main.warning  # no fallback to the prior while the radio says posterior
    assert [picture(u).tobytes() for u in image_urls(at)] != [picture(u).tobytes() for u in prior]
    at.radio(key="trav_src").set_value("Prior mean").run()
    assert_healthy(at)
    ranges = next(r for r in at.radio if r.label == "Range")
    assert "posterior mean ± k σ" not in ranges.options and ranges.value == "prior quantiles"
    assert any("needs an encoded image" in c.value for c in at.caption) and not at.main.warning


# ---- 9. Disentanglement opens on the pair that shows the lesson, with labels one can read

def test_disentanglement_opens_on_the_pair_of_the_sidebars_data_whose_mig_differs_most():
    at = open_app("disentanglement", model=None)  # the sidebar's default model is of dSprites
    assert (at.selectbox(key="dis_0").value, at.selectbox(key="dis_1").value) == ("dsprites-vae",
                                                                                  "dsprites-beta-tcvae")
    at = open_app("disentanglement", model="faces-vae")
    assert (at.selectbox(key="dis_0").value, at.selectbox(key="dis_1").value) == ("faces-vae", "faces-beta-vae")


def _ink_rows(margin: np.ndarray) -> list[int]:
    """The heights of the runs of rows holding dark pixels in a label margin: one run per line of text."""
    dark = (margin < 128).any(axis=1)
    runs, length = [], 0
    for row in dark:
        length = length + 1 if row else 0
        if length == 1:
            runs.append(0)
        if length:
            runs[-1] = length
    return runs


def test_the_sheets_labels_are_readable_at_the_width_the_page_shows_them():
    at = open_app("disentanglement", model=None)
    sheet = picture(image_urls(at)[0])
    grey = sheet if sheet.ndim == 2 else sheet[..., :3].mean(-1)
    first_picture = int(np.argmax((np.abs(grey - 255) > 0).mean(0) > 0.5))  # where the grid starts
    lines = _ink_rows(grey[:, :first_picture])
    shown = 440 / sheet.shape[1]  # a column of a wide page 1,400 px across (measured in Chromium)
    assert lines and np.median(lines) * shown >= 7, (lines, sheet.shape)  # a line's ink 7 px tall or more


# ---- 8. a drawn heart is not called far outside

def _drawing(polygons, size: int = 400) -> bytes:
    image = Image.new("RGB", (size, size), (255, 255, 255))
    pen = ImageDraw.Draw(image)
    for polygon in polygons:
        pen.polygon(polygon, fill=(0, 0, 0))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


HEARTS = {f"heart-{size}-{angle}.png": _drawing([_outline("heart", (200, 200), size, angle)])
          for size, angle in ((240, 0.0), (200, 0.2), (280, -0.3), (160, 0.0))}
star = [(200 + r * np.sin(a), 200 - r * np.cos(a)) for r, a in zip([160, 65] * 5, np.linspace(0, 2 * np.pi, 11)[:-1])]
UNLIKE = {"star.png": _drawing([star]),
          "two-shapes.png": _drawing([[(40, 40), (150, 40), (150, 150), (40, 150)],
                                      _outline("ellipse", (290, 290), 160, 0.5)])}


def _reconstruct(at: AppTest, name: str, data: bytes) -> tuple[str, list[str]]:
    at.file_uploader[0].set_value((name, data, "image/png")).run()
    assert_healthy(at)
    return at.subheader[-1].value, [i.value for i in at.info] + [c.value for c in at.caption]


@pytest.mark.parametrize("model", ["dsprites-vae", "dsprites-beta-tcvae"])
def test_drawn_hearts_are_close_to_the_data_and_other_drawings_far_outside(model):
    at = open_app("reconstruct", model=model)
    at.radio(key="recon_src").set_value("Upload").run()
    for name, data in HEARTS.items():
        verdict, notes = _reconstruct(at, name, data)
        assert "far outside" not in verdict and "close to the training images nearest it" in verdict, (name, verdict)
        assert not any("still unlike" in n for n in notes)
        factor = next(float(m.group(1)) for n in notes if (m := re.search(r"error is ([\d.]+) times", n)))
        assert factor <= 10
    for name, data in UNLIKE.items():
        verdict, notes = _reconstruct(at, name, data)
        assert "far outside" in verdict, (name, verdict)
        assert any("still unlike" in n and "times that of the 32 training images" in n for n in notes)


# ---- 11. whole names in the sheets' labels

def test_sheet_labels_are_whole_names_broken_between_words():
    """ "z8 hair_colour + backg": the downloaded sheet cut every label at 22 characters."""
    from PIL import ImageFont

    from vae_core.imaging import label_rows, narrowest_width, wrap_words

    labels = ["z8 mixed: skin_tone 94% + mouth 44%", "z8 hair_colour + background", "z1 inactive"]
    font = ImageFont.load_default(size=131 // 5)
    width = max(narrowest_width(label, font, 3) for label in labels)
    for label in labels:
        lines = wrap_words(label, font, width)
        assert " ".join(lines) == label and len(lines) <= 3  # every word, none split
    assert width >= font.getlength("background")
    sheet = label_rows(np.full((3 * 131, 300), 128, np.uint8), labels, 131)
    margin = sheet[:, :sheet.shape[1] - 300]
    assert margin.shape[1] >= 131 // 5 + font.getlength("background")
    assert all((margin[r * 131:(r + 1) * 131] < 128).any() for r in range(3))  # a label in every row
