"""A classroom at once: the real app (as `make app` starts it) and 30 websocket sessions that move sliders and upload
photos (and bad files) for a minute on loopback; then scripts that upload without deleting, and slow-to-decode
files beside ordinary uploads (tests/artifacts/upload_load_report.json: the server's peak, p50 and p95). Writes tests/artifacts/load_report.json: response times (p50,
p95, max) per kind of action, errors, and the server's memory before, during and after.

Slow (about 90 s): run with `make test-all` or `pytest -m slow tests/test_load.py`. LOAD_SESSIONS, LOAD_SECONDS
and LOAD_P95_LIMIT_S change the size and the bar (the issue's target: p95 at most 1 s on a 2-core machine).
A tenth of the actions are a visit to another page and back (mixed traffic; LOAD_PAGE_SHARE sets the share, 0 for
sliders and uploads only). Measured on 2026-12-03 beside a training run, 30 sessions: interactions p95 2.04 s
before, 0.51 s after the server stopped collecting garbage after every run and a CVAE's picture and condition
strip became one pass of its decoder (server peak 831 MB).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from vae_core.checkpoints import MODELS_ENV

from .app_fixtures import running_app
from .load_clients import file_session, flood_session, run_sessions, slow_gif, small_png, summarise

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT = ROOT / "tests" / "artifacts" / "load_report.json"
SESSIONS = int(os.environ.get("LOAD_SESSIONS", "30"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
P95_LIMIT_S = float(os.environ.get("LOAD_P95_LIMIT_S", "1.0"))
PAGE_SHARE = float(os.environ.get("LOAD_PAGE_SHARE", "0.1"))  # share of actions that visit another page and back
# A model whose sliders decode on the server (a CVAE's decoder also takes the condition, so it never runs in the
# browser): with live dragging every move would stay in the browser and the server would see only releases.
QUERY = "model=dsprites-cvae"

pytestmark = pytest.mark.slow


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.fixture
def server(tmp_path):
    """The app, started as `make app` starts it, on a free port: (port, pid, log path)."""
    log = tmp_path / "server.log"
    with running_app(log, {"OMP_NUM_THREADS": "1", MODELS_ENV: ""}) as (base, pid):
        yield int(base.rsplit(":", 1)[1]), pid, log


def test_thirty_sessions_for_a_minute(server):
    port, pid, log = server
    memory = {"started_mb": round(_rss_mb(pid), 1)}
    warm = summarise(asyncio.run(run_sessions(port, 1, 3.0, query=QUERY, stagger=0)))  # loads the model: once per process
    memory["after_one_session_mb"] = round(_rss_mb(pid), 1)
    samples = []

    async def sample_memory(stop: asyncio.Event):
        t0 = time.perf_counter()
        while not stop.is_set():
            samples.append((round(time.perf_counter() - t0, 1), round(_rss_mb(pid), 1)))
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
            except TimeoutError:
                pass

    async def load():
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_memory(stop))
        sessions = await run_sessions(port, SESSIONS, SECONDS, query=QUERY, page_share=PAGE_SHARE)
        stop.set()
        await sampler
        return sessions

    started = time.perf_counter()
    sessions = asyncio.run(load())
    wall = time.perf_counter() - started
    memory["after_load_mb"] = round(_rss_mb(pid), 1)
    time.sleep(3)
    memory["after_disconnect_mb"] = round(_rss_mb(pid), 1)
    memory["peak_during_load_mb"] = max(m for _, m in samples)
    report = summarise(sessions)
    requests = report["interactions"]["n"]
    second_half = [m for t, m in samples if t >= wall / 2]
    first_half = [m for t, m in samples if t < wall / 2]
    memory["growth_second_half_mb"] = round(max(second_half) - max(first_half), 1)
    memory["growth_per_request_kb"] = round((memory["after_load_mb"] - memory["after_one_session_mb"]) * 1024
                                            / max(requests, 1), 1)
    report.update(seconds=SECONDS, wall_s=round(wall, 1), throughput_per_s=round(requests / wall, 2),
                  warm_up=warm["by_kind"], memory=memory, memory_samples=samples, cpus=os.cpu_count(),
                  load_average=os.getloadavg(), p95_limit_s=P95_LIMIT_S)
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(report, indent=2) + "\n")
    server_log = log.read_text()
    assert "Traceback" not in server_log, server_log[-3000:]
    assert report["error_count"] == 0, report["errors"]
    # every session asked for connected, loaded the page (its sliders drawn), then moved a slider or uploaded
    driven = [s for s in sessions
              if s.latencies["load"] and s.sliders and (s.latencies["slider"] or s.latencies["upload"])]
    assert len(sessions) == len(driven) == SESSIONS, f"{len(driven)} of {len(sessions)} sessions driven"
    assert report["by_kind"]["slider"]["n"] >= SESSIONS * 5 and report["images_uploaded"] >= SESSIONS // 2
    assert report["by_kind"]["page"]["n"] >= (SESSIONS if PAGE_SHARE else 0)
    # memory: bounded, and not growing with requests once every session is open
    assert memory["peak_during_load_mb"] < 1024  # the whole server within 1 GB (#19)
    assert memory["peak_during_load_mb"] < memory["after_one_session_mb"] + 600
    assert memory["growth_second_half_mb"] < 100
    assert report["interactions"]["p95_s"] <= P95_LIMIT_S, report["by_kind"]


UPLOAD_ARTIFACT = ROOT / "tests" / "artifacts" / "upload_load_report.json"
UPLOAD_SECONDS = float(os.environ.get("LOAD_UPLOAD_SECONDS", "30"))
SERVER_LIMIT_MB = 1536  # the bar: the server under 1.5 GB whatever 30 scripted sessions upload
ORDINARY_P95_S = float(os.environ.get("LOAD_UPLOAD_P95_S", "0.5"))  # the bar beside 20 slow sessions


def _record(name: str, figures: dict) -> None:
    report = json.loads(UPLOAD_ARTIFACT.read_text()) if UPLOAD_ARTIFACT.exists() else {}
    report[name] = figures
    UPLOAD_ARTIFACT.parent.mkdir(exist_ok=True)
    UPLOAD_ARTIFACT.write_text(json.dumps(report, indent=2) + "\n")


def _with_peak(pid: int, sessions) -> tuple[list, float]:
    """Run the sessions' coroutines at once, sampling the server's memory every quarter second: (sessions, peak MB)."""
    peak = [_rss_mb(pid)]

    async def run():
        stop = asyncio.Event()

        async def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], _rss_mb(pid))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        done = await asyncio.gather(*sessions)
        stop.set()
        await sampler
        return done

    return asyncio.run(run()), round(peak[0], 1)


def test_thirty_sessions_uploading_without_deleting(server):
    """30 scripts PUTting 19.99 MB files one after another, never deleting one (a quarter shown on the page):
    the server stays under 1.5 GB, and gives the memory back once they leave (main: 8.7 GB, kept)."""
    port, pid, log = server
    asyncio.run(run_sessions(port, 1, 3.0, query=QUERY, stagger=0))
    started = _rss_mb(pid)
    sessions, peak = _with_peak(pid, [flood_session(port, UPLOAD_SECONDS, i, query=QUERY) for i in range(30)])
    time.sleep(15)  # runs still waiting for a decoder end
    after = _rss_mb(pid)
    statuses = {}
    for s in sessions:
        for status, n in s.statuses.items():
            statuses[str(status)] = statuses.get(str(status), 0) + n
    figures = {"sessions": 30, "seconds": UPLOAD_SECONDS, "started_mb": round(started, 1), "peak_mb": peak,
               "after_they_left_mb": round(after, 1), "puts": statuses,
               "shown_and_refused_with_a_message": sum(s.refused for s in sessions), "load_average": os.getloadavg()}
    _record("thirty sessions uploading without deleting", figures)
    print(json.dumps(figures))
    assert "Traceback" not in log.read_text()
    assert not [e for s in sessions for e in s.errors], [e for s in sessions for e in s.errors][:10]
    assert peak < SERVER_LIMIT_MB and after < started + 150, figures


def test_ordinary_uploads_beside_twenty_sessions_of_slow_files(server):
    """20 sessions uploading 19.8 MB GIFs of 2.6 M graphic-control blocks (over 2 s each to decode) through the
    page, one after another; 3 others upload 2 KB drawings. Main before the caps: the drawings p50 0.43 s, p95 2.6 s
    (server 4.2 GB); with them and the pace, p50 0.05 s, p95 0.24-0.43 s, the server at most 1.4 GB."""
    port, pid, log = server
    asyncio.run(run_sessions(port, 1, 3.0, query=QUERY, stagger=0))
    slow = slow_gif()
    clients = [file_session(port, UPLOAD_SECONDS, i, lambda n: (f"slow{n}.gif", slow, "image/gif"), "slow",
                            query=QUERY) for i in range(20)]
    clients += [file_session(port, UPLOAD_SECONDS, 100 + i, small_png, "upload", think=(0.5, 1.5), query=QUERY)
                for i in range(3)]
    sessions, peak = _with_peak(pid, clients)
    report = summarise(sessions)
    figures = {"ordinary_uploads": report["by_kind"]["upload"],
               "slow_uploads": len([v for s in sessions for v in s.latencies["slow"]]), "server_peak_mb": peak,
               "p95_limit_s": ORDINARY_P95_S, "load_average": os.getloadavg()}
    _record("ordinary uploads beside 20 sessions of slow files", figures)
    print(json.dumps(figures))
    assert "Traceback" not in log.read_text()
    assert report["error_count"] == 0, report["errors"]
    assert report["by_kind"]["upload"]["n"] >= 30
    assert peak < SERVER_LIMIT_MB
    assert report["by_kind"]["upload"]["p95_s"] <= ORDINARY_P95_S, figures
