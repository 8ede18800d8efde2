"""The decoder's ONNX export: parity with PyTorch in onnxruntime, metadata, derivation from the weights, the
command line."""

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
    derived_decoder,
    export_decoder,
    main,
    onnx_metadata,
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


def test_the_derived_decoder_follows_the_weights_and_is_reproducible(tmp_path):
    folder = make_model(tmp_path, "m", projection=0)
    loaded = load_model(folder)
    first = derived_decoder(loaded.model, folder)
    assert first == derived_decoder(load_model(folder).model, folder)  # byte for byte: nothing needs shipping
    assert onnx_metadata(first)["weights_sha256"] == weights_digest(folder)
    with torch.no_grad():  # retrained: the weights change, and so does what is derived
        loaded.model.decoder.fc[0].bias.add_(1.0)
    ckpt.save_model(folder, loaded.model, loaded.config)
    again = derived_decoder(load_model(folder).model, folder)
    assert again != first and onnx_metadata(again)["weights_sha256"] == weights_digest(folder)
    assert check_parity(load_model(folder).model, first) > PARITY_TOLERANCE  # the old file no longer decodes like it


def test_a_kept_decoder_is_served_only_while_it_decodes_like_the_weights(tmp_path):
    from vae_core.export import cached_decoder

    folder = make_model(tmp_path, "m", projection=0)
    model = load_model(folder).model
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    calls = []

    def derive(m, f, n=16):
        calls.append(f)
        return derived_decoder(m, f, n)

    first = cached_decoder(model, folder, cache, derive=derive)
    (kept,) = cache.iterdir()
    assert kept.read_bytes() == first and len(calls) == 1
    assert cached_decoder(model, folder, cache, derive=derive) == first and len(calls) == 1  # kept: not derived
    other = VAE(model.config).eval()  # a decoder of other weights put in its place is not served
    kept.write_bytes(decoder_onnx_bytes(other))
    assert cached_decoder(model, folder, cache, derive=derive) == first and len(calls) == 2
    kept.write_bytes(b"not an onnx file")  # nor a damaged one
    assert cached_decoder(model, folder, cache, derive=derive) == first and len(calls) == 3
    with torch.no_grad():  # retrained: another name, derived anew
        model.decoder.fc[0].bias.add_(1.0)
    ckpt.save_model(folder, model, load_config(folder))
    assert cached_decoder(model, folder, cache, derive=derive) != first and len(calls) == 4
    assert len(list(cache.iterdir())) == 2


def test_the_cache_folder_is_private_or_not_used(tmp_path, monkeypatch):
    from vae_core.export import CACHE_ENV, decoder_cache_dir

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "new" / "decoders"))
    made = decoder_cache_dir()
    assert made == tmp_path / "new" / "decoders" and made.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv(CACHE_ENV, str(shared))
    assert decoder_cache_dir() is None  # others could plant files there
    monkeypatch.setenv(CACHE_ENV, "")
    assert decoder_cache_dir() is None


def test_a_decoder_that_disagrees_with_pytorch_is_refused(tmp_path, monkeypatch):
    from vae_core import export

    folder = make_model(tmp_path, "m", projection=0)
    model = load_model(folder).model
    other = VAE(model.config).eval()  # an exporter bug, as far as the check can tell: another network's graph
    monkeypatch.setattr(export, "decoder_onnx_bytes", lambda m, digest="": decoder_onnx_bytes(other, digest))
    with pytest.raises(ckpt.CheckpointError, match="differs from the PyTorch decoder"):
        derived_decoder(model, folder)


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
def test_shipped_models_derive_a_decoder_that_matches_their_weights(entry):
    assert not (entry.path / DECODER_ONNX).exists()  # derived on first use, not shipped (the zoo's size budget)
    loaded = load_model(entry.path)
    assert check_parity(loaded.model, derived_decoder(loaded.model, entry.path), n=64) < PARITY_TOLERANCE
