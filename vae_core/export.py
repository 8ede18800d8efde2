"""The decoder as ONNX, for decoding in the browser.

`decoder_onnx_bytes` maps latents `z` (B, latent_dim) float32 to images `image` (B, C, H, W) in [0, 1] (the
sigmoid of the decoder's logits, as `VAE.decode_image`), and records in its metadata the SHA-256 of the
`model.safetensors` it was exported from. The app does not ship or read a folder's `decoder.onnx`: it derives the
file from the weights on first use (`derived_decoder`, about 0.1 s; the export is byte for byte reproducible), so a
stale or forged file in a folder is never served and the zoo carries no second copy of each decoder.
`python -m vae_core.export pretrained/NAME` still writes `decoder.onnx` into a folder, atomically, for use outside
the app. The legacy TorchScript exporter is used (`dynamo=False`): the network is a plain feed-forward stack, and
it keeps onnxscript out of the dependencies. `check_parity` runs the file in onnxruntime against the PyTorch
decoder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import secrets
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .cache_dirs import CACHE_ENV, cache_folder, private_folder
from .checkpoints import WEIGHTS_FILE, CheckpointError, atomic_write_bytes, load_model, safe_file
from .folder_budget import BUDGET, FolderTooLarge, check_budget
from .kinds import KINDS, kind
from .models.vae import VAE

DECODER_ONNX = "decoder.onnx"
FORMAT = "vae-explorer decoder 1"
OPSET = 17
PARITY_TOLERANCE = 1e-4  # max abs difference of pixel values in [0, 1]
_EXPORTING = threading.Lock()


class _Calls(nn.Module):
    """A model's method as a module's forward, for the exporter: `decode_image` (z -> the picture in [0, 1], so the
    browser does no arithmetic of its own) or `encode`."""

    def __init__(self, model, method: str = "decode_image"):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, x: torch.Tensor):
        return getattr(self.model, self.method)(x)


def _from_other_code(model) -> bool:
    return not kind(model.config.kind).trained_here


def source_digest(model, folder: str | Path) -> str | None:
    """SHA-256 of what a model's browser decoder is derived from: our weights file, an ONNX folder's decoder.onnx;
    None for a model from Python code (nothing on disk says it is unchanged: derived anew in each process)."""
    if not _from_other_code(model):
        return weights_digest(folder)
    if model.source != "onnx":
        return None
    from .onnx_folder import DECODER, MAX_ONNX_BYTES

    return hashlib.sha256(safe_file(Path(folder), DECODER, MAX_ONNX_BYTES).read_bytes()).hexdigest()


def onnx_image_decoder(data: bytes, decoder_output: str) -> bytes:
    """An ONNX folder's decoder.onnx as the browser's decoder: its output "x" becomes "image", in [0, 1] (a sigmoid
    appended to logits), the graph otherwise as it is."""
    import onnx
    from onnx import helper

    proto = onnx.load_from_string(data)
    graph = proto.graph
    used = {name for node in graph.node for name in node.output} | {i.name for i in graph.input}
    if "image" in used or len(graph.output) != 1:
        raise CheckpointError("decoder.onnx already names a value \"image\" or has several outputs; the browser's "
                              "decoder cannot be made from it")
    source = graph.output[0]
    graph.node.append(helper.make_node("Sigmoid" if decoder_output == "logits" else "Identity", [source.name],
                                       ["image"]))
    image = onnx.ValueInfoProto()
    image.CopyFrom(source)
    image.name = "image"
    graph.output.remove(source)
    graph.output.append(image)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def weights_digest(folder: str | Path) -> str:
    """SHA-256 (hex) of a model folder's weights file."""
    path = safe_file(Path(folder), WEIGHTS_FILE, 1 << 40)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decoder_onnx_bytes(model: VAE, weights_sha256: str = "") -> bytes:
    """The model's image decoder as an ONNX file (bytes), batch size dynamic, with metadata."""
    import onnx

    cfg = model.config
    net = _Calls(model).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(net, (torch.zeros(1, cfg.latent_dim),), buf, dynamo=False, opset_version=OPSET,
                          input_names=["z"], output_names=["image"],
                          dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    meta = {"format": FORMAT, "weights_sha256": weights_sha256, "latent_dim": str(cfg.latent_dim),
            "channels": str(cfg.channels), "image_size": str(cfg.image_size)}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "vae_core.export"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def derived_decoder(model: VAE, folder: str | Path, n: int = 16) -> bytes:
    """The decoder the browser runs, exported from `model` (loaded from `folder`) and checked against it in
    onnxruntime on `n` random latents and the origin.

    Raises:
        CheckpointError: the kind's decoder is not a function of z alone, or the export differs from PyTorch.
        FolderTooLarge: the folder, or the export itself, is over the budget's browser decoder
            (vae_core.folder_budget): checked before exporting, and on the bytes made.
    """
    check_budget(folder)  # a figure from the folder's config (cached): nothing is exported beyond it
    if not kind(model.config.kind).decodes_from_z:
        live = ", ".join(k.name for k in KINDS.values() if k.decodes_from_z)
        raise CheckpointError(f"a {model.config.kind} decoder is not a function of z alone, so it "
                              f"is not exported; only these kinds are: {live}")
    if _from_other_code(model) and model.source == "onnx":  # its own decoder.onnx, its output made a picture
        from .onnx_folder import DECODER, MAX_ONNX_BYTES

        data = onnx_image_decoder(safe_file(Path(folder), DECODER, MAX_ONNX_BYTES).read_bytes(), model.decoder_output)
    else:
        with _EXPORTING:  # the exporter keeps process-wide state: one export at a time, whichever thread asks
            data = decoder_onnx_bytes(model, source_digest(model, folder) or "")
    if len(data) > BUDGET.decoder_bytes:
        raise FolderTooLarge(f"{folder}: too large to open here: the decoder sent to each browser is "
                             f"{len(data) / 1e6:,.1f} MB, over the {BUDGET.decoder_bytes / 1e6:,.1f} MB limit")
    diff = check_parity(model, data, n=n)
    if not diff <= PARITY_TOLERANCE:
        raise CheckpointError(f"the ONNX export differs from the PyTorch decoder by {diff:.3g} "
                              f"(tolerance {PARITY_TOLERANCE})")
    return data


MAX_DECODER_BYTES = BUDGET.decoder_bytes  # every decoder the budget lets through is kept and read back
MAX_CACHE_BYTES = 16 * MAX_DECODER_BYTES  # beyond it, the least recently used decoders go first
MAX_CACHE_AGE_S = 30 * 24 * 3600  # a decoder unused for 30 days goes (the weights it came from may be gone)
STALE_TEMP_S = 3600  # a temporary file of a writer killed mid-write


def decoder_cache_dir() -> Path | None:
    """The folder derived decoders are kept in between runs of the app: $VAE_EXPLORER_CACHE, else
    ~/.cache/vae-explorer/decoders (or under $XDG_CACHE_HOME), made private (0700). None when it is turned off
    (VAE_EXPLORER_CACHE set empty) or cannot be trusted or made: another owner, open to others, not a folder."""
    raw = os.environ.get(CACHE_ENV)
    return private_folder(Path(raw)) if raw else cache_folder("decoders")


def cached_decoder(model: VAE, folder: str | Path, cache: Path | None, n: int = 16, derive=None) -> bytes:
    """`derived_decoder`, kept in `cache` (when not None) under a name made of what it is derived from: the
    file format, the opset, the torch version and the weights' SHA-256. A kept file is served only after it
    decodes like the weights on fresh random latents (a new seed each time, so a file made to pass one check
    passes no other); a damaged or failing one is derived anew. Deriving costs the first page of a fresh
    process the exporter's import and the export (measured 1.5-2.5 s here); a kept file costs the check.
    `derive`: the function that derives (default `derived_decoder`)."""
    derive = derive or derived_decoder
    digest = source_digest(model, folder) if cache is not None else None
    if digest is None:
        return derive(model, folder, n)
    key = f"{FORMAT}|{OPSET}|{torch.__version__}|{digest}"
    name = hashlib.sha256(key.encode()).hexdigest() + ".onnx"
    with contextlib.suppress(Exception):  # missing, damaged or not a decoder of these weights: derive it anew
        kept = safe_file(cache, name, MAX_DECODER_BYTES).read_bytes()
        if check_parity(model, kept, n=n, seed=secrets.randbits(31)) <= PARITY_TOLERANCE:
            os.utime(cache / name)  # its age counts from its last use (evict_cache)
            return kept
    data = derive(model, folder, n)
    with contextlib.suppress(OSError):  # a full or read-only cache only costs the next run the export
        atomic_write_bytes(cache / name, data)
        evict_cache(cache)
    return data


def evict_cache(cache: Path, max_bytes: int = MAX_CACHE_BYTES, max_age_s: float = MAX_CACHE_AGE_S) -> list[str]:
    """Remove from the decoder cache what it should no longer hold: decoders unused for `max_age_s`, then the
    least recently used until the rest fit in `max_bytes`, and temporary files a killed writer left. Only regular
    files of the cache's own names are touched (never a link, a folder, or another file someone put there).
    Returns the names removed."""
    now = time.time()
    kept, removed = [], []
    with os.scandir(cache) as it:
        for entry in it:
            if not entry.is_file(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
            temporary = entry.name.startswith(".") and entry.name.endswith(".tmp")
            if temporary and now - info.st_mtime > STALE_TEMP_S or (
                    not temporary and entry.name.endswith(".onnx") and now - info.st_mtime > max_age_s):
                removed.append(entry.name)
            elif entry.name.endswith(".onnx"):
                kept.append((info.st_mtime, info.st_size, entry.name))
    total = sum(size for _, size, _ in kept)
    for _, size, name in sorted(kept):  # oldest use first
        if total <= max_bytes:
            break
        removed.append(name)
        total -= size
    for name in removed:
        with contextlib.suppress(OSError):
            (cache / name).unlink()
    return removed


def export_decoder(folder: str | Path) -> Path:
    """Write `decoder.onnx` into a model folder (atomically), verified against PyTorch on 64 latents.

    Raises:
        CheckpointError: the folder cannot be loaded, or the export differs from the PyTorch decoder.
    """
    folder = Path(folder)
    data = derived_decoder(load_model(folder).model, folder, n=64)
    atomic_write_bytes(folder / DECODER_ONNX, data)
    return folder / DECODER_ONNX


def check_parity(model: VAE, onnx_data: bytes, n: int = 64, seed: int = 0, scale: float = 3.0) -> float:
    """Max abs difference between onnxruntime (CPU) and `model.decode_image` on n random latents
    (N(0, scale^2), wider than the prior, so the sliders' whole range is covered) and at the origin."""
    import onnxruntime as ort

    g = torch.Generator().manual_seed(seed)
    z = torch.cat([torch.zeros(1, model.latent_dim), scale * torch.randn(n, model.latent_dim, generator=g)])
    with torch.inference_mode():
        expected = model.decode_image(z).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_data, options, providers=["CPUExecutionProvider"])
    got = session.run(["image"], {"z": z.numpy()})[0]
    if got.shape != expected.shape:
        raise CheckpointError(f"ONNX decoder returns shape {got.shape}, expected {expected.shape}")
    return float(np.abs(got - expected).max())


def export_onnx_folder(obj, out: str | Path, dataset: str | None = None) -> Path:
    """Write an ONNX folder (explorer.json, encoder.onnx, decoder.onnx: vae_core.onnx_folder) from any object with
    encode and decode and its sizes (vae_core.python_models), so a model can be handed over as files that run no
    code. The folder is opened again and must decode as `obj` does (PARITY_TOLERANCE); CheckpointError otherwise."""
    import json

    from .models.external import ExternalModel
    from .onnx_folder import DECODER, ENCODER, MANIFEST, ONNX_FORMAT, load_onnx_folder
    from .python_models import adapt

    model = obj if isinstance(obj, ExternalModel) else adapt(obj, type(obj).__name__)[0]
    m = model.config
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x, z = torch.rand(2, m.channels, m.image_size, m.image_size), torch.zeros(2, m.latent_dim)
    graphs = {ENCODER: (_Calls(model, "encode"), x, ["x"], ["mu", "logvar"]),
              DECODER: (_Calls(model), z, ["z"], ["x"])}
    for name, (net, example, inputs, outputs) in graphs.items():
        buf = io.BytesIO()
        with _EXPORTING, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(net.eval(), (example,), buf, dynamo=False, opset_version=OPSET, input_names=inputs,
                              output_names=outputs, dynamic_axes={n: {0: "batch"} for n in inputs + outputs})
        atomic_write_bytes(out / name, buf.getvalue())
    manifest = {"format": ONNX_FORMAT, "image_size": m.image_size, "channels": m.channels,
                "latent_dim": m.latent_dim, "decoder_output": "probabilities", "likelihood": m.likelihood,
                "dataset": dataset or "unknown"}
    atomic_write_bytes(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    exported, _ = load_onnx_folder(out)
    g = torch.Generator().manual_seed(0)
    points = 3 * torch.randn(16, m.latent_dim, generator=g)
    with torch.inference_mode():
        try:
            diff = float((exported.decode_image(points) - model.decode_image(points)).abs().max())
        except Exception as exc:  # noqa: BLE001  onnxruntime's failure on the exported graph
            raise CheckpointError(f"{out}: the exported decoder cannot decode a batch of {len(points)} "
                                  f"({type(exc).__name__}: {str(exc)[:200]}); a size taken from the input in the "
                                  "model's code (len(x), x.shape[0]) is fixed when it is exported: write -1") from None
    if not diff <= PARITY_TOLERANCE:
        raise CheckpointError(f"{out}: the exported decoder differs from the model by {diff:.3g}")
    return out


def onnx_metadata(data: bytes) -> dict[str, str]:
    import onnx

    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # noqa: BLE001  any parse failure means "not a usable file"
        raise CheckpointError(f"not a valid ONNX file ({type(exc).__name__})") from None
    return {p.key: p.value for p in proto.metadata_props}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="model folders: write each one's decoder.onnx")
    parser.add_argument("--onnx-folder", type=Path, metavar="OUT",
                        help="write an ONNX folder (explorer.json, encoder.onnx, decoder.onnx) of --model to OUT")
    parser.add_argument("--model", metavar="PKG.MODULE:FUNCTION",
                        help="a function returning a model with encode, decode, image_size and channels")
    args = parser.parse_args(argv)
    if args.onnx_folder or args.model:
        if not (args.onnx_folder and args.model):
            parser.error("--onnx-folder OUT and --model PKG.MODULE:FUNCTION go together")
        from .python_models import load_python_model, register

        sys.path.insert(0, str(Path.cwd()))
        try:
            path = register(args.model)
            model, config = load_python_model(path)
            out = export_onnx_folder(model, args.onnx_folder, config.train.dataset)
        except (ValueError, CheckpointError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{out}: explorer.json, encoder.onnx, decoder.onnx (decodes as the model does)")
        return 0
    if not args.folders:
        parser.error("name model folders, or --onnx-folder OUT --model PKG.MODULE:FUNCTION")
    failed = 0
    for folder in args.folders:
        try:
            path = export_decoder(folder)
        except CheckpointError as exc:
            print(f"{folder}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: {path.stat().st_size:,} bytes, parity checked")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
