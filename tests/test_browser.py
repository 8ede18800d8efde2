"""The real app under `streamlit run`, driven by Playwright in Debian's headless Chromium.

Screenshots and the measured timings go to tests/artifacts/ (gitignored): look at them.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import pytest

from vae_core.checkpoints import MODELS_ENV

from .app_fixtures import (
    ARTIFACTS,
    BROWSER_MARKS,
    ROOT,
    ArtifactFigures,
    browser_page,
    make_broken,
    make_model,
    no_exception,
    png_bytes,
    running_app,
    settle,
    shot,
)

PAGES = ["explore", "traversals", "interpolate", "latent_map", "disentanglement", "reconstruct"]
TIMINGS = ArtifactFigures("browser_timings.json")

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free port, over tiny models made here (plus pretrained/ when it has models)."""
    root = tmp_path_factory.mktemp("browser_models")
    make_model(root, "grey64", projection=1000)
    make_model(root, "faces64", dataset="faces", channels=3, latent_dim=5)
    make_broken(root)
    began = time.perf_counter()
    with running_app(root / "streamlit.log", {MODELS_ENV: str(root)}) as (base, _):
        yield base, began, root


@pytest.fixture
def page(browser):
    with browser_page(browser) as pg:
        yield pg


def open_page(pg, server, name: str, ready: str = "h1", query: str = "model=grey64") -> float:
    began = time.perf_counter()
    pg.goto(f"{server[0]}/{'' if name == 'explore' else name}?{query}")
    settle(pg, ready)
    return time.perf_counter() - began


LIVE = "[data-testid='stBidiComponentIsolated'] canvas.image"  # the live component's decoded picture


def server_sliders(pg) -> None:
    """Switch live dragging off, as a person would: the server's own sliders and picture."""
    pg.get_by_text("Decode in the browser while dragging").click()
    settle(pg, "[data-testid='stSlider'] input[type='range']")
    settle(pg, "[data-testid='stImage'] img")


def test_first_page_after_server_start(server, page):
    open_page(page, server, "explore", LIVE)  # the decoder derived from the weights, decoding in the browser
    TIMINGS.record("first_page_s_after_server_start", round(time.perf_counter() - server[1], 2))
    no_exception(page)
    assert page.locator(f"{LIVE.split()[0]} input[type='range']").count() == 4
    page.get_by_text("Unavailable models (1)").click()
    page.wait_for_selector("[data-testid='stSidebar'] >> text=broken-model is unavailable")
    shot(page, "explore")


def test_slider_release_to_new_image(server, page):
    open_page(page, server, "explore", LIVE)
    server_sliders(page)
    slider = page.locator("[data-testid='stSlider'] input[type='range']").first
    times = []
    for i in range(8):
        before = page.locator("[data-testid='stImage'] img").first.get_attribute("src")
        slider.focus()
        began = time.perf_counter()
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        page.wait_for_function("(b) => document.querySelector(\"[data-testid='stImage'] img\").src !== b &&"
                               " document.querySelector(\"[data-testid='stImage'] img\").complete", arg=before)
        times.append(time.perf_counter() - began)
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
        page.wait_for_timeout(150)
    no_exception(page)
    TIMINGS.record("slider_key_to_image_ms", {"median": round(1000 * statistics.median(times), 1),
                                       "max": round(1000 * max(times), 1), "runs": len(times)})
    assert statistics.median(times) < 1.0  # the target is 0.15 s; a loaded CI machine gets slack
    shot(page, "explore_after_slider")
    page.get_by_role("button", name="Reset to the prior mean").click()  # the page opens on a dataset example
    page.wait_for_function("() => location.search.includes('z1=0')")
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
    page.locator("[data-testid='stSlider'] input[type='range']").nth(1).focus()
    for _ in range(6):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => location.search.includes('z1=-0.3')")
    settle(page, "[data-testid='stImage'] img")
    link, picture = page.url, page.locator("[data-testid='stImage'] img").first.get_attribute("src")
    assert "model=grey64" in link
    shared = page.context.new_page()  # a shared link opens on exactly this picture
    shared.goto(link)
    settle(shared, LIVE)
    server_sliders(shared)
    assert shared.locator("[data-testid='stImage'] img").first.get_attribute("src") == picture


