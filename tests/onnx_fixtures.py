"""ONNX folders written by hand with the `onnx` helper functions, no PyTorch: a linear encoder and decoder over 8x8
grey images, to prove the folder format stands on its own (vae_core.onnx_folder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE, LATENT = 8, 2


def weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.1, (SIZE * SIZE, LATENT)).astype(np.float32),
            rng.normal(0, 1.0, (LATENT, SIZE * SIZE)).astype(np.float32))


def _model(nodes, inputs, outputs, initializers) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hand")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def encoder_bytes(w_enc: np.ndarray, logvar: bool = True, input_name: str = "x", latent: int = LATENT) -> bytes:
    """x (N, 1, 8, 8) -> mu = flatten(x) @ W; logvar = a constant -2 (sigma 0.37)."""
    nodes = [helper.make_node("Flatten", [input_name], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], ["mu"])]
    outputs = [helper.make_tensor_value_info("mu", TensorProto.FLOAT, ["N", latent])]
    inits = [numpy_helper.from_array(w_enc[:, :latent], "W")]
    if logvar:
        nodes += [helper.make_node("Mul", ["mu", "zero"], ["scaled"]), helper.make_node("Add", ["scaled", "minus2"],
                                                                                        ["logvar"])]
        inits += [numpy_helper.from_array(np.float32(0.0), "zero"), numpy_helper.from_array(np.float32(-2.0), "minus2")]
        outputs.append(helper.make_tensor_value_info("logvar", TensorProto.FLOAT, ["N", latent]))
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 1, SIZE, SIZE])]
    return _model(nodes, inputs, outputs, inits)


def decoder_bytes(w_dec: np.ndarray, output: str = "probabilities", scale: float = 1.0) -> bytes:
    """z (N, 2) -> x = sigmoid(z @ W) reshaped to (N, 1, 8, 8) (or the logits, or the probabilities times `scale`)."""
    nodes = [helper.make_node("MatMul", ["z", "W"], ["logits"])]
    last = "logits"
    if output == "probabilities":
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["p"]))
        nodes.append(helper.make_node("Mul", ["p", "scale"], ["ps"]))
        last = "ps"
    nodes.append(helper.make_node("Reshape", [last, "shape"], ["x"]))
    inits = [numpy_helper.from_array(w_dec, "W"), numpy_helper.from_array(np.array([-1, 1, SIZE, SIZE], np.int64),
                                                                         "shape"),
             numpy_helper.from_array(np.float32(scale), "scale")]
    return _model(nodes, [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", LATENT])],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, SIZE, SIZE])], inits)


def onnx_folder(root: Path, name: str = "hand-onnx", manifest: dict | None = None, encoder: bytes | None = None,
                decoder: bytes | None = None, seed: int = 0) -> Path:
    """A complete ONNX folder (manifest, encoder.onnx, decoder.onnx); any part may be replaced."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    w_enc, w_dec = weights(seed)
    base = {"format": "vae-explorer-onnx/1", "image_size": SIZE, "channels": 1, "latent_dim": LATENT,
            "decoder_output": "probabilities", "dataset": "hand-made"}
    (folder / "explorer.json").write_text(json.dumps(manifest if manifest is not None else base))
    (folder / "encoder.onnx").write_bytes(encoder if encoder is not None else encoder_bytes(w_enc))
    (folder / "decoder.onnx").write_bytes(decoder if decoder is not None else decoder_bytes(w_dec))
    return folder
