"""`make app` and `vae-explorer serve`: `python -m app.serve [--model PKG.MODULE:FUNCTION ...] [streamlit options]`
runs `streamlit run app/streamlit_app.py` with the server's fixed options (`SERVER_OPTIONS`, given on the command
line so they hold from whatever folder it starts) and those, and begins the first page's work once the server is up.

Streamlit runs the app's script only when a browser connects. The first visitor then waited for everything the
first page needs, one after the other, after their browser had loaded Streamlit's page: the imports (torch, pandas,
plotly: about 3 s of CPU here), the default model and its browser decoder. Here a thread does that work while the
server starts and the browser loads, through the same cached functions the page calls, so the page finds it done
(or waits for the part still running: Streamlit's caches compute a value once, whoever asks first).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "streamlit_app.py"
ROOT = SCRIPT.parent.parent
RUNTIME_WAIT_S = 60  # the warm-up's wait for Streamlit's runtime, whose caches it fills
THREAD = "vae-explorer-warm-up"
SERVER_OPTIONS = {
    # No browser opened on the server's machine (a classroom server has none), and no source watcher: it
    # re-resolves every imported module's path at each new session (measured: 20 sessions opening at once took
    # 3.9 s instead of 0.34 s). Restart the app to pick up edited code.
    "server.headless": "true",
    "server.fileWatcherType": "none",
    # The server refuses bigger uploads itself; the browser's own check (20 MB, app.widgets) is only a courtesy.
    "server.maxUploadSize": "20",
    # No full garbage collection after every script run: with 30 sessions it took a sixth of the server's CPU
    # (py-spy under the load test) and the app keeps no reference cycles that hold much; Python's own collector
    # still runs.
    "runner.postScriptGC": "false",
    "browser.gatherUsageStats": "false",
    # A classroom's viewers, not developers: no "Deploy" button (it offers to publish the app to a cloud), no rerun
    # or clear-cache entries in the menu. "viewer" keeps the viewer's options (print, theme); Streamlit's default
    # "auto" shows the developer's to anyone who opens the app on localhost.
    "client.toolbarMode": "viewer",
}


def command(port: int, address: str = "127.0.0.1") -> list[str]:
    """The server's command line, as `make app` runs it (for the tests and the browser benchmark)."""
    return [sys.executable, "-m", "app.serve", "--server.port", str(port), "--server.address", address]


def warm_up() -> None:
    """The first page's work for the default model (Explore's: the imports, the model, its slider limits, its
    decoder for the browser), and the upload decoders' worker processes, done ahead of the first visitor. It starts once the server is up: begun at launch,
    it held the interpreter while Streamlit started and served its page, and the first picture came no sooner.
    A failure here is only logged: the page does the same work and shows what went wrong."""
    from streamlit.logger import get_logger  # the server's log, at its level

    log = get_logger("vae_explorer.warm_up")
    began = time.perf_counter()
    try:
        from app.streamlit_internals import runtime_started

        deadline = time.monotonic() + RUNTIME_WAIT_S
        while not runtime_started():
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        from app import card, charts, links, live, models, state, widgets  # noqa: F401  torch; what pages share
        from vae_core import upload_worker

        models.configure_process()  # pandas and plotly; the garbage collector's freeze
        upload_worker.start_workers()  # the first uploads' decoders
        handle = state.default_handle()
        if handle is not None:
            models.limits(handle)
            live.model_file(handle)
        log.info("first page prepared at launch in %.1f s (%s)", time.perf_counter() - began,
                 handle.name if handle else "no usable model")
    except Exception as exc:  # noqa: BLE001  never stop the server; the page reports the problem itself
        log.warning("preparing the first page at launch failed (%s: %s)", type(exc).__name__, exc)


def return_freed_buffers(threshold: int = 1024 * 1024) -> bool:
    """Have glibc map every buffer over `threshold` on its own, so that it goes back to the system when freed.

    By default glibc raises that threshold to the size of the last large buffer freed (up to 32 MB): after the
    first 20 MB upload was freed, the next ones came from the heap, which the process never gave back (measured:
    still 8 GB three minutes after every session had closed). Returns False where there is no glibc."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, threshold))  # M_MMAP_THRESHOLD; setting it turns off the raising
    except (OSError, AttributeError):
        return False


def take_models(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the functions named by --model SPEC or --model=SPEC, the rest of the arguments for Streamlit)."""
    specs, rest, args = [], [], iter(argv)
    for arg in args:
        if arg == "--model":
            specs.append(next(args, ""))
        elif arg.startswith("--model="):
            specs.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return specs, rest


def main(argv: list[str] | None = None) -> None:
    from streamlit.web import cli

    from app.streamlit_internals import cap_uploads, close_metrics_endpoint, quiet_thread_warnings
    from vae_core import python_models
    from vae_core.checkpoints import missing_model_dirs

    specs, rest = take_models(sys.argv[1:] if argv is None else argv)
    if specs:  # the person starting the server named their own code: it may be imported from where they stand
        sys.path.insert(0, str(Path.cwd()))
    for spec in specs:
        try:
            python_models.register(spec)
        except ValueError as exc:
            sys.exit(f"error: {exc}")
    for path in missing_model_dirs():
        print(f"warning: $VAE_EXPLORER_MODELS names {path}, which is not a folder; no model is read from it",
              file=sys.stderr)
    quiet_thread_warnings(THREAD)  # Streamlit warns of cached calls outside a page; the warm-up makes them on purpose
    close_metrics_endpoint()
    cap_uploads()  # the bytes a session and the server hold in uploads (vae_core.upload_quota)
    return_freed_buffers()
    threading.Thread(target=warm_up, name=THREAD, daemon=True).start()
    fixed = [arg for key, value in SERVER_OPTIONS.items() for arg in (f"--{key}", value)]
    sys.argv = ["streamlit", "run", str(SCRIPT), *fixed, *rest]  # what the person gives comes last, and wins
    cli.main()


if __name__ == "__main__":
    main()