@pytest.mark.parametrize("name", PAGES[1:])
def test_each_page_opens_without_exception(server, page, name):
    ready = {"latent_map": ".js-plotly-plot .main-svg", "disentanglement": "[data-testid='stTable']",
             "traversals": "[data-testid='stImage'] img", "interpolate": "[data-testid='stImage'] img",
             "reconstruct": ".js-plotly-plot .main-svg"}[name]
    seconds = open_page(page, server, name, ready)
    if name == "latent_map":
        TIMINGS.record("map_page_s", round(seconds, 2))
    no_exception(page)
    shot(page, name)
    if name == "traversals":  # the animation is made when its button is pressed (deferred, no rerun)
        settle(page, "[data-testid='stDownloadButton']")
        with page.expect_download(timeout=30_000) as download:
            page.locator("[data-testid='stDownloadButton'] button").last.click()
        assert Path(download.value.path()).read_bytes()[:6] == b"GIF89a"


def test_no_page_asks_anything_of_another_host(server, page):
    """No internet at run time, and nothing a classroom's pages tell a third party: every request a page makes
    goes to the app's own server (or stays in the browser: data and blob addresses)."""
    elsewhere = []
    page.on("request", lambda r: r.url.startswith((server[0], "data:", "blob:")) or elsewhere.append(r.url))
    for name in PAGES:
        open_page(page, server, name)
    page.wait_for_timeout(500)
    assert not elsewhere


def test_map_page_from_the_navigation(server, page):
    """What a person waits for: from clicking "Latent map" in the sidebar to the drawn map."""
    open_page(page, server, "explore", LIVE)
    page.wait_for_timeout(500)
    began = time.perf_counter()
    page.locator("[data-testid='stSidebarNav']").get_by_text("Latent map").click()
    settle(page, "[data-testid='map-chart'][data-drawn] .main-svg")  # the map's component, its figure drawn
    TIMINGS.record("map_page_from_navigation_s", round(time.perf_counter() - began, 2))
    no_exception(page)
    assert page.url.split("?")[0].endswith("/latent_map") and "model=grey64" in page.url


def test_map_colour_by_is_chosen_in_the_browser_and_kept_when_an_upload_is_placed(server, page, tmp_path):
    """"Colour by" redraws the map in the browser, with no script run on the server; a placed upload (a rerun
    with a new figure) keeps the person's colouring."""
    open_page(page, server, "latent_map", "[data-testid='map-chart'][data-drawn] .main-svg")
    page.evaluate("""() => { window.__states = [];
      const app = document.querySelector("[data-testid='stApp']");
      new MutationObserver(() => window.__states.push(app.getAttribute('data-test-script-state')))
        .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']}); }""")
    legend = "[data-testid='map-legend'] .map-key-entry"
    assert page.locator("[data-testid='map-colour']").input_value() == "shape"
    page.wait_for_selector(f"{legend}:has-text('heart')")
    page.select_option("[data-testid='map-colour']", "posX")
    page.wait_for_selector(COLOUR_BAR)
    assert page.locator(f"{legend}:has-text('heart')").count() == 0
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__states") == []  # the server ran nothing
    path = tmp_path / "mine.png"
    path.write_bytes(png_bytes(seed=3))
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(path))
    page.wait_for_selector("[data-testid='map-placed']:has-text('mine.png')", timeout=30_000)
    settle(page, "h1")
    assert page.locator("[data-testid='map-colour']").input_value() == "posX"
    assert page.locator(COLOUR_BAR).is_visible() and "posX" in page.inner_text(COLOUR_BAR)
    no_exception(page)
    # a box drawn over the middle of the map, where the placed image and the empty slots for more are
    drag_box(page, (0.25, 0.25), (0.75, 0.75))
    page.wait_for_selector("text=Open the first in Explore", timeout=30_000)
    assert page.evaluate(SELECTED)[0] > 0
    shot(page, "latent_map_colour")


