"""The app's pages under streamlit.testing.v1.AppTest, on tiny model folders made by the tests.

Pictures are compared through their bytes: the media storage AppTest uses is wrapped so that each image URL
maps back to the PNG the page produced.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from app import live
from vae_core.checkpoints import MODELS_ENV, PRETRAINED_DIR

from .app_fixtures import MEDIA, png_bytes
from .helpers import unescaped

APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
SERVED = "models_root"  # the model folders the app lists in this module (conftest.served_models)

pytestmark = pytest.mark.usefixtures("torch_threads_restored")


def open_app(page: str = "explore", model: str | None = "grey64", query: dict | None = None,
             timeout: float = 60, live_drag: bool = False) -> AppTest:
    """The app at `page` with `model` chosen (None: whatever `query` says), run once and checked healthy.
    Explore's live dragging is switched off unless `live_drag` (its server sliders are widgets AppTest can read and
    move; the live component is tested in test_live_app and, in a browser, test_live_drag)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if not live_drag:
        at.session_state[live.MODE_KEY] = False
    at.query_params.update({**({"model": model} if model else {}), **(query or {})})
    at.run()
    if page != "explore":
        go_to(at, page)
    assert_healthy(at)
    return at


def go_to(at: AppTest, address: str) -> AppTest:
    """Open the page at `address` (its URL path, as a person's link names it) and run it: the router picks the
    page file by the model's kind (a VQ-VAE's Reconstruct is views/vq_reconstruct.py at /reconstruct)."""
    app_dir = Path(APP).resolve().parent
    files = [Path(info["script_path"]).resolve().relative_to(app_dir) for info in at._registered_pages.values()
             if info.get("url_pathname") == address and info.get("script_path")]  # AppTest's record of st.navigation
    assert files, f"no page at /{address}"
    return at.switch_page(str(files[0])).run()


