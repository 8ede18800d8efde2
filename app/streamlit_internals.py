"""Every part of Streamlit's internals the app relies on, in one module, each where no public API does the job.

An upgrade of Streamlit may move any of them. None is wrapped in a silent fallback that would drop a protection:
`tests/test_streamlit_internals.py` checks each against the installed Streamlit and fails naming the one that
moved, and pyproject.toml caps Streamlit at the versions those tests passed on (1.67). Where the app can live
without one (a component it cannot register), the page says so in words; where a protection depends on one (the
clear-cache message), the process refuses to start without it.

| internal | why no public API does it |
| --- | --- |
| `AppSession._handle_clear_cache_request` | Streamlit clears every cache of the process for any client that sends "clear_cache"; no option turns that off |
| `Runtime.instance().bidi_component_registry.register_from_manifest` | a v2 component's files are served from an installed package's manifest; the app is not installed as one |
| `Runtime.exists()`, `Runtime.instance().state` | the launch warm-up waits for the runtime whose caches it fills |
| the logger `streamlit.runtime.scriptrunner_utils.script_run_context` | its "missing ScriptRunContext" warning for the warm-up thread's cached calls |
| `starlette_app.create_metrics_routes` | `/_stcore/metrics` tells anyone the caches' names and sizes and the session count; no option closes it |
| `data-testid` attributes (`stImage`, `stFileChip`, ...) in the app's CSS | the page's look: a frame around pictures, refused upload chips hidden (browser tests) |
"""

from __future__ import annotations

import logging

TESTED = "1.51 to 1.67"  # the Streamlit versions tests/test_streamlit_internals.py passed on
SCRIPT_RUN_CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


class InternalMoved(RuntimeError):
    """A Streamlit internal the app relies on is not where it was; the message names it."""


def _moved(what: str, exc: Exception) -> InternalMoved:
    import streamlit

    return InternalMoved(f"Streamlit {streamlit.__version__}: {what} has moved ({type(exc).__name__}: {exc}); the "
                         f"app was tested with Streamlit {TESTED} (app/streamlit_internals.py)")


def protect_shared_caches() -> None:
    """Streamlit answers a websocket client's "clear_cache" message by clearing every cache of the process, for
    every session: any visitor could make 30 others reload their models and re-encode their data samples
    (measured p95 24 s). After this, that message clears only the sender's own session state. Raises
    InternalMoved when the handler is not there to replace (the protection would silently be gone)."""
    try:
        from streamlit.runtime.app_session import AppSession

        AppSession._handle_clear_cache_request  # noqa: B018  must exist: the message handler calls it by this name
    except (ImportError, AttributeError) as exc:
        raise _moved("AppSession._handle_clear_cache_request", exc) from None
    AppSession._handle_clear_cache_request = _clear_own_session


def close_metrics_endpoint() -> None:
    """Serve no `/_stcore/metrics` (a classroom server's caches and sessions are nobody's business). Called before
    the server starts; raises InternalMoved when the route's maker is not where it was."""
    try:
        from streamlit.web.server.starlette import starlette_app

        starlette_app.create_metrics_routes  # noqa: B018  the app's route list is built by calling it
    except (ImportError, AttributeError) as exc:
        raise _moved("starlette_app.create_metrics_routes", exc) from None
    starlette_app.create_metrics_routes = lambda runtime, base_url: []


def _clear_own_session(session) -> None:
    session._session_state.clear()


def register_component_folders(project: str, folders: dict) -> None:
    """Serve each folder (served name -> Path) as an asset folder of the v2 component package `project`."""
    try:
        from streamlit.components.v2.manifest_scanner import ComponentConfig, ComponentManifest
        from streamlit.runtime import Runtime

        manager = Runtime.instance().bidi_component_registry
    except (ImportError, AttributeError, RuntimeError) as exc:
        raise _moved("the components-v2 manifest registry", exc) from None
    for served, folder in folders.items():
        manager.register_from_manifest(ComponentManifest(project, "1", [ComponentConfig(served, asset_dir=folder.name)]),
                                       folder.parent)


def component_registry():
    """The runtime's components-v2 registry (one per runtime): what a registration is kept against."""
    from streamlit.runtime import Runtime

    return Runtime.instance().bidi_component_registry


def runtime_started() -> bool:
    """Whether Streamlit's runtime exists and has left its initial state (its caches can be filled)."""
    from streamlit.runtime import Runtime, RuntimeState

    return Runtime.exists() and Runtime.instance().state is not RuntimeState.INITIAL


def quiet_thread_warnings(thread_name: str) -> None:
    """Silence Streamlit's "missing ScriptRunContext" warning for one thread (the launch warm-up calls the pages'
    cached functions outside any page, on purpose)."""

    class _Quiet(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return record.threadName != thread_name

    logging.getLogger(SCRIPT_RUN_CONTEXT_LOGGER).addFilter(_Quiet())
