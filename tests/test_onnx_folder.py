"""Models from other code as ONNX folders (vae_core.onnx_folder): a pair written by hand with onnx's helpers opens
and decodes exactly as its graphs say; each broken clause of the format is named, and nothing in the folder runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core import onnx_folder
from vae_core.explore import decode, elbo_terms

from .onnx_fixtures import LATENT, SIZE, decoder_bytes, encoder_bytes, weights
from .onnx_fixtures import onnx_folder as make_folder


def test_a_hand_made_pair_opens_and_decodes_as_its_graphs_say(tmp_path):
    folder = make_folder(tmp_path)
    loaded = ckpt.load_model(folder)
    w_enc, w_dec = weights()
    z = np.array([[0.5, -1.0], [2.0, 0.0]], np.float32)
    expected = 1 / (1 + np.exp(-(z @ w_dec)))
    np.testing.assert_allclose(decode(loaded.model, z).reshape(2, -1), expected, atol=1e-5)
    x = np.random.default_rng(1).random((3, 1, SIZE, SIZE)).astype(np.float32)
    terms = elbo_terms(loaded.model, x)
    np.testing.assert_allclose(terms["mu"], x.reshape(3, -1) @ w_enc, atol=1e-5)
    np.testing.assert_allclose(terms["logvar"], -2.0)
    assert loaded.config.model.latent_dim == LATENT and loaded.config.model.image_size == SIZE
    entry = next(e for e in ckpt.list_models([tmp_path]) if e.name == "hand-onnx")
    assert entry.error is None and entry.config.model.kind == "external"


def test_logits_and_a_missing_logvar_are_taken(tmp_path):
    w_enc, w_dec = weights()
    manifest = {"format": "vae-explorer-onnx/1", "image_size": SIZE, "channels": 1, "latent_dim": LATENT,
                "decoder_output": "logits"}
    folder = make_folder(tmp_path, manifest=manifest, encoder=encoder_bytes(w_enc, logvar=False),
                         decoder=decoder_bytes(w_dec, output="logits"))
    model = ckpt.load_model(folder).model
    assert not model.has_logvar
    z = np.ones((1, LATENT), np.float32)
    np.testing.assert_allclose(decode(model, z).reshape(1, -1), 1 / (1 + np.exp(-(z @ w_dec))), atol=1e-5)


def _refused(tmp_path, message: str, **parts) -> None:
    folder = make_folder(tmp_path, **parts)
    with pytest.raises(ckpt.CheckpointError, match=message):  # opened: listing reads only the manifest
        ckpt.load_model(folder)


W_ENC, W_DEC = weights()


@pytest.mark.parametrize("parts, message", [
    ({"encoder": encoder_bytes(W_ENC, input_name="image")}, r'encoder.onnx: its input is named "x".*inputs \[\'image\'\]'),
    ({"encoder": encoder_bytes(W_ENC, latent=1)}, r"encoder.onnx's output mu has shape \['N', 1\]"),
    ({"decoder": decoder_bytes(W_DEC, scale=255.0)}, r"decode_image\(z\) gives values in \[\d.*lie in \[0, 1\]"),
    ({"decoder": decoder_bytes(W_DEC, scale=float("nan"))}, "NaN"),
    ({"decoder": b"not an onnx file"}, "decoder.onnx: onnxruntime cannot load it"),
])
def test_each_broken_clause_is_named(tmp_path, parts, message):
    _refused(tmp_path, message, **parts)


@pytest.mark.parametrize("change, message", [
    ({"format": "something/2"}, 'format" must be "vae-explorer-onnx/1"'),
    ({"image_size": 4096}, "image_size=4096 is outside"),
    ({"latent_dim": "8"}, "latent_dim must be an integer"),
    ({"run": "import os"}, r"unknown key\(s\) \['run'\]"),
    ({"decoder_output": "pixels"}, "decoder_output='pixels' is not one of"),
])
def test_a_manifest_is_checked_before_any_graph_is_opened(tmp_path, change, message):
    base = {"format": "vae-explorer-onnx/1", "image_size": SIZE, "channels": 1, "latent_dim": LATENT}
    folder = make_folder(tmp_path, manifest={**base, **change})
    entry = next(e for e in ckpt.list_models([tmp_path]) if e.name == "hand-onnx")
    assert entry.error is not None and re_search(message, entry.error), entry.error
    with pytest.raises(ckpt.CheckpointError, match=message):
        ckpt.load_model(folder)


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


def test_a_pickle_beside_the_graphs_or_a_graph_too_large_is_refused(tmp_path, monkeypatch):
    folder = make_folder(tmp_path)
    import pickle

    (folder / "extra.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ckpt.CheckpointError, match="a pickle file"):
        ckpt.load_model(folder)
    (folder / "extra.pkl").unlink()
    monkeypatch.setattr(onnx_folder, "MAX_ONNX_BYTES", 100)
    entry = next(e for e in ckpt.list_models([tmp_path]) if e.name == "hand-onnx")
    assert "over the 100-byte limit" in entry.error


def test_a_slow_graph_is_refused_by_its_time(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_folder, "TRIAL_SECONDS", 0.0)
    with pytest.raises(ckpt.CheckpointError, match=r"took .* s \(the limit is 0 s\): too slow"):
        ckpt.load_model(make_folder(tmp_path))


def test_a_config_json_cannot_claim_to_be_a_model_from_other_code(tmp_path, tiny_model_folder):
    folder, _ = tiny_model_folder
    config = json.loads((folder / "config.json").read_text())
    config["model"]["kind"] = "external"
    config["train"]["objective"] = "external"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ckpt.CheckpointError, match="not trained here"):
        ckpt.load_model(folder)


def test_the_adapter_has_a_device_and_no_trainable_weights(tmp_path):
    model = ckpt.load_model(make_folder(tmp_path)).model
    assert next(model.parameters()).device == torch.device("cpu")
    assert not any(p.requires_grad for p in model.parameters())