def test_interpolate_two_uploads(server, page, tmp_path):
    open_page(page, server, "interpolate", "[data-testid='stImage'] img")
    for n, (side, seed) in enumerate((("A", 0), ("B", 1)), start=1):
        page.locator("[data-testid='stRadio']").nth(n - 1).get_by_text("Upload", exact=True).click()
        page.wait_for_function("(n) => document.querySelectorAll(\"[data-testid='stFileUploader'] "
                               "input[type='file']\").length === n", arg=n)
        path = tmp_path / f"{side}.png"
        path.write_bytes(png_bytes(seed=seed))
        page.locator("[data-testid='stFileUploader'] input[type='file']").nth(n - 1).set_input_files(str(path))
        page.wait_for_function("(n) => [...document.querySelectorAll('[data-testid=\"stImage\"]')]"
                               ".filter(e => e.innerText.includes('as the model sees it')).length === n", arg=n,
                               timeout=30_000)
    page.wait_for_selector("h3:has-text('From A.png to B.png')", timeout=30_000)
    settle(page, "h1")
    no_exception(page)
    preparation = page.locator("[data-testid='stExpander'] [data-testid='stImage'] img").count()  # one per upload
    assert preparation == 2
    assert page.locator("[data-testid='stImage'] img").count() - preparation == 4 + 1  # inputs, recons, the path
    shot(page, "interpolate_uploads")


def drag_box(pg, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag a box selection on the latent map, from and to these fractions of its plot area."""
    box = pg.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    pg.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    pg.mouse.down()
    pg.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=8)
    pg.mouse.up()


COLOUR_BAR = "[data-testid='map-colour-bar']"  # the map's key for an ordered factor (map.js paintKey)
# the map's highlighted points and drawn selection outlines
SELECTED = """() => [document.querySelector("[data-testid='map-chart']").data[0].selectedpoints?.length || 0,
  document.querySelectorAll("[data-testid='map-chart'] .selectionlayer path").length]"""


def test_map_box_selection_and_upload(server, page, tmp_path):
    open_page(page, server, "latent_map", ".js-plotly-plot .main-svg")
    drag_box(page, (0.2, 0.2), (0.6, 0.7))
    page.wait_for_selector("text=Open the first in Explore", timeout=30_000)
    settle(page, "h1")
    no_exception(page)
    assert page.locator("[data-testid='stImage'] img").count() > 0
    selected = page.evaluate(SELECTED)
    assert selected[0] > 0 and selected[1] > 0
    shot(page, "latent_map_selection")
    path = tmp_path / "mine.png"
    path.write_bytes(png_bytes(seed=3))
    began = time.perf_counter()
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(path))
    page.wait_for_selector("[data-testid='map-placed']:has-text('mine.png')", timeout=30_000)
    TIMINGS.record("upload_placed_on_map_ms", round(1000 * (time.perf_counter() - began), 1))
    settle(page, "h1")
    no_exception(page)
    assert page.evaluate(SELECTED) == selected  # the redrawn map keeps the box and its highlighted points
    page.select_option("[data-testid='map-colour']", "posY")
    page.wait_for_selector(f"{COLOUR_BAR}:has-text('posY')")
    assert page.evaluate(SELECTED) == selected
    shot(page, "latent_map_upload")
    page.get_by_text("Open the first in Explore").click()
    # the page switch can be slow under load; the live component draws the encoded point's image beside its own
    page.wait_for_selector("[data-testid='live-input'][alt^='input: map point']", timeout=30_000)
    settle(page, LIVE)
    no_exception(page)


POINT_AT = """(i) => { const d = document.querySelector("[data-testid='map-chart']"), f = d._fullLayout, t = d.data[0];
  const r = d.getBoundingClientRect();
  return [r.left + f._size.l + f.xaxis.l2p(t.x[i]), r.top + f._size.t + f.yaxis.l2p(t.y[i])]; }"""


def test_the_map_shows_a_point_s_picture_when_hovered_and_pictures_when_zoomed_in(server, page):
    """Own images round: a map of pictures, not only dots. The hovered point's picture is that row's image."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    from vae_core.data import DSprites
    from vae_core.projection import load_projection

    open_page(page, server, "latent_map", "[data-testid='map-chart'][data-drawn] .main-svg")
    page.wait_for_timeout(500)
    page.mouse.move(*page.evaluate(POINT_AT, 7))
    hover = page.locator("[data-testid='map-hover']")
    hover.wait_for(state="visible")
    row = int(hover.get_attribute("data-row"))
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(hover.get_attribute("src").split(",", 1)[1]))))
    proj = load_projection(Path(server[2]) / "grey64")
    image = DSprites().images_from_factors(proj.factors[[row]])[0, 0].reshape(32, 2, 32, 2).mean(axis=(1, 3))
    assert np.abs(shown[..., 0].astype(float) - image * 255).max() <= 1
    assert page.evaluate("() => document.querySelector(\"[data-testid='map-chart']\").dataset.pictures") == "0"
    for _ in range(2):
        page.locator("[data-testid='map-chart'] .modebar-btn[data-title='Zoom in']").click()
        page.wait_for_timeout(300)
    page.wait_for_function("() => +document.querySelector(\"[data-testid='map-chart']\").dataset.pictures > 5")
    no_exception(page)
    shot(page, "latent_map_pictures_zoomed")


