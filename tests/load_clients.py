"""Streamlit sessions without a browser: websocket clients that speak the app's protocol (BackMsg / ForwardMsg
protobufs), move sliders and upload images like a person would, and time each action from the message sent to
the server's "script finished".

Used by tests/test_load.py; `python -m tests.load_clients --port 8611 --sessions 30 --seconds 60` runs it against
an app already started (`make app PORT=8611`). Like a browser, each client takes the XSRF cookie from its first
request and echoes it with its uploads.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import re
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

# Each person's uploads go through a connection of their own, as each browser's do: asyncio's default pool has
# cpu_count + 4 threads (6 here), so 20 sessions PUTting 20 MB files queued the others' 2 KB drawings in this
# process, before the server saw them (counted in their latency: p95 1.74 s).
CONNECTIONS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="browser-connection")

XSRF_COOKIE = "_streamlit_xsrf"
FINISHED_OK = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)


def phone_photo(seed: int) -> tuple[str, bytes, str]:
    """A different picture each time (so no cache answers for the server): JPEG photos and PNG drawings."""
    rng = np.random.default_rng(seed)
    if seed % 2:
        w, h = int(rng.integers(800, 1600)), int(rng.integers(600, 1200))
        small = rng.integers(0, 255, (h // 40, w // 40, 3), dtype=np.uint8)
        image = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=85)
        return f"photo{seed}.jpg", buf.getvalue(), "image/jpeg"
    yy, xx = np.mgrid[:96, :96]
    cx, cy, r = rng.uniform(25, 70, 2).tolist() + [float(rng.uniform(8, 25))]
    disc = (((xx - cx) ** 2 + (yy - cy) ** 2) < r**2).astype(np.uint8) * 255
    buf = io.BytesIO()
    Image.fromarray(disc, "L").save(buf, format="PNG")
    return f"drawing{seed}.png", buf.getvalue(), "image/png"


def small_png(seed: int) -> tuple[str, bytes, str]:
    """An ordinary small upload: a 64 x 64 drawing of a disc with some grain, about 2 KB."""
    name, _, mime = phone_photo(seed * 2)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    disc = (((xx - 32) ** 2 + (yy - 32) ** 2) < rng.uniform(100, 500)) * 200
    grain = (rng.random((64, 64)) < 0.05) * 50
    buf = io.BytesIO()
    Image.fromarray((disc + grain).astype(np.uint8), "L").save(buf, format="PNG")
    return name, buf.getvalue(), mime


def slow_gif(blocks: int = 2_600_000) -> bytes:
    """A 16 x 16 GIF behind `blocks` empty graphic-control extensions (8 bytes each; 2.6 million: 19.8 MB, over
    3 s to decode on the development machine, the issue's slow file)."""
    buf = io.BytesIO()
    Image.new("P", (16, 16), 0).save(buf, "GIF")
    gif = buf.getvalue()
    image = gif.index(b"\x2c")
    return gif[:image] + b"\x21\xf9\x04\x00\x00\x00\x00\x00" * blocks + gif[image:]


def bad_file(seed: int) -> tuple[str, bytes, str]:
    """What else a phone sends: a truncated photo, a text file, random bytes, a header claiming a huge image."""
    kind = seed % 4
    if kind == 0:
        return f"cut{seed}.jpg", phone_photo(seed | 1)[1][:3000], "image/jpeg"
    if kind == 1:
        return f"notes{seed}.png", b"shopping list: eggs, milk\n" * 40, "image/png"
    if kind == 2:
        return f"noise{seed}.webp", np.random.default_rng(seed).bytes(4000), "image/webp"
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, format="PNG")  # 81 million pixels in about 10 KB
    return f"huge{seed}.png", buf.getvalue(), "image/png"


