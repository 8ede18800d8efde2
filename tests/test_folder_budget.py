"""A model folder's cost budget (vae_core.folder_budget): hostile folders that are legal but huge are refused before
anything heavy runs, by name and limit; the shipped zoo passes with a margin; the decoder cache agrees with the
budget and is evicted by size and age."""

from __future__ import annotations

import json
import os
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae_core import checkpoints as ckpt
from vae_core import export
from vae_core.folder_budget import BUDGET, Budget, FolderTooLarge, check_budget, folder_cost, network_cost
from vae_core.kinds import kind

from .app_fixtures import make_model
from .helpers import tiny_config

SHIPPED = sorted(p for p in ckpt.PRETRAINED_DIR.iterdir() if (p / ckpt.CONFIG_FILE).exists())


@pytest.fixture(autouse=True)
def served():
    """Each test as in the app's server, which holds folders to the budget (app.models turns it on)."""
    from vae_core import folder_safety

    was = folder_safety._serving
    folder_safety.serve_within_budget(check_budget)
    yield
    folder_safety.serve_within_budget(was)


def claimed_weights(folder: Path, exp) -> int:
    """config.json and a model.safetensors whose header names every tensor of the configured network, its data a
    sparse hole: a folder of a huge network, made in milliseconds without a byte of weights. Returns its size."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ckpt.CONFIG_FILE).write_text(json.dumps(exp.to_dict()))
    with torch.device("meta"):
        state = kind(exp.model.kind).build(exp.model).state_dict()
    header, position = {}, 0
    for name, tensor in sorted(state.items()):
        size = tensor.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [position, position + size]}
        position += size
    text = json.dumps(header).encode()
    path = folder / ckpt.WEIGHTS_FILE
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.truncate(8 + len(text) + position)
    return path.stat().st_size


def wide(latent_dim: int = 10):
    """The issue's folder: a VAE of 512-channel convolutions on 64 px colour images (118 MB of weights)."""
    return tiny_config(64, 3, latent_dim, "faces", "gaussian", model={"conv_channels": (512,) * 4, "hidden_dim": 256})


def refused_quickly(folder: Path, *words: str) -> str:
    """Loading `folder` is refused as too large within a second, having allocated under 10 MB; the message."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(FolderTooLarge) as info:
            ckpt.load_model(folder)
        seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert seconds < 1.0 and peak < 10_000_000, (seconds, peak)
    assert "too large to open here" in message and all(w in message for w in words), message
    return message


# ---- the zoo

@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_the_shipped_zoo_passes_with_a_margin(folder):
    cost = check_budget(folder)
    assert cost is not None and not cost.over()
    # room for a person's own larger models: four times the zoo's weights, decoder and map; compute is the tightest
    # (the CVAE tries each of its three conditions on every image)
    assert cost.weights_bytes * 4 < BUDGET.weights_bytes and cost.decoder_bytes * 4 < BUDGET.decoder_bytes
    assert cost.projection_values * 4 < BUDGET.projection_values
    assert cost.activation_bytes * 2 <= BUDGET.activation_bytes and cost.multiply_adds * 1.4 < BUDGET.multiply_adds


def test_the_browser_decoder_figure_is_the_size_of_the_export(tiny_model_folder):
    folder, model = tiny_model_folder
    made = len(export.derived_decoder(model, folder))
    assert 0 < made - folder_cost(folder).decoder_bytes < 20_000  # the graph and metadata add a few KB


# ---- legal but huge

def test_a_512_channel_network_is_refused_before_its_weights_are_read(tmp_path):
    size = claimed_weights(tmp_path / "wide", wide())
    assert size > 100_000_000
    message = refused_quickly(tmp_path / "wide", "its network's weights: 117.7 MB, over the 16.0 MB limit",
                              "encoding and decoding one image: 2.9 G multiply-adds, over the 100.0 M",
                              "the decoder sent to each browser: 58.9 MB, over the 8.0 MB limit")
    assert "README" in message


def test_a_512_latent_folder_with_100k_points_is_refused_before_the_projection_is_read(tmp_path):
    folder = tmp_path / "many-points"
    ckpt.save_model(folder, kind("vae").build(tiny_config(latent_dim=512).model), tiny_config(latent_dim=512))
    n, d = 100_000, 512  # a real projection.npz: zeros compress to about 200 KB, its arrays hold 205 MB each
    zeros = np.zeros((n, d), np.float32)
    np.savez_compressed(folder / ckpt.PROJECTION_FILE, means=zeros, logvars=zeros, factors=np.zeros((n, 0), np.int64),
                        pca=np.zeros((n, 2), np.float32), index=np.arange(n), factor_names=np.zeros(0, "<U1"),
                        seed=np.array(0))
    del zeros
    assert folder_cost(folder).projection_values == 51_200_000
    refused_quickly(folder, "projection.npz's latents (points x latent_dim): 51.2 M values, over the 2.0 M values")


def test_wide_first_layers_are_refused_for_their_activations(tmp_path):
    """Few weights, little compute, but 4 MB per image in the first layer: a batch of 256 would hold 1 GB."""
    exp = tiny_config(64, 1, model={"conv_channels": (1024, 1, 1, 1), "hidden_dim": 16})
    weights, multiply_adds, _, _ = network_cost(exp.model)
    assert weights < BUDGET.weights_bytes and multiply_adds < BUDGET.multiply_adds
    claimed_weights(tmp_path / "first-wide", exp)
    refused_quickly(tmp_path / "first-wide", "the largest tensor one image makes: 4.2 MB, over the 256 KB limit")


def test_an_onnx_folder_with_a_huge_decoder_is_listed_as_too_large(tmp_path):
    folder = tmp_path / "big-onnx"
    folder.mkdir()
    (folder / "explorer.json").write_text(json.dumps({"format": "vae-explorer-onnx/1", "image_size": 64,
                                                      "channels": 1, "latent_dim": 4, "dataset": "dsprites"}))
    for name in ("encoder.onnx", "decoder.onnx"):
        with open(folder / name, "wb") as f:
            f.truncate(20_000_000)  # sparse: never read
    entry = next(e for e in ckpt.list_models(extra=[tmp_path]) if e.name == "big-onnx")
    assert "the decoder sent to each browser: 20.0 MB, over the 8.0 MB limit" in entry.error


def test_the_issues_folders_are_listed_as_too_large_and_the_app_says_which_figure(tmp_path, monkeypatch,
                                                                                 torch_threads_restored):
    claimed_weights(tmp_path / "wide", wide())
    make_model(tmp_path, "good", projection=0)
    monkeypatch.setenv(ckpt.MODELS_ENV, str(tmp_path))
    entries = {e.name: e for e in ckpt.list_models()}
    assert "too large to open here" in entries["wide"].error and entries["good"].error is None
    at = AppTest.from_file(str(Path(__file__).parent.parent / "app" / "streamlit_app.py"), default_timeout=60)
    at.query_params["model"] = "wide"
    at.run()
    assert not at.exception
    shown = " ".join(e.value for e in [*at.sidebar.error, *at.sidebar.warning])
    assert "too large to open here" in shown and "over the 16.0 MB limit" in shown
    assert "wide" not in at.sidebar.selectbox(key="model").options


def test_only_the_server_holds_folders_to_the_budget(tmp_path):
    """A person's own big model on their own command line (train --resume, evaluate, export) is theirs to run."""
    import subprocess
    import sys

    claimed_weights(tmp_path / "wide", wide())
    ckpt.check_folder(tmp_path / "wide", budget=False)  # the pickle checks alone
    with pytest.raises(FolderTooLarge):
        ckpt.check_folder(tmp_path / "wide")  # in the server (this test's fixture)
    command = "from vae_core import checkpoints as c; import sys; c.check_folder(sys.argv[1]); print('ok')"
    done = subprocess.run([sys.executable, "-c", command, str(tmp_path / "wide")], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=120, check=False)
    assert done.stdout.strip() == "ok", done.stderr[-500:]
    assert check_budget(tmp_path / "wide", Budget(weights_bytes=10**9, multiply_adds=10**10, decoder_bytes=10**9,
                                                  activation_bytes=10**7)) is not None


