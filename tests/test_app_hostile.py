"""The app under hostile input (AppTest): bad model folders, bad links and bad uploads give a message, never a
traceback, and the rest of the app keeps working; a model is loaded once per process, not once per session."""

from __future__ import annotations

import json
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import save as save_bytes
from streamlit.testing.v1 import AppTest

from vae_core import checkpoints as ckpt

from .app_fixtures import make_model
from .helpers import _forge, unescaped
from .test_app import open_app as open_app_at


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-models")
    make_model(root, "good", projection=0)
    pickled = make_model(root, "has-pickle", projection=0)
    (pickled / "extra.pt").write_bytes(pickle.dumps({"a": 1}))
    lying = make_model(root, "lying-header", projection=0)
    raw = (lying / ckpt.WEIGHTS_FILE).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header[next(iter(header))]["shape"] = [100_000, 100_000]
    text = json.dumps(header).encode()
    (lying / ckpt.WEIGHTS_FILE).write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    nan = make_model(root, "nan-weights", projection=0)
    state = ckpt.load_model(nan).model.state_dict()
    state[next(iter(state))].view(-1)[0] = float("nan")
    ckpt.atomic_write_bytes(nan / ckpt.WEIGHTS_FILE, save_bytes(state))
    deep = make_model(root, "deep-card", projection=0)
    (deep / ckpt.CARD_FILE).write_text("[" * 100_000 + "]" * 100_000)
    linked = make_model(root, "linked-out", projection=0)
    (linked / ckpt.WEIGHTS_FILE).unlink()
    (linked / ckpt.WEIGHTS_FILE).symlink_to("/etc/hostname")
    return root


pytestmark = pytest.mark.usefixtures("torch_threads_restored")
LIVE_MARKDOWN = re.compile(r"(?<!\\)(\]\(|!\[|<[a-z])")  # a link, an image or an HTML tag left unescaped


SERVED = "hostile_root"  # the model folders the app lists in this module (conftest.served_models)


def open_app(query: dict | None = None, page: str = "explore") -> AppTest:
    return open_app_at(page, model=None, query=query or {"model": "good"})


def test_hostile_folders_are_listed_as_unavailable_with_their_reason():
    at = open_app()
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "has-pickle" in warnings and "extra.pt: a pickle file" in warnings
    assert "deep-card" in warnings and "card.json: not valid JSON (nested too deeply)" in warnings
    options = at.sidebar.selectbox(key="model").options
    assert "good" in options and "has-pickle" not in options and "deep-card" not in options
    assert len(at.slider) == 4


@pytest.mark.parametrize("model, reason", [("lying-header", "has shape [100000, 100000]"),
                                           ("nan-weights", "holds NaN or infinite values"),
                                           ("linked-out", "outside the model folder")])
def test_folders_whose_weights_lie_say_why_and_the_others_stay_usable(model, reason):
    at = open_app({"model": model})
    assert model in at.sidebar.error[0].value and reason in unescaped(at.sidebar.error[0].value)
    assert "Choose a usable model" in at.info[0].value
    at.sidebar.selectbox(key="model").set_value("good").run()
    assert not at.exception and not at.sidebar.error and len(at.slider) == 4


@pytest.mark.parametrize("model, note", [("no-such-model", "which is not on this server"),
                                         ("has-pickle", "which cannot be used: "),
                                         ("x" * 5000, "...'")])
def test_a_link_to_a_missing_model_says_so(model, note):
    at = open_app({"model": model})
    shown = [w.value for w in at.sidebar.warning if "The link asks" in w.value]
    assert len(shown) == 1 and note in shown[0] and "Showing **" in shown[0] and len(shown[0]) < 1000
    first = at.sidebar.selectbox(key="model").value
    at.toggle(key="live_mode").set_value(False).run()  # server sliders instead of the live component
    at.slider[0].set_value(0.5).run()  # the note stays while the fallback is shown
    assert any("The link asks" in w.value for w in at.sidebar.warning)
    other = next(o for o in at.sidebar.selectbox(key="model").options if o != first)
    at.sidebar.selectbox(key="model").set_value(other).run()
    assert not at.exception and not any("The link asks" in w.value for w in at.sidebar.warning)


def test_a_link_with_bad_point_values_names_them_and_starts_them_at_zero():
    at = open_app({"model": "good", "z0": "abc", "z1": "nan", "z2": "99", "z3": "0.5", "z9": "1",
                   "z99999999999": "1"})
    note = next(w.value for w in at.main.warning if "Parts of this link were ignored" in w.value)
    for part in ("z0='abc' is not a number", "z1='nan' is not a finite number", "z2=99 is outside",
                 "z9: this model has 4 latent dimensions", "z99999999999: this model"):
        assert part in note, note
    values = {s.key: s.value for s in at.slider}
    assert values == {"z0": 0.0, "z1": 0.0, "z2": 0.0, "z3": 0.5}
    assert "z9" not in at.query_params and len(at.image) == 1


HOSTILE_UPLOADS = {
    "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "not a readable image"),
    "svg": (b"<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'/>", "not a readable image"),
    "pickle": (pickle.dumps({"a": 1}), "not a readable image"),
    "random": (np.random.default_rng(0).bytes(5000), "not a readable image"),
    "webp-header-5k": (_forge("WEBP", 5000, 5000), "5000 x 5000 pixels; the limit for WEBP is 16 million pixels"),
    "png-header-100k": (_forge("PNG", 100_000, 100_000), "the limit is 40 million pixels"),
}