def assert_healthy(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def picture(url: str) -> np.ndarray:
    """The pixels behind an st.image URL."""
    return np.asarray(Image.open(io.BytesIO(MEDIA[url.rsplit("/", 1)[-1].split(".")[0]])))


PREPARATION = "As the model sees it"  # the expander of an upload's preparation steps (app.widgets)


TRUTH = "data: "  # the caption of a traversal row's true-factor sweep (app/views/traversals.py)


def image_urls(at: AppTest) -> list[str]:
    """The page's pictures, in order, leaving out those showing how an upload was prepared and the data's own
    factor sweeps beside traversal rows."""
    steps = {url for e in at.expander if e.label.startswith(PREPARATION) for image in e.image for url in image.value}
    return [url for image in at.image for url, caption in zip(image.value, image.captions or [""] * len(image.value))
            if url not in steps and not (caption or "").startswith(TRUTH)]


def slider(at: AppTest, key: str):
    return next(s for s in at.slider if s.key == key)


def test_broken_model_listed_as_unavailable_and_others_usable():
    at = open_app()
    warnings = [unescaped(w.value) for w in at.sidebar.warning]
    assert any("broken-model" in w and "unavailable" in w and "latent_dim" in w for w in warnings)
    assert "broken-model" not in at.sidebar.selectbox(key="model").options
    assert at.sidebar.selectbox(key="model").value == "grey64"
    assert "dsprites" in at.sidebar.markdown[0].value and "MIG" in at.sidebar.markdown[0].value


def test_with_no_model_in_the_url_the_app_opens_on_the_shipped_beta_vae():
    at = open_app(model=None)
    assert at.sidebar.selectbox(key="model").value == "dsprites-beta-vae"
    assert "beta-vae · β = 4" in at.sidebar.markdown[0].value
    assert at.query_params["model"] == "dsprites-beta-vae"  # a copied link names it, whatever another server's default


def test_a_link_names_the_model_chosen_in_the_sidebar_and_reopens_it():
    at = open_app(model="grey64")
    at.sidebar.selectbox(key="model").set_value("faces64").run()
    assert at.query_params["model"] == "faces64"
    again = open_app(model=None, query={"model": "faces64", "z0": "0.5"})
    assert again.sidebar.selectbox(key="model").value == "faces64" and slider(again, "z0").value == 0.5


def test_model_whose_weights_fail_to_load_says_why():
    at = open_app(model="corrupt-weights")
    assert "corrupt-weights" in at.sidebar.error[0].value and "truncated" in at.sidebar.error[0].value
    assert "Choose a usable model" in at.info[0].value
    at.sidebar.selectbox(key="model").set_value("grey64").run()  # the others stay usable
    assert_healthy(at)
    assert not at.sidebar.error and len(at.slider) == 4


@pytest.mark.parametrize("model, shape", [("grey64", (384, 384)), ("faces64", (384, 384, 3)),
                                          ("colour32", (384, 384, 3))])
def test_explore_slider_moves_the_decoded_image(model, shape):
    at = open_app(model=model)
    labels = [s.label for s in at.slider]
    assert labels[0].startswith("z0 · ") and labels[0].endswith(" · 1.50 nats") and "inactive" in labels[-1]
    # ordered by KL, collapse shown; named by what it carries of the tiny model's data (untrained: mixed)
    before = picture(at.image[0].value[0])
    assert before.shape == shape  # enlarged with whole nearest-neighbour pixels
    slider(at, "z0").set_value(2.5).run()
    assert_healthy(at)
    after = picture(at.image[0].value[0])
    assert after.shape == shape and not np.array_equal(before, after)
    assert at.query_params["z0"] == "2.5"  # the point is in the URL


def test_explore_opens_a_shared_link_at_its_point():
    at = open_app(query={"z1": "-1.5", "z2": "0.75"})
    assert slider(at, "z1").value == -1.5 and slider(at, "z2").value == 0.75 and slider(at, "z0").value == 0.0


def _sidebar_markdown(at: AppTest) -> str:
    return " ".join(m.value for m in at.sidebar.markdown)


def test_an_autoencoders_card_shows_no_kl_and_no_beta():
    """Its log-variance output is never trained: a KL of thousands of nats would mislead a class."""
    text = _sidebar_markdown(open_app(model="ae64"))
    assert "recon" in text and "KL" not in text and "β" not in text
    assert "KL" in _sidebar_markdown(open_app(model="grey64"))


def test_card_text_is_not_rendered_as_markdown():
    text = _sidebar_markdown(open_app(model="ae64"))
    assert not re.search(r"(?<!\\)(\]\(|!\[)", text) and "Session expired" not in text
    assert "· ? steps" in text  # a count that is not a number is not shown at all


def test_without_a_link_explore_opens_on_a_dataset_example():
    """The prior mean of many models decodes to an empty frame: a model starts from dataset example #0."""
    at = open_app()
    assert any("Encoded dataset example #0" in c.value for c in at.caption)
    at.selectbox(key="model").set_value("faces64").run()
    assert_healthy(at)
    assert any("Encoded dataset example #0" in c.value for c in at.caption)


@pytest.mark.parametrize("raw", ["99", "-7", "nan", "inf", "abc"])
def test_a_link_value_a_slider_cannot_take_keeps_the_starting_value_as_the_note_says(raw):
    start = slider(open_app(query={"z0": "1"}), "z1").value  # where z1 starts when the link does not set it
    at = open_app(query={"z0": "1", "z1": raw})
    notes = " ".join(w.value for w in at.warning)
    assert "z1=" in notes and "keep their starting value" in notes
    assert slider(at, "z1").value == start and slider(at, "z0").value == 1.0


def test_switching_to_a_smaller_model_is_not_reported_as_a_link():
    at = open_app(model="grey64", query={"z3": "1"})
    assert not [w.value for w in at.warning if "link" in w.value]
    at.selectbox(key="model").set_value("bad-projection").run()  # 3 dimensions: z3 is the last model's
    assert_healthy(at)
    assert not [w.value for w in at.warning if "link" in w.value]


def test_explore_buttons_and_upload_set_the_point():
    at = open_app()
    at.button[1].click().run()  # randomise
    assert_healthy(at)
    assert any(s.value != 0 for s in at.slider)
    at.button[0].click().run()  # reset
    assert all(s.value == 0 for s in at.slider)
    at.button[2].click().run()  # a dataset example: its posterior is shown under each slider
    assert_healthy(at)
    captions = [c.value for c in at.caption]
    assert any("Encoded dataset example #" in c for c in captions) and sum(c.startswith("μ ") for c in captions) == 4
    at.file_uploader[0].set_value(("disc.png", png_bytes(), "image/png")).run()
    assert_healthy(at)
    assert any("Encoded disc.png" in c.value for c in at.caption)
    assert len(image_urls(at)) == 2  # the decoded image and the input as the model sees it


BAD_UPLOADS = {
    "text": (b"this is not an image", "not a readable image"),
    "truncated": (png_bytes(64)[:60], "not a readable image"),
    "empty": (b"", "empty"),
    "too many bytes": (b"\x89PNG" + bytes(21 * 1024 * 1024), "limit is"),
}


def _odd_image(mode: str, frames: int = 1) -> bytes:
    rgb = Image.open(io.BytesIO(png_bytes(48)))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)  # 16-bit grey
    else:
        image = rgb.convert(mode)
    buf = io.BytesIO()
    if frames > 1:
        image.save(buf, format="GIF", save_all=True, append_images=[image.rotate(90)] * (frames - 1))
    else:
        image.save(buf, format="TIFF" if mode == "CMYK" else "PNG")
    return buf.getvalue()