def test_a_folder_with_a_broken_config_is_left_to_the_config_checks(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / ckpt.CONFIG_FILE).write_text(json.dumps({"model": {"latent_dim": -3}}))
    assert folder_cost(tmp_path / "broken") is None
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.load_model(tmp_path / "broken")
    assert not isinstance(info.value, FolderTooLarge)


# ---- the browser's decoder and its cache

def test_an_export_over_the_budget_is_not_sent(tiny_model_folder, monkeypatch):
    folder, model = tiny_model_folder
    monkeypatch.setattr(export, "BUDGET", Budget(decoder_bytes=10_000))
    with pytest.raises(FolderTooLarge, match="the decoder sent to each browser is .* over the 0.0 MB limit"):
        export.derived_decoder(model, folder)


def test_the_cache_keeps_every_decoder_the_budget_lets_through():
    assert export.MAX_DECODER_BYTES >= BUDGET.decoder_bytes  # was 64 MiB: bigger exports were made again each run
    assert export.MAX_CACHE_BYTES >= 4 * BUDGET.decoder_bytes


def _file(cache: Path, name: str, size: int, age_s: float) -> Path:
    path = cache / name
    path.write_bytes(b"x" * size)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_the_cache_is_evicted_by_age_then_by_size_oldest_use_first(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    old = _file(cache, "a" * 64 + ".onnx", 10, export.MAX_CACHE_AGE_S + 60)
    first, second, third = (_file(cache, c * 64 + ".onnx", 400, age) for c, age in (("b", 300), ("c", 200), ("d", 1)))
    stale = _file(cache, ".x.onnx.abc.tmp", 10, export.STALE_TEMP_S + 60)
    fresh_tmp = _file(cache, ".y.onnx.abc.tmp", 10, 5)
    other = _file(cache, "notes.txt", 5000, export.MAX_CACHE_AGE_S + 60)
    (cache / ("e" * 64 + ".onnx")).symlink_to(other)
    removed = export.evict_cache(cache, max_bytes=900)
    assert sorted(removed) == sorted([old.name, first.name, stale.name])
    assert second.exists() and third.exists() and fresh_tmp.exists() and other.exists()
    assert (cache / ("e" * 64 + ".onnx")).is_symlink()


def test_a_decoder_read_from_the_cache_counts_as_used(tiny_model_folder, tmp_path):
    folder, model = tiny_model_folder
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    export.cached_decoder(model, folder, cache)
    (kept,) = cache.glob("*.onnx")
    stamp = time.time() - 10 * 24 * 3600
    os.utime(kept, (stamp, stamp))
    calls = []
    export.cached_decoder(model, folder, cache, derive=lambda *a: calls.append(a))
    assert not calls and kept.stat().st_mtime > time.time() - 60