@dataclass
class Session:
    """One browser tab's worth of protocol."""

    base: str  # http://127.0.0.1:PORT
    query: str
    rng: random.Random
    latencies: dict = field(default_factory=lambda: {"load": [], "slider": [], "upload": [], "page": [],
                                                      "slow": []})
    errors: list = field(default_factory=list)
    session_id: str = ""
    page_hash: str = ""
    sliders: dict = field(default_factory=dict)  # widget id -> (min, max, step, value)
    fragment: str = ""
    uploader: str = ""
    images: int = 0
    xsrf: str = ""
    refusing: str = ""  # the name of a bad file being uploaded: its error message is expected
    refused: int = 0
    alerts: list = field(default_factory=list)  # every error message the page showed
    texts: list = field(default_factory=list)
    drawn_images: int = 0
    pages: dict = field(default_factory=dict)  # url path -> page script hash, from the app's navigation
    explore_hash: str = ""

    async def _send(self, ws, msg: BackMsg) -> None:
        await ws.send(msg.SerializeToString())

    async def _until_finished(self, ws, kind: str, started: float, expect: str | None = None,
                              image: bool = True) -> None:
        """Read messages until the run ends; record the widgets the page drew and any error on it, and check
        that the run drew an image (unless not `image`) and (when given) a text containing `expect`."""
        self.texts, self.drawn_images = [], 0
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await asyncio.wait_for(ws.recv(), timeout=120))
            which = fwd.WhichOneof("type")
            if which == "new_session":
                self.session_id = fwd.new_session.initialize.session_id or self.session_id
                self.page_hash = fwd.new_session.page_script_hash
            elif which == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in fwd.navigation.app_pages}
                self.page_hash = fwd.navigation.page_script_hash or self.page_hash
            elif which == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                self._element(fwd.delta.new_element, fwd.delta.fragment_id, kind)
            elif which == "script_finished":
                if fwd.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # the page asked for a rerun (a lesson choosing its model): its next run follows
                if fwd.script_finished not in FINISHED_OK:
                    self.errors.append(f"{kind}: script finished with status {fwd.script_finished}")
                if image and not self.drawn_images:
                    self.errors.append(f"{kind}: the run drew no image")
                if expect and not any(expect in t for t in self.texts):
                    self.errors.append(f"{kind}: no {expect!r} on the page")
                self.latencies[kind].append(time.perf_counter() - started)
                return

    def _element(self, element, fragment_id: str, kind: str) -> None:
        which = element.WhichOneof("type")
        if which == "slider" and re.search(r"-z\d+$", element.slider.id):
            s = element.slider
            value = list(s.value) if s.set_value else list(s.default)
            self.sliders.setdefault(s.id, (s.min, s.max, s.step, value[0] if value else 0.0))
            self.fragment = fragment_id or self.fragment
        elif which == "file_uploader" and "explore_upload" in element.file_uploader.id:
            self.uploader = element.file_uploader.id
        elif which == "imgs":
            self.drawn_images += 1
        elif which == "markdown":
            self.texts.append(element.markdown.body)
        elif which == "exception":
            self.errors.append(f"{kind}: exception {element.exception.type}: {element.exception.message[:200]}")
        elif which == "alert" and element.alert.format == 1:  # ERROR
            self.alerts.append(element.alert.body)
            if self.refusing and element.alert.body.startswith(self.refusing + ":"):
                self.refused += 1  # the bad file's own message: what should happen
            else:
                self.errors.append(f"{kind}: st.error {element.alert.body[:200]}")

    def _rerun(self, fragment: bool, upload=None) -> BackMsg:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.page_hash
        if fragment:
            state.fragment_id = self.fragment
        for wid, (_, _, _, value) in self.sliders.items():
            w = state.widget_states.widgets.add()
            w.id = wid
            w.double_array_value.data.append(value)
        if upload is not None:
            w = state.widget_states.widgets.add()
            w.id = self.uploader
            info = w.file_uploader_state_value.uploaded_file_info.add()
            info.file_id, info.name, info.size = upload["file_id"], upload["name"], upload["size"]
            info.file_urls.file_id = upload["file_id"]
            info.file_urls.upload_url = upload["upload_url"]
            info.file_urls.delete_url = upload["delete_url"]
        return msg

    async def open(self, ws) -> None:
        started = time.perf_counter()
        msg = BackMsg()
        msg.rerun_script.query_string = self.query
        await self._send(ws, msg)
        await self._until_finished(ws, "load", started)
        self.explore_hash = self.page_hash
        if not self.sliders:
            self.errors.append("load: no sliders on the page")

    async def visit_page(self, ws) -> None:
        """Switch to another page of the app and back to Explore, as a person clicking two links: each
        switch is one timed "page" run."""
        # not the lessons: a lesson opens on the model its step is about (the sidebar follows it), and this
        # person stays with the model they chose
        others = sorted(p for p in self.pages if p and p != "lesson" and self.pages[p] != self.explore_hash)
        if not others:
            self.errors.append("page: the app listed no other page")
            return
        for target in (self.rng.choice(others), None):
            msg = BackMsg()
            msg.rerun_script.query_string = self.query
            msg.rerun_script.page_script_hash = self.pages[target] if target else self.explore_hash
            started = time.perf_counter()
            await self._send(ws, msg)
            await self._until_finished(ws, "page", started, image=False)
        self.page_hash = self.explore_hash

    async def move_slider(self, ws) -> None:
        wid = self.rng.choice(sorted(self.sliders))
        low, high, step, _ = self.sliders[wid]
        value = round(round(self.rng.uniform(low, high) / step) * step, 2)
        self.sliders[wid] = (low, high, step, value)
        started = time.perf_counter()
        await self._send(ws, self._rerun(fragment=True))
        await self._until_finished(ws, "slider", started)

    async def file_urls(self, ws, name: str):
        """The server's addresses for a new file (what a browser asks for before it PUTs one)."""
        msg = BackMsg()
        msg.file_urls_request.request_id = uuid.uuid4().hex
        msg.file_urls_request.file_names.append(name)
        msg.file_urls_request.session_id = self.session_id
        await self._send(ws, msg)
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await asyncio.wait_for(ws.recv(), timeout=120))
            if fwd.WhichOneof("type") == "file_urls_response":
                return fwd.file_urls_response.file_urls[0]

    async def put_file(self, ws, name: str, data: bytes, mime: str = "image/png") -> dict:
        """PUT a file as a script would, without showing it on the page: its upload record, with the HTTP
        status (0 when the server closed the connection before answering)."""
        urls = await self.file_urls(ws, name)
        status = await asyncio.get_running_loop().run_in_executor(CONNECTIONS, self._put, urls.upload_url, name,
                                                                  data, mime)
        return {"file_id": urls.file_id, "name": name, "size": len(data), "upload_url": urls.upload_url,
                "delete_url": urls.delete_url, "status": status}

    async def upload(self, ws, seed: int, bad: bool = False, file: tuple[str, bytes, str] | None = None,
                     kind: str = "upload", ordinary: bool = False) -> None:
        """Upload a file and show it on the page (a photo, a bad file, or `file`: then its message, if any, is
        expected rather than an error, unless it is an `ordinary` image; timed as `kind`)."""
        name, data, mime = file or (bad_file(seed) if bad else phone_photo(seed))
        bad = bad or (file is not None and not ordinary)
        started = time.perf_counter()
        upload = await self.put_file(ws, name, data, mime)
        if upload["status"] not in (200, 204):
            self.errors.append(f"{kind}: HTTP {upload['status']} for {name}")
            return
        await self._send(ws, self._rerun(fragment=False, upload=upload))
        self.refusing = name if bad else ""
        before = self.refused
        await self._until_finished(ws, kind, started, expect=None if bad else f"Encoded {name}")
        self.refusing = ""
        if bad and file is None and self.refused == before:
            self.errors.append(f"upload: no message for the bad file {name}")
        self.images += not bad

    def fetch_xsrf(self) -> None:
        """The XSRF cookie a browser gets with its first request; uploads must echo it in a header."""
        with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=60) as response:
            for header in response.headers.get_all("Set-Cookie") or []:
                if header.startswith(XSRF_COOKIE + "="):
                    self.xsrf = header.split(";", 1)[0].split("=", 1)[1]

    def _put(self, url: str, name: str, data: bytes, mime: str) -> int:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        url = url if url.startswith("http") else self.base + url
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if self.xsrf:
            headers.update({"X-Xsrftoken": self.xsrf, "Cookie": f"{XSRF_COOKIE}={self.xsrf}"})
        request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, ConnectionError):  # answered (413) and closed before the body was sent
            return 0