def _huge_header() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, format="PNG")  # 81 million pixels in a small file
    return buf.getvalue()


@pytest.mark.parametrize("kind", [*BAD_UPLOADS, "huge"])
def test_bad_uploads_show_their_message_and_the_page_keeps_working(kind):
    data, message = BAD_UPLOADS.get(kind) or (_huge_header(), "million pixels")
    at = open_app("reconstruct")
    at.radio(key="recon_src").set_value("Upload").run()
    at.file_uploader[0].set_value((f"{kind}.png", data, "image/png")).run()
    assert_healthy(at)
    assert len(at.error) == 1 and message in at.error[0].value
    at.radio(key="recon_src").set_value("Dataset example").run()  # the page still works
    assert_healthy(at)
    assert not at.error and "%" in at.subheader[-1].value


@pytest.mark.parametrize("mode, frames", [("RGBA", 1), ("P", 1), ("I;16", 1), ("CMYK", 1), ("L", 3)])
def test_odd_but_valid_images_are_accepted(mode, frames):
    at = open_app("reconstruct", model="faces64")
    at.radio(key="recon_src").set_value("Upload").run()
    at.file_uploader[0].set_value(("odd.img", _odd_image(mode, frames), "image/png")).run()
    assert_healthy(at)
    beside_gan = 2 * any("VAE-GAN beside" in s.value for s in at.subheader)  # a shipped faces VAE-GAN's pair
    assert not at.error and len(image_urls(at)) == 5 + beside_gan and "%" in at.subheader[-1].value


def test_traversal_grid_has_a_row_per_dimension_and_a_column_per_step():
    at = open_app("traversals")
    next(s for s in at.slider if s.label == "Steps").set_value(5).run()
    assert_healthy(at)
    rows = image_urls(at)
    assert len(rows) == 4 and "4 dimensions × 5 steps" in " ".join(c.value for c in at.caption)
    strip = picture(rows[0])
    scale = strip.shape[0] // 64
    assert strip.shape[:2] == (64 * scale, (5 * 66 - 2) * scale)  # 5 images with 2-pixel gaps, enlarged
    assert len(at.get("download_button")) == 2
    next(s for s in at.checkbox if s.label.startswith("Only active")).check().run()
    assert len(image_urls(at)) == 3  # the collapsed dimension is left out


def test_traversal_ranges_from_an_encoded_image():
    at = open_app("traversals", model="faces64")
    at.radio(key="trav_src").set_value("Dataset example").run()
    for kind in ("posterior mean ± k σ", "data range"):
        next(r for r in at.radio if r.label == "Range").set_value(kind).run()
        assert_healthy(at)
        assert not at.main.warning and len(image_urls(at)) == 5


def _frames_and_reconstructions(at: AppTest, steps: int):
    """Both reconstructions and the first and last frames of the path, at 64x64."""
    urls = image_urls(at)
    recon_a, recon_b, strip = picture(urls[1]), picture(urls[3]), picture(urls[4])
    ka, ks = recon_a.shape[0] // 64, strip.shape[0] // 64
    assert strip.shape[1] == (steps * 66 - 2) * ks  # the path: `steps` frames with 2-pixel gaps
    last = (steps - 1) * 66 * ks
    return recon_a[::ka, ::ka], recon_b[::ka, ::ka], strip[::ks, :64 * ks:ks], strip[::ks, last:last + 64 * ks:ks]