@pytest.mark.parametrize("kind", list(HOSTILE_UPLOADS))
def test_hostile_uploads_show_their_message(kind):
    data, message = HOSTILE_UPLOADS[kind]
    at = open_app(page="reconstruct")
    at.radio(key="recon_src").set_value("Upload").run()
    at.file_uploader[0].set_value((f"{kind}.png", data, "image/png")).run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value and f"{kind}.png" in at.error[0].value


def test_a_model_is_loaded_once_per_process_not_per_session(hostile_root, monkeypatch):
    folder = make_model(hostile_root, "loaded-once", projection=0)
    calls = []
    real = ckpt.load_model

    def counting(path, *args, **kwargs):
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ckpt, "load_model", counting)
    sessions = [open_app({"model": folder.name}) for _ in range(3)]
    for at in sessions:
        at.slider[0].set_value(1.0).run()
        assert not at.exception
    assert calls.count("loaded-once") == 1


@pytest.mark.parametrize("model", ["[Session expired, log in](https://example.com/login)",
                                   "![](http://example.com/p.png)", "<img src=x onerror=alert(1)>"])
def test_link_text_is_shown_as_text_not_markdown(model):
    at = open_app({"model": model})
    shown = next(w.value for w in at.sidebar.warning if "The link asks" in w.value)
    assert not LIVE_MARKDOWN.search(shown) and "https://" not in shown
    assert unescaped(model)[:20] in unescaped(shown)  # the reader still sees what the link held


def test_a_folder_error_is_escaped_and_cut_short(hostile_root, tmp_path, monkeypatch):
    folder = make_model(tmp_path, "![](p.png)", projection=0)
    (folder / ckpt.CONFIG_FILE).write_text(json.dumps({"format_version": 1, "model": {"kind": "x" * 900_000}}))
    monkeypatch.setenv(ckpt.MODELS_ENV, f"{hostile_root}:{tmp_path}")
    at = open_app()
    shown = next(w.value for w in at.sidebar.warning if "is unavailable" in w.value and "p.png" in w.value)
    assert not LIVE_MARKDOWN.search(shown) and len(shown) < 1000


def test_a_model_trained_on_a_folder_shows_no_files_of_this_server(tmp_path, monkeypatch):
    folder = make_model(tmp_path, "reads-disk", projection=0)
    config = json.loads((folder / ckpt.CONFIG_FILE).read_text())
    (tmp_path / "secret").mkdir()
    from PIL import Image

    Image.new("L", (64, 64), 255).save(tmp_path / "secret" / "private.png")
    config["train"]["dataset"] = f"folder:{tmp_path / 'secret'}"
    (folder / ckpt.CONFIG_FILE).write_text(json.dumps(config))
    monkeypatch.setenv(ckpt.MODELS_ENV, str(tmp_path))
    at = open_app({"model": "reads-disk"}, page="reconstruct")
    assert not at.exception
    assert "Dataset example" not in at.radio(key="recon_src").options  # nothing of the folder is read or shown


def test_a_clients_clear_cache_message_leaves_the_shared_models_loaded(hostile_root, monkeypatch):
    """Streamlit clears every cache of the process on a websocket client's "clear_cache"; the app keeps its
    models and data caches and clears only that client's session (that the message reaches this handler is
    checked in test_streamlit_internals)."""
    from streamlit.runtime.app_session import AppSession

    from app import models, streamlit_internals

    monkeypatch.setattr(AppSession, "_handle_clear_cache_request", AppSession._handle_clear_cache_request)  # restored
    streamlit_internals.protect_shared_caches()
    entry = next(e for e in ckpt.list_models() if e.name == "good")
    before = models.open_model(entry).loaded

    class Session:
        def __init__(self):
            self._session_state = {"z0": 1.0}

    sender = Session()
    AppSession._handle_clear_cache_request(sender)
    assert sender._session_state == {}
    assert models.open_model(entry).loaded is before  # the same object: not reloaded


@pytest.mark.parametrize("names", [[{"a": 1}, "posX", "posY", "scale", "shape"], ["not", "the", "data's", "fac",
                                                                                    "tors"], {"x": 1}])
def test_a_cards_factor_names_that_are_not_the_datas_break_no_page(hostile_root, tmp_path, monkeypatch, names):
    """Hostile round 3: factor names holding a dict raised TypeError on Explore and Traversals; names the dataset
    does not have raised ValueError on Traversals (its truth sweep)."""
    import shutil

    folder = shutil.copytree(hostile_root / "good", tmp_path / "odd-names")
    card = json.loads((folder / ckpt.CARD_FILE).read_text())
    card["metrics"] = {"mi_matrix": {"factor_names": names, "matrix": np.full((5, 4), 0.5).tolist()}}
    (folder / ckpt.CARD_FILE).write_text(json.dumps(card))
    monkeypatch.setenv(ckpt.MODELS_ENV, str(tmp_path))
    for page in ("explore", "traversals", "disentanglement"):
        at = open_app_at(page, "odd-names")
        assert not at.exception, [e.value for e in at.exception]
