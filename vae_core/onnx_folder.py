"""An ONNX folder: a model from any framework, explored without running any code of its own (the format is in
`vae_core.models.external`'s docstring). `read_manifest` checks explorer.json; `load_onnx_folder` opens both graphs
in onnxruntime, checks their names and shapes against the manifest, and tries a first encode and decode under a time
limit, naming the broken clause of the contract when one fails."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import DatasetInfo, ExperimentConfig, ModelConfig, TrainConfig
from .contract import ContractError, check_explorable
from .folder_safety import CheckpointError, check_folder, safe_file
from .models.external import IMAGE_SIZES, KIND, ExternalModel
from .records import ConfigError, check_choice, check_int

ONNX_FORMAT = "vae-explorer-onnx/1"
MANIFEST = "explorer.json"
ENCODER, DECODER = "encoder.onnx", "decoder.onnx"
MAX_MANIFEST_BYTES = 64 * 1024
MAX_ONNX_BYTES = 200 * 1024 * 1024  # each graph: beyond it, a folder is listed as too large
TRIAL_SECONDS = 10.0  # the first encode and decode of two images, together
OUTPUTS = ("probabilities", "logits")
MANIFEST_KEYS = {"format", "image_size", "channels", "latent_dim", "decoder_output", "dataset", "likelihood", "name"}


class ExternalError(ConfigError):
    """A model from other code that cannot be explored; the message names the broken clause and what to change."""


@dataclass(frozen=True)
class Manifest:
    image_size: int
    channels: int
    latent_dim: int
    decoder_output: str
    dataset: str
    likelihood: str


def read_manifest(folder: Path) -> Manifest:
    """explorer.json, checked: known keys, the format, sizes within bounds; ExternalError naming what is wrong."""
    try:
        path = safe_file(folder, MANIFEST, MAX_MANIFEST_BYTES)
        data = json.loads(path.read_text(encoding="utf-8"))
    except (CheckpointError, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExternalError(f"{MANIFEST}: cannot be read ({str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise ExternalError(f"{MANIFEST}: a JSON object of the model's sizes, e.g. {{\"format\": \"{ONNX_FORMAT}\", "
                            "\"image_size\": 28, \"channels\": 1, \"latent_dim\": 8, \"decoder_output\": "
                            "\"probabilities\"}")
    unknown = sorted(set(data) - MANIFEST_KEYS)
    if unknown:
        raise ExternalError(f"{MANIFEST}: unknown key(s) {unknown[:5]}; its keys are {sorted(MANIFEST_KEYS)}")
    if data.get("format") != ONNX_FORMAT:
        raise ExternalError(f"{MANIFEST}: \"format\" must be \"{ONNX_FORMAT}\"")
    try:
        check_int(MANIFEST, "image_size", data.get("image_size"), *IMAGE_SIZES)
        check_choice(MANIFEST, "channels", data.get("channels"), (1, 3))
        check_int(MANIFEST, "latent_dim", data.get("latent_dim"), 1, 512)
        check_choice(MANIFEST, "decoder_output", data.get("decoder_output", "probabilities"), OUTPUTS)
        check_choice(MANIFEST, "likelihood", data.get("likelihood", "bernoulli"), ("bernoulli", "gaussian"))
    except ConfigError as exc:
        raise ExternalError(str(exc)) from None
    dataset = data.get("dataset", "unknown")
    if not isinstance(dataset, str) or not 0 < len(dataset) <= 200:
        raise ExternalError(f"{MANIFEST}: \"dataset\" is the name of its data (text), got {str(dataset)[:60]!r}")
    return Manifest(data["image_size"], data["channels"], data["latent_dim"], data.get("decoder_output",
                    "probabilities"), dataset, data.get("likelihood", "bernoulli"))


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001  anyone's file: onnxruntime's refusal, in words
        raise ExternalError(f"{path.name}: onnxruntime cannot load it ({type(exc).__name__}: {str(exc)[:200]})") from None


def _inputs_outputs(session) -> tuple[dict, dict]:
    return ({i.name: i for i in session.get_inputs()}, {o.name: o for o in session.get_outputs()})


def _check_shape(where: str, declared, expected: tuple) -> None:
    """A graph's declared shape against the contract's: a fixed size must match; a symbolic one is taken."""
    shape = list(declared.shape or [])
    if len(shape) != len(expected):
        raise ExternalError(f"{where} has {len(shape)} dimensions {shape}; the contract asks for {len(expected)}: "
                            f"{list(expected)}")
    for got, want in zip(shape[1:], expected[1:]):
        if isinstance(got, int) and got != want:
            raise ExternalError(f"{where} has shape {shape}; the contract asks for {['N', *expected[1:]]}")


def _batched(run, fixed_batch: bool):
    """A graph called on a batch; one image at a time where its batch size is fixed at 1."""
    if not fixed_batch:
        return run
    return lambda array: tuple(np.concatenate(parts) for parts in zip(*(run(array[i:i + 1])
                                                                       for i in range(len(array)))))


def load_onnx_folder(folder: str | Path) -> tuple[ExternalModel, ExperimentConfig]:
    """An ONNX folder's model and config: manifest, graphs' names and shapes, a first encode and decode under
    TRIAL_SECONDS; ExternalError naming the broken clause otherwise."""
    folder = Path(folder)
    check_folder(folder)
    manifest = read_manifest(folder)
    paths = {}
    for name in (ENCODER, DECODER):
        try:
            paths[name] = safe_file(folder, name, MAX_ONNX_BYTES)
        except CheckpointError as exc:
            raise ExternalError(f"{name}: {str(exc).split(': ', 1)[-1]}") from None
    encoder, decoder = _session(paths[ENCODER]), _session(paths[DECODER])
    (e_in, e_out), (d_in, d_out) = _inputs_outputs(encoder), _inputs_outputs(decoder)
    m = manifest
    if set(e_in) != {"x"} or "mu" not in e_out or set(e_out) - {"mu", "logvar"}:
        raise ExternalError(f"{ENCODER}: its input is named \"x\" and its outputs \"mu\" (and \"logvar\"); it has "
                            f"inputs {sorted(e_in)[:4]} and outputs {sorted(e_out)[:4]}: rename them when exporting "
                            "(torch.onnx.export(..., input_names=[\"x\"], output_names=[\"mu\", \"logvar\"]))")
    if set(d_in) != {"z"} or set(d_out) != {"x"}:
        raise ExternalError(f"{DECODER}: its input is named \"z\" and its output \"x\"; it has inputs "
                            f"{sorted(d_in)[:4]} and outputs {sorted(d_out)[:4]}")
    _check_shape(f"{ENCODER}'s input x", e_in["x"], ("N", m.channels, m.image_size, m.image_size))
    for name in e_out:
        _check_shape(f"{ENCODER}'s output {name}", e_out[name], ("N", m.latent_dim))
    _check_shape(f"{DECODER}'s input z", d_in["z"], ("N", m.latent_dim))
    _check_shape(f"{DECODER}'s output x", d_out["x"], ("N", m.channels, m.image_size, m.image_size))
    has_logvar = "logvar" in e_out
    names = ["mu", "logvar"] if has_logvar else ["mu"]
    fixed = {graph: (inputs[key].shape or [None])[0] == 1 for graph, inputs, key in
             (("encoder", e_in, "x"), ("decoder", d_in, "z"))}
    run_encoder = _batched(lambda x: tuple(encoder.run(names, {"x": x})), fixed["encoder"])
    run_decoder = _batched(lambda z: tuple(decoder.run(["x"], {"z": z})), fixed["decoder"])

    def encode(x: torch.Tensor):
        out = run_encoder(np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32))
        mu = torch.from_numpy(np.asarray(out[0], dtype=np.float32))
        return mu, torch.from_numpy(np.asarray(out[1], dtype=np.float32)) if has_logvar else None

    def decode(z: torch.Tensor):
        out = run_decoder(np.ascontiguousarray(z.detach().cpu().numpy(), dtype=np.float32))
        return torch.from_numpy(np.asarray(out[0], dtype=np.float32))

    config = experiment_config(m)
    model = ExternalModel(config.model, encode, decode, m.decoder_output, has_logvar, "onnx").eval()
    began = time.perf_counter()
    try:
        check_explorable(model)
    except ContractError as exc:
        raise ExternalError(f"the first encode and decode: {exc}") from None
    seconds = time.perf_counter() - began
    if seconds > TRIAL_SECONDS:
        raise ExternalError(f"encoding and decoding two images took {seconds:.1f} s (the limit is "
                            f"{TRIAL_SECONDS:g} s): too slow to follow a slider")
    return model, config


def experiment_config(m: Manifest) -> ExperimentConfig:
    """What the app reads of a model (its sizes, likelihood and data) as our folders' ExperimentConfig."""
    return ExperimentConfig(
        model=ModelConfig(image_size=m.image_size, channels=m.channels, latent_dim=m.latent_dim,
                          likelihood=m.likelihood, kind=KIND.name),
        train=TrainConfig(dataset=m.dataset, objective=KIND.name, steps=1),
        dataset=_dataset_info(m.dataset, DatasetInfo))


def onnx_folder_config(folder: Path):
    """An ONNX folder's config from its manifest alone (for the model list; `load_onnx_folder` checks the graphs)."""
    return experiment_config(read_manifest(Path(folder)))


def _dataset_info(name: str, info):
    """A known dataset's factors (a model of dSprites from other code gets its metrics and names), else none."""
    from .data import GROUND_TRUTH

    if name in GROUND_TRUTH:
        truth = GROUND_TRUTH[name]()
        return info(name, tuple(truth.factor_names), tuple(truth.factor_sizes))
    return info(name)


def is_onnx_folder(folder: Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()