@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_interpolation_path_starts_and_ends_at_the_reconstructions(method):
    at = open_app("interpolate")
    for side, seed in (("A", 0), ("B", 1)):
        at.radio(key=f"interp_{side}_src").set_value("Upload").run()
        at.session_state[f"interp_{side}_upload::skip"] = ["cropped"]  # left in place: a tiny model's decodes
                                                                         # differ by where the disc is
        at.file_uploader(key=f"interp_{side}_upload").set_value((f"{side}.png", png_bytes(seed=seed), "image/png"))
    at.run()
    next(r for r in at.radio if r.label == "Interpolation").set_value(method).run()
    next(s for s in at.slider if s.label == "Steps").set_value(6).run()
    assert_healthy(at)
    recon_a, recon_b, first, last = _frames_and_reconstructions(at, 6)
    np.testing.assert_array_equal(first, recon_a)
    np.testing.assert_array_equal(last, recon_b)
    assert not np.array_equal(recon_a, recon_b)
    assert len(at.get("download_button")) == 2


def test_disentanglement_compares_two_models():
    at = open_app("disentanglement")
    at.selectbox(key="dis_0").set_value("grey64")
    at.selectbox(key="dis_1").set_value("faces64").run()
    assert_healthy(at)
    assert len(image_urls(at)) == 2 and len(at.get("plotly_chart")) == 5  # KL bars and MI for each, the sweep
    shipped = json.loads((PRETRAINED_DIR / "beta_sweep.json").read_text())  # pretrained/ is listed first
    mig_trace = json.loads(at.get("plotly_chart")[-1].proto.spec)["data"][-1]
    assert mig_trace["x"] == [p["beta"] for p in shipped] and mig_trace["y"] == [p["mig"] for p in shipped]
    assert any("One β-VAE per β (dsprites, 26,000 steps" in c.value for c in at.caption)
    table = at.table[0].value
    assert list(table.columns) == ["grey64", "faces64", "what it measures"] and table.loc["MIG", "grey64"] == "0.12"
    assert "Chen et al. 2018" in table.loc["MIG", "what it measures"]
    assert "DCI completeness" not in table.index  # n/a for both: left out
    traces = [json.loads(c.proto.spec)["data"][0] for c in at.get("plotly_chart")]
    heatmaps = [t for t in traces if t.get("name") == "mutual information"]
    assert len(heatmaps) == 2 and heatmaps[0]["marker"].get("cmax") is not None
    assert heatmaps[0]["marker"]["cmax"] == heatmaps[1]["marker"]["cmax"]  # one shade, one value, in both


def test_reconstruct_places_an_example_in_the_error_distribution():
    at = open_app("reconstruct", model="faces64")
    assert at.radio(key="recon_src").value == "Dataset example"
    assert [m.label for m in at.metric][:4] == ["reconstruction", "KL", "−ELBO", "−IWAE (k=100)"]
    assert all(m.value.endswith(" nats") for m in at.metric[:4])
    assert "% of 300 training images" in at.subheader[-1].value


@pytest.mark.parametrize("page", ["explore", "traversals", "interpolate", "latent_map", "disentanglement",
                                  "reconstruct"])
def test_every_page_works_for_a_model_without_data(page):
    at = open_app(page, model="colour32")
    assert not at.error


@pytest.mark.skipif(not (PRETRAINED_DIR / "dsprites-vae").is_dir(), reason="needs the shipped dsprites-vae")
def test_an_upload_unlike_the_data_gets_a_plain_note_on_what_to_try():
    at = open_app("reconstruct", model="dsprites-vae")  # a trained model: noise is far outside its data
    at.radio(key="recon_src").set_value("Upload").run()
    noise = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    at.file_uploader[0].set_value(("noise.png", buf.getvalue(), "image/png")).run()
    assert_healthy(at)
    assert "far outside" in at.subheader[-1].value
    assert any("still unlike what the model was trained on" in i.value for i in at.info)