async def run_session(port: int, query: str, seconds: float, seed: int, think: tuple[float, float],
                      upload_share: float, bad_share: float, page_share: float = 0.0) -> Session:
    """One person: open the page, then move sliders, upload images (some of them bad files) and visit other
    pages (with pauses between), until time is up."""
    async def work(session: Session, ws) -> None:
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end and session.sliders:
            await asyncio.sleep(session.rng.uniform(*think))
            roll = session.rng.random()
            if session.uploader and roll < upload_share:
                await session.upload(ws, seed * 1000 + n, bad=session.rng.random() < bad_share)
            elif roll < upload_share + page_share:
                await session.visit_page(ws)
            else:
                await session.move_slider(ws)
            n += 1

    return await _opened(port, query, seed, work)


async def _opened(port: int, query: str, seed: int, work) -> Session:
    """A session that opens the page, then does `work(session, ws)`; any failure is recorded as its error."""
    session = Session(f"http://127.0.0.1:{port}", query, random.Random(seed))
    try:
        await asyncio.to_thread(session.fetch_xsrf)
        cookie = {"Cookie": f"{XSRF_COOKIE}={session.xsrf}"} if session.xsrf else {}
        async with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                           additional_headers=cookie, max_size=2**26, open_timeout=60) as ws:
            await session.open(ws)
            await work(session, ws)
    except Exception as exc:  # noqa: BLE001  any failure of a session is an error to report, not a crash
        session.errors.append(f"session: {type(exc).__name__}: {exc}")
    return session


