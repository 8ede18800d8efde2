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
| `starlette_app.create_upload_routes`, `MemoryUploadedFileManager._lock` and `.file_storage` | `server.maxUploadSize` caps one file, not the bytes a session or the server holds; its early check counts the multipart framing, so a file of exactly the limit was refused |
| `WebsocketSessionManager.disconnect_session` | a closed tab's session waits for a reconnection and is then forgotten without its uploads being removed: they stayed in memory for good |
| `data-testid` attributes (`stImage`, `stFileChip`, ...) in the app's CSS | the page's look: a frame around pictures, refused upload chips hidden (browser tests) |
"""

from __future__ import annotations

import inspect
import logging
import re
import uuid

from vae_core.upload_quota import UploadPace, UploadQuota

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


_quota: UploadQuota | None = None  # set by cap_uploads, in the server's process
_FILENAME = re.compile(rb'filename="([^"\\\r\n]{0,200})"')
_FRAMING_BYTES = 1024 * 1024  # a multipart body's boundaries and headers around the file: far less than this


def cap_uploads(**caps) -> None:
    """Cap the bytes a session and the server hold in uploads (vae_core.upload_quota; `caps` its keywords), and
    drop a session's uploads when its tab goes; large uploads are taken in at a pace (UploadPace). A file over a
    cap is read and forgotten: an empty file named as it was is held in its place, and the page says why
    (`upload_refusal`); the browser's chip would only say "413". A file of exactly `server.maxUploadSize` is accepted (Streamlit's early check counted the framing).
    Called before the server starts; raises InternalMoved when a piece is not where it was."""
    try:
        from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
        from streamlit.runtime.websocket_session_manager import WebsocketSessionManager
        from streamlit.web.server.starlette import starlette_app

        make_routes = starlette_app.create_upload_routes
        disconnect = WebsocketSessionManager.disconnect_session
        from streamlit.runtime.state.session_state import SessionState

        probe = MemoryUploadedFileManager("/probe")
        with probe._lock:
            probe.file_storage.get("")
        SessionState()._old_state.values(), SessionState()._new_widget_state.states.values()
        if "self._active_session_info_by_id" not in inspect.getsource(WebsocketSessionManager.__init__):
            raise AttributeError("WebsocketSessionManager._active_session_info_by_id")
    except (ImportError, AttributeError, TypeError) as exc:
        raise _moved("the upload routes and the uploaded-file manager", exc) from None
    make_routes = getattr(make_routes, "streamlits", make_routes)  # called again: the caps given last hold
    disconnect = getattr(disconnect, "streamlits", disconnect)

    def create_upload_routes(runtime, manager, base_url):
        return _capped(make_routes(runtime, manager, base_url), runtime, manager, caps)

    create_upload_routes.streamlits = make_routes
    starlette_app.create_upload_routes = create_upload_routes
    WebsocketSessionManager.disconnect_session = _dropping_uploads(disconnect)


def _holdings(manager):
    def holdings(who: str) -> tuple[int, int, int]:
        with manager._lock:
            mine = manager.file_storage.get(who, {})
            return (sum(len(f.data) for f in mine.values()), len(mine),
                    sum(len(f.data) for files in manager.file_storage.values() for f in files.values()))
    return holdings


def _capped(routes: list, runtime, manager, caps: dict) -> list:
    """Streamlit's upload routes with its PUT behind the quota."""
    global _quota
    from starlette.routing import Route

    _quota = UploadQuota(_holdings(manager), **caps)
    put = [r for r in routes if isinstance(r, Route) and "PUT" in (r.methods or ())]
    if len(put) != 1:
        raise _moved("the upload PUT route", LookupError(f"{len(put)} PUT routes"))
    capped = Route(put[0].path, _capped_put(put[0].endpoint, runtime, manager, _quota, UploadPace()), methods=["PUT"])
    return [capped if r is put[0] else r for r in routes]


