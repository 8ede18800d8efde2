"""The decoder's ONNX export: parity with PyTorch in onnxruntime, metadata, staleness, the command line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core.checkpoints import PRETRAINED_DIR, list_models, load_config, load_model
from vae_core.export import (
    DECODER_ONNX,
    PARITY_TOLERANCE,
    check_parity,
    decoder_onnx_bytes,
    export_decoder,
    main,
    onnx_metadata,
    onnx_status,
    weights_digest,
)
from vae_core.kinds import kind
from vae_core.models.vae import VAE

from .app_fixtures import make_model

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("kw", [{}, {"dataset": "faces", "channels": 3, "latent_dim": 5},
                                {"image_size": 32, "latent_dim": 6}])
def test_export_matches_pytorch(tmp_path, kw):
    folder = make_model(tmp_path, "m", projection=0, **kw)
    path = export_decoder(folder)
    model = load_model(folder).model
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(1).normal(0, 2, (17, model.latent_dim)).astype(np.float32)  # batch is dynamic
    got = session.run(None, {"z": z})[0]
    with torch.inference_mode():
        expected = model.decode_image(torch.from_numpy(z)).numpy()
    assert got.shape == expected.shape == (17, model.config.channels, model.config.image_size,
                                           model.config.image_size)
    assert np.abs(got - expected).max() < PARITY_TOLERANCE
    assert got.min() >= 0 and got.max() <= 1  # pixels, not logits
    meta = onnx_metadata(path.read_bytes())
    assert meta["weights_sha256"] == weights_digest(folder)
    assert meta["latent_dim"] == str(model.latent_dim)


def test_parity_check_catches_a_different_decoder(tmp_path):
    folder = make_model(tmp_path, "m", projection=0)
    model = load_model(folder).model
    other = VAE(model.config).eval()  # fresh random weights
    data = decoder_onnx_bytes(other)
    assert check_parity(other, data) < PARITY_TOLERANCE
    assert check_parity(model, data) > 100 * PARITY_TOLERANCE


def test_status_missing_stale_foreign_and_good(tmp_path):
    folder = make_model(tmp_path, "m", projection=0)
    status = onnx_status(folder)
    assert status.path is None and "no decoder.onnx" in status.reason and "vae_core.export" in status.reason
    export_decoder(folder)
    loaded = load_model(folder)
    status = onnx_status(folder, loaded.config.model)
    assert status.path == (folder / DECODER_ONNX).resolve() and status.reason is None and len(status.digest) == 64
    # retrained: the weights change, the export is now stale
    with torch.no_grad():
        loaded.model.decoder.fc[0].bias.add_(1.0)
    ckpt.save_model(folder, loaded.model, loaded.config)
    assert "stale" in onnx_status(folder).reason
    (folder / DECODER_ONNX).write_bytes(b"not onnx at all")
    assert "not a valid ONNX file" in onnx_status(folder).reason
    (folder / DECODER_ONNX).write_bytes(decoder_onnx_bytes(VAE(loaded.config.model)))  # no weights digest
    assert "stale" in onnx_status(folder).reason


def test_status_rejects_a_file_for_another_shape(tmp_path):
    a = make_model(tmp_path, "a", projection=0, latent_dim=4)
    b = make_model(tmp_path, "b", projection=0, latent_dim=6)
    export_decoder(b)
    (a / DECODER_ONNX).write_bytes((b / DECODER_ONNX).read_bytes())
    assert "latent_dim is 6, config.json says 4" in onnx_status(a, load_model(a).config.model).reason


def test_export_is_atomic_and_command_line(tmp_path, capsys):
    folder = make_model(tmp_path, "m", projection=0)
    assert main([str(folder)]) == 0
    assert "parity checked" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no temp file left
    assert main([str(tmp_path / "nowhere")]) == 1
    assert "not a model folder" in capsys.readouterr().err


@pytest.mark.parametrize("entry", [e for e in list_models() if e.path.parent == PRETRAINED_DIR and e.error is None
                                   and kind(load_config(e.path).model.kind).decodes_from_z],
                         ids=lambda e: e.name)
def test_shipped_models_have_a_current_decoder_onnx(entry):
    loaded = load_model(entry.path)
    status = onnx_status(entry.path, loaded.config.model)
    assert status.reason is None, status.reason
    assert check_parity(loaded.model, status.path.read_bytes()) < PARITY_TOLERANCE
