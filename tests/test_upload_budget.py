"""What a small hostile upload may cost the server: at most 300 MB more memory and 2 s, accepted or refused.

Each file is decoded in a fresh process (so its peak memory is its own), the way the app decodes uploads
(vae_core.imaging.load_rgba, then vae_core.prepare). The files are written here, apart from the project's
decoders: tiny files that claim huge or slow decodes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zlib

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