def test_bad_upload_shows_an_error_in_the_browser(server, page, tmp_path):
    open_page(page, server, "reconstruct", "[data-testid='stImage'] img")
    page.locator("[data-testid='stRadio']").first.get_by_text("Upload", exact=True).click()
    settle(page, "[data-testid='stFileUploader']")
    path = tmp_path / "notes.png"
    path.write_bytes(b"not an image at all")
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(path))
    page.wait_for_selector("[data-testid='stAlert']:has-text('not a readable image')", timeout=30_000)
    no_exception(page)
    shot(page, "reconstruct_bad_upload")


def test_a_file_the_browser_refuses_as_too_large_hides_the_earlier_message_and_not_the_later_files(
        server, page, tmp_path):
    """The browser refuses a file over the size limit itself and tells the server nothing: what the page said
    about the file before must not stay beside its refusal, nor the refused chip beside every later file."""
    open_page(page, server, "reconstruct", "[data-testid='stImage'] img")
    page.locator("[data-testid='stRadio']").first.get_by_text("Upload", exact=True).click()
    settle(page, "[data-testid='stFileUploader']")
    chooser = page.locator("[data-testid='stFileUploader'] input[type='file']")
    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    chooser.set_input_files(str(tmp_path / "notes.png"))
    page.wait_for_selector("[data-testid='stAlert']:has-text('not a readable image')", timeout=30_000)

    (tmp_path / "huge.png").write_bytes(b"\0" * (21 * 1024 * 1024))
    chooser.set_input_files(str(tmp_path / "huge.png"))
    refused = page.locator("[data-testid='stFileChip'][aria-invalid='true']", has_text="huge.png")
    refused.wait_for(state="visible", timeout=30_000)
    page.wait_for_selector("[data-testid='stAlert']:has-text('not a readable image')", state="hidden",
                           timeout=10_000)
    shot(page, "reconstruct_refused_upload")

    (tmp_path / "circle.png").write_bytes(png_bytes(seed=5))
    chooser.set_input_files(str(tmp_path / "circle.png"))
    settle(page, "[data-testid='stFileChip']:has-text('circle.png')")
    page.wait_for_selector("[data-testid='stExpander']:has-text('circle.png')", timeout=30_000)
    assert not refused.is_visible()
    assert page.locator("[data-testid='stAlert']:visible").count() == 0
    no_exception(page)


# ---- classroom pass, round 2 (issue 33): what a class sees on the shipped models

needs_shipped = pytest.mark.skipif(not all((ROOT / "pretrained" / n).is_dir() for n in (
    "dsprites-vae", "dsprites-beta-vae", "dsprites-beta-tcvae", "faces-vae", "faces-beta-vae")),
    reason="needs the shipped models in pretrained/")


def test_no_deploy_button_or_developer_menu(server, page):
    """The toolbar is a viewer's (client.toolbarMode in app.serve.SERVER_OPTIONS): no "Deploy" offering a cloud,
    on any page or in the menu."""
    for name in ("explore", "traversals", "reconstruct"):
        open_page(page, server, name)
        assert page.locator("[data-testid='stAppDeployButton']").count() == 0
        assert page.get_by_text("Deploy", exact=True).count() == 0
    page.locator("[data-testid='stMainMenu']").click()
    page.wait_for_selector("[data-testid='stMainMenuList']")
    menu = page.inner_text("[data-testid='stMainMenuList']")
    assert "Deploy" not in menu and "Clear cache" not in menu
    shot(page, "toolbar_menu")


