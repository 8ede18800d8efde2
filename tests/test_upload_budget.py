"""What a small hostile upload may cost the server: at most 300 MB more memory and 2 s, accepted or refused; and what
a script's uploads may hold on a running server: a file of exactly the limit accepted, caps per session, files
dropped when replaced and when their session ends.

Each file is decoded in a fresh process (so its peak memory is its own), the way the app decodes uploads
(vae_core.imaging.load_rgba, then vae_core.prepare). The files are written here, apart from the project's
decoders: tiny files that claim huge or slow decodes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .app_fixtures import ROOT, ArtifactFigures

FIGURES = ArtifactFigures("upload_budget.json")
PROBE = """
import json, sys, threading, time
from vae_core.imaging import ImageError, load_rgba
from vae_core.prepare import prepare

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

data = open(sys.argv[1], "rb").read()
baseline, peak, done = rss_mb(), [0.0], threading.Event()

def watch():  # the peak of the resident memory while decoding, sampled every millisecond
    while not done.is_set():
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.001)

watcher = threading.Thread(target=watch)
watcher.start()
began = time.perf_counter()
try:
    prepare(load_rgba(data, 64), "dsprites", 64, 1)
    outcome = "accepted"
except ImageError as exc:
    outcome = "refused: " + str(exc)
