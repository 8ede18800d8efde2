"""A classroom at once: the real app (as `make app` starts it) and 30 websocket sessions that move sliders and upload
photos (and bad files) for a minute on loopback. Writes tests/artifacts/load_report.json: response times (p50,
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
from .load_clients import run_sessions, summarise

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