@needs_shipped
def test_faces_colours_are_drawn_in_their_own_colours(server, page):
    """Colour by background: green points are green, blue ones blue (they were blue, orange, ...: a palette's)."""
    open_page(page, server, "latent_map", "[data-testid='map-chart'][data-drawn] .main-svg", "model=faces-vae")
    def legend() -> dict[str, tuple[int, int, int]]:  # each legend entry's colour, as red, green, blue
        colours = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
            "[data-testid='map-legend'] .map-key-entry")].map((e) => [e.textContent,
            getComputedStyle(e.querySelector(".map-key-dot")).backgroundColor]))""")
        return {name: tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) if c.startswith("#")
                else tuple(map(int, re.findall(r"\d+", c)[:3])) for name, c in colours.items()}

    page.select_option("[data-testid='map-colour']", "background")
    page.wait_for_selector("[data-testid='map-legend'] .map-key-entry:has-text('violet')")
    colours = legend()
    assert set(colours) == {"green", "blue", "violet", "pink"}
    for name, channel in {"green": 1, "blue": 2, "violet": 2, "pink": 0}.items():
        assert max(range(3), key=lambda c: colours[name][c]) == channel, (name, colours[name])
    shot(page, "latent_map_faces_background")
    page.select_option("[data-testid='map-colour']", "hair_colour")
    page.wait_for_selector("[data-testid='map-legend'] .map-key-entry:has-text('blonde')")
    colours = legend()
    assert max(colours["black"]) < 60 and min(colours["blonde"][:2]) > 180 and colours["ginger"][0] > 150
    no_exception(page)
    shot(page, "latent_map_faces_hair")


# every word of the traversal rows' labels (the first column of a row that holds a picture) on one line
BROKEN_WORDS = """() => {
  const labels = document.querySelectorAll("[data-testid='stHorizontalBlock']:has([data-testid='stImage']) > "
    + "[data-testid='stColumn']:first-child [data-testid='stMarkdownContainer']");
  const broken = [];
  for (const box of labels) {
    const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        if (new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1) broken.push(m[0]);
      }
    }
  }
  return {labels: [...labels].map((l) => l.innerText), broken};
}"""


@needs_shipped
@pytest.mark.parametrize("model", ["faces-vae", "dsprites-vae"])
def test_traversal_row_labels_keep_their_words_whole(server, page, model):
    """"face_shap e + gaze": a row's label broke inside its words, its column narrower than a factor's name."""
    open_page(page, server, "traversals", "[data-testid='stImage'] img", f"model={model}")
    found = page.evaluate(BROKEN_WORDS)
    assert len(found["labels"]) == 10 and not found["broken"], found
    no_exception(page)
    shot(page, f"traversals_{model}")
    with page.expect_download(timeout=30_000) as download:  # the sheet's labels: tests/test_classroom.py
        page.locator("[data-testid='stDownloadButton'] button").first.click()
    Path(download.value.path()).replace(ARTIFACTS / f"traversal_sheet_{model}.png")


@needs_shipped
def test_traversals_open_on_a_dataset_example(server, page):
    open_page(page, server, "traversals", "[data-testid='stImage'] img", "model=dsprites-vae")
    assert page.locator("[data-testid='stRadio'] label:has(input:checked)").first.inner_text() == "Dataset example"


@needs_shipped
def test_disentanglement_opens_on_the_contrast_with_labels_one_can_read(server, page):
    open_page(page, server, "disentanglement", "[data-testid='stTable']", "model=dsprites-beta-vae")
    assert [page.get_by_role("combobox", name=f"Model {ab}").input_value() for ab in "AB"] == [
        "dsprites-vae", "dsprites-beta-tcvae"]
    sheet = page.locator("[data-testid='stImage'] img").first
    sheet.wait_for()
    natural, shown, rows = page.evaluate("(img) => [img.naturalWidth, img.clientWidth, img.naturalHeight / 10]",
                                         sheet.element_handle())
    assert (rows // 5) * shown / natural >= 10  # label letters of 10 px or more on the screen
    no_exception(page)
    shot(page, "disentanglement_first_pair")


def teardown_module(module):
    print("browser timings:", json.dumps(TIMINGS))  # also in tests/artifacts/browser_timings.json


def test_the_server_tells_nobody_its_caches_and_sessions(server):
    """Hostile round 3: /_stcore/metrics listed every cache's name and size and the session count to anyone."""
    import urllib.request

    body = urllib.request.urlopen(f"{server[0]}/_stcore/metrics", timeout=10).read().decode(errors="replace")
    assert "cache_lookups" not in body and "# TYPE" not in body  # no metric, but the app's page, as for any
    assert "<html" in body.lower()  # other unknown address
    assert urllib.request.urlopen(f"{server[0]}/_stcore/health", timeout=10).read() == b"ok"