def test_clicking_a_heatmap_cell_plays_that_latents_traversal(monkeypatch):
    at = open_app("disentanglement")
    at.selectbox(key="dis_0").set_value("grey64")
    at.selectbox(key="dis_1").set_value("faces64").run()
    heatmap = next(json.loads(c.proto.spec)["data"][0] for c in at.get("plotly_chart")
                   if json.loads(c.proto.spec)["data"][0].get("name") == "mutual information")
    assert all(len(t) == 4 and t[1] == "." for t in heatmap["text"])  # the numbers are in the cells
    assert not any((c or "").endswith("traversal, playing") for i in at.image for c in i.captions)
    from app import charts

    monkeypatch.setattr(charts, "clicked_latent", lambda state, dim: 1 if dim == 4 else None)  # a click on z1
    at.run()
    assert_healthy(at)
    playing = [i for i in at.image if any((c or "") == "z1's traversal, playing" for c in i.captions)]
    assert len(playing) == 1


def test_a_clicked_cell_is_read_from_the_charts_selection():
    from app.charts import clicked_latent

    assert clicked_latent({"selection": {"points": [{"x": "z2", "y": "posX", "z": 0.4}]}}, 4) == 2
    assert clicked_latent({"selection": {"points": [{"x": "z9"}]}}, 4) is None
    assert clicked_latent({"selection": {"points": []}}, 4) is None and clicked_latent(None, 4) is None


def test_reconstruct_compares_with_the_errors_recorded_in_the_projection(monkeypatch):
    """No data sample is encoded on the first visit where projection.npz records the errors (300 points here)."""
    from app import models

    def no_encoding(*args, **kwargs):
        raise AssertionError("the data sample was encoded")

    monkeypatch.setattr(models, "data_sample", no_encoding)
    at = open_app("reconstruct")
    assert "of 300 training images" in at.subheader[-1].value


def test_the_libraries_pages_import_lazily_are_imported_once_before_any_page():
    """Two sessions importing pandas at once for the first time made one fail ("partially initialized module
    'pandas'"): the first run imports them under a lock, before a page's own code."""
    import subprocess
    import sys

    code = ("import sys; from app import models; assert 'pandas' not in sys.modules; models.configure_process(); "
            "print('pandas' in sys.modules and 'plotly.graph_objects' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=APP.parent.parent)
    assert out.stdout.strip() == "True"


def test_an_evaluated_folder_shows_its_new_card_without_a_restart(models_root, tmp_path, monkeypatch):
    """Classroom round 2: after `python -m vae_core.evaluate` the running app kept the training-time figures in the
    sidebar and the tables until a restart, while the map already showed the new projection."""
    import shutil

    from vae_core import checkpoints as ckpt

    shutil.copytree(models_root / "grey64", tmp_path / "evaluated")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    at = open_app(model="evaluated")
    assert "| recon (nats/image) | 100 |" in _sidebar_markdown(at)
    ckpt.update_card(tmp_path / "evaluated", {"evaluation": {"recon": 87.5, "kl": 2.0, "kl_per_dim": [1.0, 0.5, 0.5,
                                                                                                      0.001]},
                                               "iwae": {"nll_nats_per_image": 90.25, "k": 100}})
    at.run()
    assert "| recon (nats/image) | 87.5 |" in _sidebar_markdown(at) and "90.2" in _sidebar_markdown(at)


def test_disentanglement_plots_how_each_model_trained(models_root, tmp_path, monkeypatch):
    """Own images round: the loss curves of training.csv were plotted nowhere; a KL that falls to nothing is
    posterior collapse watched as it happened."""
    import shutil

    folder = shutil.copytree(models_root / "grey64", tmp_path / "logged")
    rows = "\n".join(f"{s},{100 - s / 10},{90 - s / 10},{max(0.01, 5 - s / 20)},{min(1, s / 50)},,,0.0005,{s},"
                     f"{5 - s / 25},0.0" for s in range(10, 110, 10))
    (folder / "training.csv").write_text("step,total,recon,kl,kl_weight,capacity,tc,lr,elapsed_s,kl_z0,kl_z1\n"
                                         + rows + "\n")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    at = open_app("explore", "logged")
    at.session_state["dis_0"] = "logged"
    go_to(at, "disentanglement")
    charts = [c for c in at.get("plotly_chart") if "How it trained" in c.proto.spec]
    assert charts and "KL weight" in charts[0].proto.spec
    per_latent = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "KL per latent" in c.proto.spec]
    assert [t["name"] for t in per_latent[0]["data"]] == ["z0", "z1"]  # z1 collapsed from the start: grey
    assert per_latent[0]["data"][1]["line"]["color"] == "#bbbbbb" != per_latent[0]["data"][0]["line"].get("color")


