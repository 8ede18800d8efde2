"""The live-drag component's Python side under AppTest: when Explore uses it, when it falls back and says why,
and the gzipped decoder it derives from the weights and serves."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import live
from vae_core.checkpoints import MODELS_ENV, CheckpointError, load_model
from vae_core.export import DECODER_ONNX, decoder_onnx_bytes, export_decoder, weights_digest

from .app_fixtures import make_model
from .test_app import open_app


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("live_app_models")
    make_model(root, "live", projection=0)
    make_model(root, "no-live", projection=0, seed=1)
    return root


pytestmark = pytest.mark.usefixtures("torch_threads_restored")


SERVED = "models_root"  # the model folders the app lists in this module (conftest.served_models)


@pytest.fixture(autouse=True)
def _an_exporter_that_fails_for_no_live(monkeypatch):
    real = live.derived_decoder

    def derived_decoder(model, folder, n=16):  # "no-live": a decoder the exporter cannot handle
        if str(folder).endswith("no-live"):
            raise CheckpointError("an operator this exporter does not know")
        return real(model, folder, n)

    monkeypatch.setattr(live, "derived_decoder", derived_decoder)


def open_explore(model: str) -> AppTest:
    return open_app("explore", model, live_drag=True)


def live_note(at: AppTest) -> str:
    return " ".join(i.value for i in at.info if "Live dragging is off" in i.value)


def test_a_model_gets_the_live_component_with_a_decoder_derived_from_its_weights(models_root):
    folder = models_root / "live"
    assert not (folder / DECODER_ONNX).exists()  # nothing shipped: derived on first use
    at = open_explore("live")
    assert not live_note(at)
    assert len(at.slider) == 0  # the component draws its own sliders
    assert at.toggle(key=live.MODE_KEY).value is True
    name, reason = live._published(str(folder), 0.0)
    assert reason is None and name.endswith(".onnx.gz")
    served = gzip.decompress((live.serve_dir() / name).read_bytes())
    assert served == decoder_onnx_bytes(load_model(folder).model, weights_digest(folder))
    assert not (folder / DECODER_ONNX).exists()  # the model folder is not written to
    # switched off: the server sliders, at the same point
    at.toggle(key=live.MODE_KEY).set_value(False).run()
    assert not at.exception
    assert len(at.slider) == 4 and not live_note(at)


def test_a_decoder_that_cannot_be_exported_says_why_and_keeps_the_sliders():
    at = open_explore("no-live")
    assert "could not be exported for the browser (an operator this exporter does not know)" in live_note(at)
    assert len(at.slider) == 4


@pytest.mark.parametrize("planted", ["stale", "forged"])
def test_a_folder_s_own_decoder_onnx_is_never_served(models_root, tmp_path, monkeypatch, planted):
    """A stale export, or another graph under this folder's metadata and weights hash: the app serves what it
    derives from the weights, whatever file the folder holds."""
    import onnx

    folder = make_model(tmp_path, planted, projection=0, seed=1)
    other = make_model(tmp_path / "elsewhere", "other", projection=0, seed=2)
    export_decoder(other)
    proto = onnx.load_from_string((other / DECODER_ONNX).read_bytes())
    if planted == "forged":
        for prop in proto.metadata_props:
            if prop.key == "weights_sha256":
                prop.value = weights_digest(folder)
    (folder / DECODER_ONNX).write_bytes(proto.SerializeToString())
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    at = open_explore(planted)
    assert not live_note(at) and len(at.slider) == 0
    name, _ = live._published(str(folder), 0.0)
    served = gzip.decompress((live.serve_dir() / name).read_bytes())
    assert served == decoder_onnx_bytes(load_model(folder).model, weights_digest(folder))
    assert served != (folder / DECODER_ONNX).read_bytes()


def test_a_failure_reported_by_the_browser_turns_the_session_to_the_server_sliders():
    at = open_explore("live")
    at.session_state[live.FAILED_KEY] = "WebAssembly is not available"
    at.run()
    assert "this browser could not decode (WebAssembly is not available)" in live_note(at)
    assert len(at.slider) == 4


def test_missing_component_files_fall_back_with_the_build_command(monkeypatch, tmp_path):
    monkeypatch.setattr(live, "ASSETS", tmp_path)
    mount, reason = live._mount()
    assert mount is None and "npm ci && npm run build" in reason and "ort-wasm-simd-threaded.wasm.gz" in reason


def test_switching_live_decoding_off_and_on_again_raises_nothing():
    """Classroom repro: the server sliders bind z0.. to the URL; switched back on, the live page must not write them."""
    at = open_explore("live")
    at.toggle(key=live.MODE_KEY).set_value(False).run()
    assert len(at.slider) == 4
    at.toggle(key=live.MODE_KEY).set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.slider) == 0
    at.run()
    assert not at.exception, at.exception
    assert {f"z{d}" for d in range(4)} <= set(at.query_params)  # the live page keeps the point in the address


def test_a_model_without_live_decoding_then_one_with_it_raises_nothing():
    at = open_explore("no-live")
    assert len(at.slider) == 4
    at.selectbox(key="model").set_value("live").run()
    assert not at.exception, at.exception
    assert len(at.slider) == 0


def test_the_served_folder_is_private_to_this_process():
    """A fixed /tmp name could be made first by anyone, who could then plant pages the app would serve."""
    folder = live.serve_dir()
    assert folder.stat().st_mode & 0o777 == 0o700 and folder.stat().st_uid == os.getuid()
    assert folder.name != f"vae-explorer-live-{os.getuid()}" and live.serve_dir() == folder


def test_every_new_runtime_gets_the_component_registered_even_at_a_reused_address(monkeypatch):
    """CI repro: AppTest starts a runtime per test; a manager created where a collected one lived (same id())
    was taken as registered and the page raised "must be declared in pyproject.toml with asset_dir"."""
    import gc

    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.runtime import Runtime

    holder = type("FakeRuntime", (), {})()
    monkeypatch.setattr(Runtime, "instance", classmethod(lambda cls: holder))
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: True))
    seen = set()
    for _ in range(20):
        holder.bidi_component_registry = BidiComponentManager()
        seen.add(id(holder.bidi_component_registry))
        mount, reason = live._mount()
        assert mount is not None, reason
        assert holder.bidi_component_registry.get_component_asset_root(live.COMPONENT) is not None
        del holder.bidi_component_registry
        gc.collect()
    assert len(seen) < 20  # addresses were reused, so the test exercised the case it is about


def test_an_exporter_that_crashes_falls_back_with_a_note(monkeypatch):
    def crash(model, folder, n=16):
        raise RuntimeError("an internal error deep in the exporter")

    monkeypatch.setattr(live, "derived_decoder", crash)
    live._published.clear()
    at = open_explore("live")
    assert "the exporter failed on this network" in live_note(at) and "RuntimeError" not in live_note(at)
    assert len(at.slider) == 4
    live._published.clear()


@pytest.mark.parametrize("sent", [[float("nan")] * 4, ["1", "2", "3", "4"], [1e308 * 10] * 4, [10**400] * 4,
                                  [1.0, 2.0], [0.5] * 10**6, [[1.0], [2.0], [3.0], [4.0]], "not json", None,
                                  {"z": [1, 2, 3, 4]}, [True, False, True, False]])
def test_a_released_point_that_is_not_a_point_is_dropped(sent, monkeypatch):
    """Hostile round 3: NaN, strings, huge or nested values, the wrong length or 10^6 values from the live
    component (or a client posing as it) raised tracebacks in app/live.py and app/state.set_point."""
    import types

    from app import state

    assert state.as_point(sent, 4) is None
    session = {live.KEY: {"z": {"z": sent}, "failed": None}, "z0": 0.5, "z1": 0.0, "z2": 0.0, "z3": 0.0}
    fake = types.SimpleNamespace(session_state=session)
    monkeypatch.setattr(live, "st", fake)
    monkeypatch.setattr(state, "st", fake)
    live._apply_release(np.full(4, 4.0))  # the component's callback: nothing raised, nothing moved
    assert [session[f"z{d}"] for d in range(4)] == [0.5, 0.0, 0.0, 0.0]
    session[live.KEY] = {"z": {"z": [1, 2.5, -1, 0]}}
    live._apply_release(np.full(4, 4.0))
    assert [session[f"z{d}"] for d in range(4)] == [1.0, 2.5, -1.0, 0.0]  # a point is taken