seconds = time.perf_counter() - began
done.set()
watcher.join()
print(json.dumps({"seconds": seconds, "outcome": outcome, "grown_mb": max(peak[0], rss_mb()) - baseline}))
"""


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _strip_with_palette_transparency(width: int) -> bytes:
    """A 1 x `width` palette PNG with a transparent entry: compresses to almost nothing."""
    ihdr = width.to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([8, 3, 0, 0, 0])
    rows = zlib.compress(b"\x00" + bytes(width), 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"PLTE", bytes(3 * 2))
            + _png_chunk(b"tRNS", b"\x00\xff") + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b""))


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def _hostile() -> dict[str, bytes]:
    small_jpeg = _encoded(Image.new("RGB", (64, 64), (200, 100, 50)), "JPEG", progressive=True)
    sos = small_jpeg.find(b"\xff\xda")
    png = _encoded(Image.new("L", (64, 64), 128), "PNG")
    return {
        "1 x 40 M palette with transparency (PNG)": _strip_with_palette_transparency(40_000_000),
        "6000 x 6000 palette with transparency (GIF)": _encoded(
            Image.new("P", (6000, 6000), 0), "GIF", transparency=0),
        "6000 x 6000 16-bit grey (PNG)": _encoded(Image.new("I;16", (6000, 6000), 300), "PNG"),
        "a JPEG of 20,000 scans": small_jpeg[:sos] + small_jpeg[sos:-2] * 1 + b"\xff\xda\x00\x02" * 20_000
        + b"\xff\xd9",
        "a JPEG of 2 M empty comments": small_jpeg[:2] + b"\xff\xfe\x00\x02" * 2_000_000 + small_jpeg[2:],
        "a PNG of 1.5 M empty chunks": png[:33] + _png_chunk(b"tEXt", b"") * 1_500_000 + png[33:],
        "a 20 MP RGB PNG": _encoded(Image.new("RGB", (5000, 4000), (10, 200, 30)), "PNG"),
    }


@pytest.mark.parametrize("name", list(_hostile()))
def test_a_hostile_upload_costs_at_most_300_mb_and_2_s(name, tmp_path):
    data = _hostile()[name]
    assert len(data) < 20 * 1024 * 1024
    path = tmp_path / "upload"
    path.write_bytes(data)
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    FIGURES.record(name, {"file_kb": round(len(data) / 1024), **{k: round(v, 3) if isinstance(v, float) else v
                                                                for k, v in figures.items()}})
    assert figures["grown_mb"] <= 300 and figures["seconds"] <= 2.0, figures


def test_the_server_caps_uploads_itself(tmp_path):
    """The browser's 20 MB check can be skipped by any client: the server's own cap, which the serve command gives
    Streamlit on its command line (app.serve.SERVER_OPTIONS), from whatever folder it starts."""
    code = ("import sys, streamlit.web.cli as cli, streamlit.config as c\n"
            "from app import serve\n"
            "cli.main = lambda: None\n"
            "serve.warm_up = lambda: None\n"
            "serve.main(['--server.port', '8599'])\n"
            "args = sys.argv[3:]\n"
            "flags = {args[i][2:]: args[i + 1] for i in range(0, len(args), 2)}\n"
            "c.get_config_options(force_reparse=True, options_from_flags=flags)\n"
            "print(c.get_option('server.maxUploadSize'), c.get_option('server.port'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip().splitlines()[-1] == "20 8599"


# --- What uploads may hold on a running server (app.streamlit_internals.cap_uploads, vae_core.upload_quota) ---

QUERY = "model=dsprites-cvae"  # a page whose sliders and pictures come from the server (tests/load_clients)
NEAR_LIMIT = 19_990_000  # bytes: the largest uploads a script sends


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """The app as `make app` starts it: (port, pid)."""
    from vae_core.checkpoints import MODELS_ENV

    from .app_fixtures import running_app

    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_app(log, {"OMP_NUM_THREADS": "1", MODELS_ENV: ""}) as (base, pid):
        yield int(base.rsplit(":", 1)[1]), pid
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _in_session(port: int, work):
    """Run `await work(session, ws)` in one session that opened the page; returns (session, work's result)."""
    import asyncio

    from .load_clients import _opened

    result = {}

    async def run(session, ws):
        result["value"] = await work(session, ws)

    session = asyncio.run(_opened(port, QUERY, 0, run))
    assert not session.errors, session.errors
    return session, result.get("value")


def test_a_file_of_exactly_the_size_limit_is_accepted(app_server):
    """The server's early check compared the whole request (the file and its multipart framing) with the limit:
    a file of exactly 20 MiB was refused with the connection closed under it."""
    port, _ = app_server
    _, upload = _in_session(port, lambda s, ws: s.put_file(ws, "exact.png", bytes(20 * 1024 * 1024)))
    assert upload["status"] == 204
    _, over = _in_session(port, lambda s, ws: s.put_file(ws, "over.png", bytes(20 * 1024 * 1024 + 1)))
    assert over["status"] in (0, 413)


def test_a_session_past_its_cap_is_told_and_the_server_keeps_nothing_more(app_server):
    """A script PUTting 19.99 MB files without deleting them: beyond the session's cap, each is read and
    forgotten, and the page says why when the file is shown (on main the server grew by 20 MB a file)."""
    port, pid = app_server

    async def flood(session, ws):
        before = _rss_mb(pid)
        statuses = [(await session.put_file(ws, f"f{i}.png", np.random.default_rng(i).bytes(NEAR_LIMIT)))["status"]
                    for i in range(8)]
        grown = _rss_mb(pid) - before
        await session.upload(ws, 0, file=("shown.png", bytes(NEAR_LIMIT), "image/png"))
        return statuses, grown, list(session.texts)

    session, (statuses, grown, _) = _in_session(port, flood)
    assert statuses == [204] * 8
    assert grown < 3 * NEAR_LIMIT / 2**20 + 40, grown  # three files fit the 64 MB cap; the others are not held
    assert [a for a in session.alerts if a.startswith("shown.png: not kept: your uploads on this page")]
    FIGURES.record("a session PUTting 8 x 19.99 MB", {"server_grew_mb": round(grown, 1)})


def test_a_sessions_uploads_are_dropped_when_it_ends(app_server):
    port, pid = app_server
    before = _rss_mb(pid)

    async def put_three(session, ws):
        for i in range(3):
            await session.put_file(ws, f"f{i}.png", np.random.default_rng(i).bytes(NEAR_LIMIT))
        return _rss_mb(pid)

    _, holding = _in_session(port, put_three)
    time.sleep(2)
    after = _rss_mb(pid)
    FIGURES.record("a session holding 3 x 19.99 MB, then gone", {
        "holding_mb": round(holding - before, 1), "after_mb": round(after - before, 1)})
    assert holding - before > 40 and after - before < 25, (holding - before, after - before)


def test_files_replaced_on_the_page_are_dropped(app_server):
    """A script uploading through the page again and again without deleting (a browser deletes a replaced
    file itself): only the file shown is kept."""
    port, pid = app_server

    async def replace(session, ws):
        before = _rss_mb(pid)
        for i in range(6):
            await session.upload(ws, 0, file=(f"r{i}.png", np.random.default_rng(i).bytes(NEAR_LIMIT), "image/png"))
        return _rss_mb(pid) - before, session.refused

    session, (grown, messages) = _in_session(port, replace)
    FIGURES.record("6 x 19.99 MB shown one after another", {"server_grew_mb": round(grown, 1)})
    assert grown < 2 * NEAR_LIMIT / 2**20 + 25, grown
    assert messages == 6  # each refused as not an image, none as over a cap
    assert not [a for a in session.alerts if "not kept" in a], session.alerts


def test_the_caps_wrap_the_installed_streamlits_upload_route(monkeypatch):
    """app.streamlit_internals.cap_uploads against the installed Streamlit: its PUT route is the capped one, its
    other routes are Streamlit's; a Streamlit without the route's maker refuses to start, naming it."""
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.websocket_session_manager import WebsocketSessionManager
    from streamlit.web.server.starlette import starlette_app

    from app import streamlit_internals

    monkeypatch.setattr(starlette_app, "create_upload_routes", starlette_app.create_upload_routes)
    monkeypatch.setattr(WebsocketSessionManager, "disconnect_session", WebsocketSessionManager.disconnect_session)
    monkeypatch.setattr(streamlit_internals, "_quota", None)
    streamlit_internals.cap_uploads(session_bytes=10)
    routes = starlette_app.create_upload_routes(object(), MemoryUploadedFileManager("/up"), "")
    makers = {method: r.endpoint.__qualname__.split(".")[0] for r in routes for method in r.methods}
    assert makers == {"PUT": "_capped_put", "DELETE": "create_upload_routes", "OPTIONS": "create_upload_routes"}
    assert streamlit_internals._quota.session_bytes == 10
    monkeypatch.delattr(starlette_app, "create_upload_routes")
    with pytest.raises(streamlit_internals.InternalMoved, match="upload routes"):
        streamlit_internals.cap_uploads()


def test_large_uploads_are_taken_in_at_a_pace_all_together():
    """UploadPace: after its burst, the bytes of all large uploads are booked one after another at its rate,
    and a quiet moment gives the burst back."""
    from vae_core.upload_quota import UploadPace

    now = [0.0]
    pace = UploadPace(bytes_per_s=10.0, burst=20.0, clock=lambda: now[0])
    assert [pace.wait(10) for _ in range(2)] == [0.0, 0.0]  # within the burst
    assert pace.wait(10) == pytest.approx(1.0)  # then at 10 bytes a second, whoever sends them
    assert pace.wait(10) == pytest.approx(2.0)
    now[0] = 2.0
    assert pace.wait(5) == pytest.approx(0.5)  # booked after what is still waiting
    now[0] = 100.0
    assert pace.wait(20) == 0.0  # after a quiet while, a burst again


def test_the_server_paces_a_scripts_large_uploads(app_server):
    """Five 19.99 MB PUTs from one script (two beyond its cap, read and forgotten) take at least their bytes at
    the server's pace: on the same machine, unpaced, they arrived at about 400 MB/s."""
    from vae_core.upload_quota import LARGE_UPLOAD_BYTES_PER_S, PACE_BURST_BYTES

    port, _ = app_server

    async def five(session, ws):
        began = time.perf_counter()
        statuses = [(await session.put_file(ws, f"p{i}.png", bytes(NEAR_LIMIT)))["status"] for i in range(5)]
        return statuses, time.perf_counter() - began

    _, (statuses, seconds) = _in_session(port, five)
    assert statuses == [204] * 5
    assert seconds >= (5 * NEAR_LIMIT - PACE_BURST_BYTES) / LARGE_UPLOAD_BYTES_PER_S * 0.95, seconds
    FIGURES.record("five 19.99 MB PUTs from one script", {"seconds": round(seconds, 2)})