async def flood_session(port: int, seconds: float, seed: int, nbytes: int = 19_990_000, query: str = "",
                        show_every: int = 4) -> Session:
    """A script filling the server: PUTs files of `nbytes` one after another for `seconds`, never deleting any;
    every `show_every`-th is also shown on the page (replacing the one before). `session.statuses` counts the
    HTTP answers; the page's messages about files not kept are in `session.refused`."""

    async def work(session: Session, ws) -> None:
        session.statuses = {}
        end, n = time.perf_counter() + seconds, 0
        data = np.random.default_rng(seed).bytes(nbytes)
        while time.perf_counter() < end:
            name = f"flood{seed}-{n}.png"
            if n % show_every == show_every - 1:
                await session.upload(ws, 0, file=(name, data, "image/png"), kind="page")
                status = "shown"
            else:
                status = (await session.put_file(ws, name, data))["status"]
            session.statuses[status] = session.statuses.get(status, 0) + 1
            n += 1

    return await _opened(port, query, seed, work)


async def file_session(port: int, seconds: float, seed: int, files, kind: str, think: tuple[float, float] = (0, 0),
                       query: str = "") -> Session:
    """Uploads `files(n)` -> (name, data, mime) through the page one after another for `seconds` (pausing
    `think` seconds between), each timed as `kind` ("upload": ordinary images, each must be encoded)."""

    async def work(session: Session, ws) -> None:
        end, n = time.perf_counter() + seconds, 0
        while time.perf_counter() < end:
            await asyncio.sleep(session.rng.uniform(*think))
            await session.upload(ws, 0, file=files(seed * 1000 + n), kind=kind, ordinary=kind == "upload")
            n += 1

    return await _opened(port, query, seed, work)


async def run_sessions(port: int, sessions: int, seconds: float, query: str = "", think=(0.5, 2.0),
                       upload_share: float = 0.15, bad_share: float = 0.2, stagger: float = 5.0,
                       page_share: float = 0.0) -> list[Session]:
    """`sessions` people arriving over `stagger` seconds, each active for `seconds`."""

    async def one(i):
        await asyncio.sleep(stagger * i / max(sessions, 1))
        return await run_session(port, query, seconds, i, think, upload_share, bad_share, page_share)

    return list(await asyncio.gather(*(one(i) for i in range(sessions))))


def summarise(sessions: list[Session]) -> dict:
    def stats(values):
        if not values:
            return {"n": 0}
        arr = np.asarray(values)
        return {"n": len(arr), "p50_s": round(float(np.percentile(arr, 50)), 3),
                "p95_s": round(float(np.percentile(arr, 95)), 3), "max_s": round(float(arr.max()), 3)}

    kinds = ("load", "slider", "upload", "page")
    every = {k: [v for s in sessions for v in s.latencies[k]] for k in kinds}
    return {"sessions": len(sessions), "by_kind": {k: stats(every[k]) for k in kinds},
            "interactions": stats(every["slider"] + every["upload"] + every["page"]),
            "images_uploaded": sum(s.images for s in sessions),
            "bad_files_refused_with_a_message": sum(s.refused for s in sessions),
            "errors": [e for s in sessions for e in s.errors][:50],
            "error_count": sum(len(s.errors) for s in sessions)}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8611)
    p.add_argument("--sessions", type=int, default=30)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--query", default="")
    args = p.parse_args()
    print(json.dumps(summarise(asyncio.run(run_sessions(args.port, args.sessions, args.seconds, args.query))),
                     indent=2))
