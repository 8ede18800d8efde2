"""The Streamlit internals the app relies on (app/streamlit_internals.py), checked against the installed Streamlit:
a test here fails, naming the internal, when an upgrade moves one; pyproject.toml caps Streamlit at the versions
these passed on."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest
import streamlit

from app import streamlit_internals, widgets


def test_the_clear_cache_message_reaches_the_handler_the_app_replaces():
    from streamlit.runtime.app_session import AppSession

    dispatch = inspect.getsource(AppSession)
    assert re.search(r'msg_type == "clear_cache":\s*\n\s*self\._handle_clear_cache_request\(\)', dispatch), \
        "AppSession no longer answers clear_cache through _handle_clear_cache_request"


def test_the_protection_clears_only_the_senders_session(monkeypatch):
    from streamlit.runtime.app_session import AppSession

    monkeypatch.setattr(AppSession, "_handle_clear_cache_request", AppSession._handle_clear_cache_request)  # restored
    streamlit_internals.protect_shared_caches()
    sender = type("Session", (), {})()
    sender._session_state = {"z0": 1.0}
    AppSession._handle_clear_cache_request(sender)
    assert sender._session_state == {}


def test_a_missing_handler_stops_the_app_instead_of_dropping_the_protection(monkeypatch):
    from streamlit.runtime.app_session import AppSession

    monkeypatch.delattr(AppSession, "_handle_clear_cache_request")
    with pytest.raises(streamlit_internals.InternalMoved, match="_handle_clear_cache_request.*tested with Streamlit"):
        streamlit_internals.protect_shared_caches()


def test_the_component_registry_takes_a_manifest_as_the_app_builds_it():
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.components.v2.manifest_scanner import ComponentConfig, ComponentManifest

    assert list(inspect.signature(BidiComponentManager.register_from_manifest).parameters)[1:3] == [
        "manifest", "package_root"]
    manifest = ComponentManifest("vae_explorer", "1", [ComponentConfig("folder", asset_dir="folder")])
    assert manifest.name == "vae_explorer" and manifest.components[0].asset_dir == "folder"


def test_the_runtime_is_asked_as_the_warm_up_asks_it():
    assert streamlit_internals.runtime_started() is False  # no runtime in a test process


def test_the_warning_silenced_for_the_warm_up_comes_from_the_logger_named():
    module = importlib.import_module(streamlit_internals.SCRIPT_RUN_CONTEXT_LOGGER)
    assert module._LOGGER.name == streamlit_internals.SCRIPT_RUN_CONTEXT_LOGGER


def test_the_page_styles_name_test_ids_streamlits_frontend_still_has():
    static = Path(streamlit.__file__).parent / "static" / "static" / "js"
    bundle = "".join(p.read_text(errors="ignore") for p in static.glob("*.js"))
    styles = widgets.UPLOAD_STYLE + (Path(__file__).parent.parent / "app" / "streamlit_app.py").read_text()
    for test_id in sorted(set(re.findall(r"data-testid='(\w+)'", styles))):
        assert test_id in bundle, f"Streamlit {streamlit.__version__}'s frontend has no data-testid {test_id}"


def test_the_metrics_endpoint_is_built_by_the_route_maker_the_app_replaces(monkeypatch):
    from streamlit.web.server.starlette import starlette_app

    assert "routes.extend(create_metrics_routes(" in inspect.getsource(starlette_app)
    monkeypatch.setattr(starlette_app, "create_metrics_routes", starlette_app.create_metrics_routes)  # restored
    streamlit_internals.close_metrics_endpoint()
    assert starlette_app.create_metrics_routes(None, None) == []