@pytest.mark.skipif(not (PRETRAINED_DIR / "faces-vae" / "edits.json").is_file(), reason="needs faces-vae's edits")
def test_reconstruct_offers_to_make_ones_own_face_smile():
    """Smile round: an uploaded drawing of a frowning face, moved by the model's stored mouth edit to each mouth in
    turn: a strip from frown to smile (`python -m vae_core.upload_eval pretrained/faces-vae` measures how many of
    the drawn faces that do not smile read as smiles at its end)."""
    from vae_core.upload_corpus import face_corpus

    at = open_app("reconstruct", model="faces-vae")
    frown = next(f for f in face_corpus(1) if f.mood == "frown")
    at.radio(key="recon_src").set_value("Upload").run()
    at.file_uploader[0].set_value(("frown.png", frown.data, "image/png")).run()
    assert_healthy(at)
    assert any(m.value.startswith("**Make it smile**") for m in at.markdown)
    strip = next(image for image in at.image if len(image.captions) == 5)
    assert strip.captions == ["strong frown", "frown", "neutral", "smile", "big smile"]


def test_an_upload_named_like_a_link_is_text_on_interpolate():
    """An upload's file name reached Interpolate's heading as markdown: a name like a link became a link."""
    at = open_app("interpolate")
    at.radio(key="interp_A_src").set_value("Upload").run()
    at.file_uploader[0].set_value(("[Session expired, log in](https://example.com).png", png_bytes(), "image/png"))
    at.run()
    assert_healthy(at)
    heading = next(s.value for s in at.subheader if s.value.startswith("From "))
    assert "\\[Session expired" in heading and "](https" not in heading.replace("\\]", "").replace("\\(", "")


@pytest.mark.skipif(not (PRETRAINED_DIR / "digits-vae").is_dir(), reason="needs the shipped digits-vae")
def test_labelled_digits_offer_the_class_vector_with_its_fit_and_say_why_there_is_no_edit():
    """Smile round: where there are no twins (real labelled images), the attribute vector alone, its fit shown."""
    from app import models
    from vae_core import checkpoints as ckpt
    from vae_core.latent import toward_classes

    at = open_app("explore", "digits-vae")
    note = next(c.value for c in at.caption if "attribute vector" in c.value)
    assert "twins" in note and "% of the data's codes" in note
    before = np.array([at.session_state[f"z{d}"] for d in range(10)])
    entry = next(e for e in ckpt.list_models() if e.name == "digits-vae")
    points = toward_classes(before, models.class_vectors(models.open_model(entry)).centres)
    target = int(np.argmax(np.linalg.norm(points - before, axis=1)))  # the class whose vector moves it most
    next(g for g in at.button_group if g.key == "class::digits-vae").set_value(target).run()
    assert_healthy(at)
    after = np.array([at.session_state[f"z{d}"] for d in range(10)])
    expected = points[target]
    assert np.abs(after - expected).max() <= 0.05 + 1e-6 and np.abs(after - before).max() > 0.1


@pytest.mark.skipif(not (PRETRAINED_DIR / "dsprites-vae" / "edits.json").is_file(), reason="needs dsprites-vae's edits")
def test_a_factor_of_many_values_is_edited_from_a_list_with_the_server_sliders():
    """dsprites-vae's posX edit has 32 values: a list, not 32 buttons; choosing one moves the point by the edit."""
    from app import models
    from vae_core import checkpoints as ckpt
    from vae_core.edits import apply_edit

    at = open_app("explore", "dsprites-vae")
    box = next(b for b in at.selectbox if b.key == "edit::dsprites-vae::posX")
    assert len(box.options) == 32 and box.value is None
    before = np.array([at.session_state[f"z{d}"] for d in range(10)], np.float32)
    box.set_value(30).run()
    assert_healthy(at)
    after = np.array([at.session_state[f"z{d}"] for d in range(10)])
    net = models.edits(models.open_model(next(e for e in ckpt.list_models() if e.name == "dsprites-vae")))[0]["posX"]
    assert np.abs(after - apply_edit(net, before, 30)).max() <= 0.05 + 1e-6 and np.abs(after - before).max() > 0.1
