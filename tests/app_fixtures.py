"""Model folders for the app and browser tests: tiny models, made in seconds, with a small projection.npz."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from app import serve
from vae_core import checkpoints as ckpt
from vae_core.data import get_dataset
from vae_core.models.vae import VAE
from vae_core.projection import write_projection

from .helpers import tiny_config

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots and measured figures (gitignored): look at them
CHROMIUM = "/usr/bin/chromium"  # Debian's; `playwright install` cannot download browsers here
BROWSER_MARKS = [  # every module that drives Chromium
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]
MEDIA: dict[str, bytes] = {}  # every picture the app under AppTest showed, by its media file id


def serve_models(monkeypatch, root) -> None:
    """The app under AppTest lists the model folders in `root` (beside pretrained/), and every picture it shows is
    kept in MEDIA for the test to read back (test_app.picture)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from vae_core.checkpoints import MODELS_ENV

    class CapturingStorage(MemoryMediaFileStorage):
        def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
            file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
            MEDIA[file_id] = self.get_file(file_id).content
            return file_id

    monkeypatch.setenv(MODELS_ENV, str(root))
    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", CapturingStorage)


class ArtifactFigures(dict):
    """Figures a test module measures, rewritten to tests/artifacts/<filename> at each record, so the ones taken
    before a failing test are kept."""

    def __init__(self, filename: str):
        super().__init__()
        self.path = ROOT / "tests" / "artifacts" / filename

    def record(self, name: str, value) -> None:
        self[name] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self, indent=2) + "\n")


@contextlib.contextmanager
def browser_page(browser, height: int = 1000, init_script: str | None = None):
    """A page in a fresh browser context (its own storage), 1400 px wide; closed afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": height})
    if init_script:
        context.add_init_script(init_script)
    try:
        yield context.new_page()
    finally:
        context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(log_path: Path, env: dict[str, str], start_timeout_s: float = 60.0) -> Iterator[tuple[str, int]]:
    """The app as `make app` starts it, on a free port, with `env` added to the environment.

    Yields (base URL, server pid) once the server answers its health check; stops it afterwards. A server that does
    not come up fails the test with the end of its log.
    """

    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            serve.command(port), cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + start_timeout_s
            while True:
                try:
                    if urllib.request.urlopen(f"{base}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    if time.time() > deadline or proc.poll() is not None:
                        pytest.fail(f"the app did not start: {log_path.read_text()[-2000:]}")
                    time.sleep(0.1)
            yield base, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def make_model(root: Path, name: str, dataset: str = "dsprites", image_size: int = 64, channels: int = 1,
               latent_dim: int = 4, projection: int = 300, seed: int = 0) -> Path:
    """An untrained tiny model folder with a card (per-dimension KL, one dimension collapsed) and, when
    `projection` > 0 and the dataset fits, a projection.npz of that many points with stand-in UMAP coordinates."""
    torch.manual_seed(seed)
    exp = tiny_config(image_size, channels, latent_dim, dataset, "bernoulli" if channels == 1 else "gaussian",
                      objective="beta-vae", beta=4.0)
    model = VAE(exp.model).eval()
    kl = [round(1.5 / (d + 1), 4) for d in range(latent_dim - 1)] + [0.001]
    card = {"name": name, "dataset": dataset, "objective": "beta-vae", "beta": 4.0, "steps": 10,
            "final": {"recon": 100.0, "kl": sum(kl), "kl_per_dim": kl, "active_dims": latent_dim - 1},
            "metrics": {"mig": {"score": 0.12}, "factor_vae": {"score": 0.5}}}
    folder = root / name
    ckpt.save_model(folder, model, exp, card)
    if projection:
        data = get_dataset(dataset)
        if (data.image_size, data.channels) == (image_size, channels):
            write_projection(folder, model, data, n=projection, seed=seed, with_umap=False)
            add_fake_umap(folder)
    return folder


def add_fake_umap(folder: Path) -> None:
    """Stand-in UMAP coordinates (a fixed warp of the PCA ones): the real fit takes tens of seconds."""
    path = folder / ckpt.PROJECTION_FILE
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    pca = arrays["pca"]
    arrays["umap"] = np.stack([np.tanh(pca[:, 0]) * 5, pca[:, 1] + 0.3 * pca[:, 0] ** 2], 1).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    ckpt.atomic_write_bytes(path, buf.getvalue())


def make_broken(root: Path, name: str = "broken-model") -> Path:
    """A folder with a config.json that does not validate."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / ckpt.CONFIG_FILE).write_text(json.dumps({"format_version": 1, "model": {"latent_dim": -3}}))
    return folder


def png_bytes(size: int = 40, mode: str = "RGB", seed: int = 0) -> bytes:
    """A small test image: a bright disc on a dark background."""
    from PIL import Image

    yy, xx = np.mgrid[:size, :size]
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(size * 0.3, size * 0.7, 2)
    disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < (size / 4) ** 2).astype(np.uint8) * 230 + 10
    rgb = np.stack([disc, disc // 2 + 60, 255 - disc], -1).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB").convert(mode)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# ---- in the browser (Playwright pages)

def settle(pg, ready: str, timeout: float = 60_000) -> None:
    """Wait for `ready` to show and the script to finish (a rerun can start a moment after an action, hence the
    short pause before looking at the script's state)."""
    pg.wait_for_selector(ready, timeout=timeout)
    pg.wait_for_timeout(250)
    pg.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


def shot(pg, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main block, so the window is made as tall
    as that block first."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = pg.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    size = pg.viewport_size
    pg.set_viewport_size({"width": size["width"], "height": min(int(height) + 80, 5000)})
    pg.wait_for_timeout(400)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    pg.set_viewport_size(size)


def no_exception(pg) -> None:
    assert pg.locator("[data-testid='stException']").count() == 0, pg.inner_text("body")[-2000:]