def _capped_put(endpoint, runtime, manager, quota: UploadQuota, pace: UploadPace):
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from streamlit import config

    async def put(request: Request):
        who, file_id = request.path_params["session_id"], request.path_params["file_id"]
        limit = config.get_option("server.maxUploadSize") * 1024 * 1024 + _FRAMING_BYTES
        try:
            need = int(request.headers.get("content-length") or limit)
        except ValueError:
            raise HTTPException(status_code=400, detail="Invalid Content-Length header") from None
        if need > limit:
            raise HTTPException(status_code=413, detail="File too large")
        if quota.holdings(who)[1] >= quota.session_files:
            raise HTTPException(status_code=413, detail="Too many files in this session")
        refusal = quota.reserve(who, need)
        receive = request.receive if need <= quota.small_bytes else _paced(request.receive, pace)
        # Streamlit's handler checks the XSRF token and the session, reads the body under its own cap and holds
        # the file; it sees no Content-Length, so the file's own size is what it checks against the limit
        headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-length"]
        if refusal is None:
            try:
                response = await endpoint(Request({**request.scope, "headers": headers}, receive))
            finally:
                quota.release(who, need)
        else:  # read and forget the bytes; an empty file of the same name stands in for them
            name, received = b"upload", 0
            async for chunk in Request(request.scope, receive).stream():
                if not received:
                    name = (_FILENAME.search(chunk[:4096]) or [None, name])[1]
                received += len(chunk)
                if received > limit:
                    raise HTTPException(status_code=413, detail="File too large")
            boundary = uuid.uuid4().hex.encode()
            body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="' + name
                    + b'"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--' + boundary + b"--\r\n")
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            headers.append((b"content-type", b"multipart/form-data; boundary=" + boundary))
            response = await endpoint(Request({**request.scope, "headers": headers}, _once(body)))
            quota.refuse(who, file_id, refusal)
        if not runtime.is_active_session(who):  # the tab went while its file arrived
            manager.remove_session_files(who)
            quota.forget(who)
        return response

    return put


def _paced(receive, pace):
    """`receive` holding each part of the body as long as `pace` (UploadPace) says."""
    import asyncio

    async def paced() -> dict:
        message = await receive()
        wait = pace.wait(len(message.get("body", b"")))
        if wait > 0:
            await asyncio.sleep(wait)
        return message

    return paced


def _once(body: bytes):
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _dropping_uploads(disconnect):
    def disconnect_session(self, session_id: str) -> None:
        active = self._active_session_info_by_id.get(session_id)
        disconnect(self, session_id)
        from streamlit.runtime import Runtime

        Runtime.instance().uploaded_file_mgr.remove_session_files(session_id)
        if _quota is not None:
            _quota.forget(session_id)
        if active is not None:  # kept two minutes for a reconnection: its uploaders' values still held the bytes
            _empty_uploaded_files(active.session._session_state)

    disconnect_session.streamlits = disconnect
    return disconnect_session


def _empty_uploaded_files(state) -> None:
    """Empty every uploaded file a session's widget values hold (a reconnected page asks for its files afresh,
    and finds them gone)."""
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    values = [*state._old_state.values(), *(getattr(w, "value", None) for w in state._new_widget_state.states.values())]
    for value in values:
        for file in value if isinstance(value, list) else [value]:
            if isinstance(file, UploadedFile):
                file.seek(0)
                file.truncate(0)  # the file no longer shares the upload's bytes


def upload_refusal(file_id: str) -> str | None:
    """Why the server did not keep this upload of the running session (cap_uploads), or None."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if _quota is None or ctx is None else _quota.refusal(ctx.session_id, file_id)


def drop_uploads(file_ids) -> None:
    """Forget these files of the running session (an uploader's files it no longer shows)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return
    for file_id in file_ids:
        ctx.uploaded_file_mgr.remove_file(ctx.session_id, file_id)
    if _quota is not None:
        _quota.forget(ctx.session_id, set(file_ids))


def session_id() -> str | None:
    """The running session's id (who an upload's decode is for), or None outside a page."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


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
