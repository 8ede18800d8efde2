"""A model folder's cost budget: what opening it would cost the server and each browser, judged from config.json and
the headers of its files before anything heavy runs (before the weights reach torch, a projection is read or a
decoder exported). Beyond a limit the folder is refused as too large, in words naming the figure and the limit
(`FolderTooLarge`); `folder_safety.check_folder` asks this for every folder it lists or opens.

The figures, and the largest of the shipped zoo (pretrained/), measured by `folder_cost`:

| figure | what it costs | zoo's largest | limit |
| --- | --- | --- | --- |
| weights | server memory: the tensors torch holds (float32) | 3.5 MB (faces-vae-gan) | 16 MB |
| compute | server time: multiply-adds of one image's encode and decode, as the app's data sample runs them | 71 M (dsprites-cvae, three conditions tried) | 100 M |
| activations | server memory: the largest tensor one image makes on the way, times the 256 of a batch | 128 KB | 256 KB |
| browser decoder | what every browser downloads for live dragging (the ONNX export of the decoder) | 1.5 MB | 8 MB |
| projection | latent_dim x points of projection.npz: memory, and the latent map's message to each browser | 100,000 (10 x 10,000) | 2,000,000 |

Weights and compute are figures of the network config.json describes (a meta-device pass: no byte allocated): the
weights file must match that network exactly or loading refuses it after reading its header, so a file cannot cost
more than its config says. An ONNX folder (a model from other code) is judged by its graphs' file sizes.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from . import onnx_folder
from .checkpoints import CONFIG_FILE, PROJECTION_FILE, CheckpointError, load_config
from .config import ConfigError
from .kinds import kind

MB = 1_000_000
README = "the README's 'Your own images and models' gives the budget"


@dataclass(frozen=True)
class Budget:
    """The most a folder may cost (see the module's table for the zoo's figures)."""

    weights_bytes: int = 16 * MB  # 4.5x the zoo's largest; loading and exporting hold a few copies at once (file,
    # tensors, the decoder's export): a 30 MB network kept 550 MB after its first Explore, a 22 MB one 225 MB
    multiply_adds: int = 100_000_000  # per image: the 2,000 images of the app's data sample in about 10 s on one
    # thread of a loaded 2-core machine (measured 20 G multiply-adds/s on wide layers, 9 on the zoo's narrow ones)
    activation_bytes: int = 256 * 1024  # per image, the largest tensor; a batch of 256 then holds 64 MB each
    decoder_bytes: int = 8 * MB  # 5x the zoo's; every browser downloads it (gzip saves little on float weights)
    projection_values: int = 2_000_000  # latent x points: an MNIST-size map (60,000 points) of a 32-latent model;
    # means and logvars in float32: 16 MB; the map's message sends two coordinates a point, whatever the latent


BUDGET = Budget()

LABELS = {  # figure -> (how it is named in a message, its unit)
    "weights_bytes": ("its network's weights", "bytes"),
    "multiply_adds": ("encoding and decoding one image", "multiply-adds"),
    "activation_bytes": ("the largest tensor one image makes", "bytes"),
    "decoder_bytes": ("the decoder sent to each browser", "bytes"),
    "projection_values": ("projection.npz's latents (points x latent_dim)", "values"),
}


@dataclass(frozen=True)
class Cost:
    """What a folder would cost, in the units of `Budget`; None where a figure is not judged here (an ONNX folder's
    compute: its first encode and decode are timed when it is opened)."""

    weights_bytes: int
    multiply_adds: int | None
    activation_bytes: int | None
    decoder_bytes: int
    projection_values: int

    def over(self, budget: Budget = BUDGET) -> list[str]:
        """Each figure over its limit, in words: "its network's weights: 117.7 MB, over the 16.0 MB limit"."""
        words = []
        for f in fields(Budget):
            value, limit = getattr(self, f.name), getattr(budget, f.name)
            if value is not None and value > limit:
                label, unit = LABELS[f.name]
                words.append(f"{label}: {_amount(value, unit)}, over the {_amount(limit, unit)} limit")
        return words


class FolderTooLarge(CheckpointError):
    """A model folder over the budget; the message names each figure over its limit and the limit."""


def _amount(value: int, unit: str) -> str:
    if unit == "bytes":
        return f"{value / MB:,.1f} MB" if value >= MB else f"{value / 1024:,.0f} KB"
    return f"{value / 1e9:,.1f} G {unit}" if value >= 1e9 else f"{value / 1e6:,.1f} M {unit}" if value >= 1e6 \
        else f"{value:,} {unit}"


# ---- the network's figures, from its config, on the meta device

_BATCH = 5  # images in the meta pass: an op's output whose first dimension is this is an activation


_SCALAR_OPS = frozenset((torch.ops.aten._local_scalar_dense.default, torch.ops.aten.item.default))


class _Activations(TorchDispatchMode):
    """Notes the largest per-image op output of a pass; a number read from a tensor (meta tensors hold none: a
    CVAE checks its condition's range) is taken as 1."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _SCALAR_OPS:
            return 1
        if func is torch.ops.aten.is_nonzero.default:
            return True
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.ndim and t.shape[0] == _BATCH:
                self.largest = max(self.largest, t.numel() * t.element_size() // _BATCH)
        return out


def network_cost(model_config) -> tuple[int, int, int, int]:
    """(weights bytes, multiply-adds per image, largest activation bytes per image, browser decoder bytes) of the
    network a config describes, without allocating it. The pass is the one the app's data sample runs
    (`encode_decode`: a CVAE tries each condition), else the network's forward."""
    record = kind(model_config.kind)
    with torch.device("meta"):
        model = record.build(model_config).eval()
        x = torch.zeros(_BATCH, model_config.channels, model_config.image_size, model_config.image_size)
        weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        counter, activations = FlopCounterMode(display=False), _Activations()
        with torch.no_grad(), counter, activations:
            (getattr(model, "encode_decode", None) or model)(x)
        decoder = _decoder_bytes(model, model_config) if record.decodes_from_z else 0
    return weights, counter.get_total_flops() // 2 // _BATCH, activations.largest, decoder


def _decoder_bytes(model, model_config) -> int:
    """The weights `decode_image` uses: what its ONNX export carries (the graph itself adds a few KB)."""
    used = []
    hooks = [m.register_forward_hook(lambda m, i, o: used.append(m)) for m in model.modules()]
    try:
        with torch.no_grad():
            model.decode_image(torch.zeros(1, model_config.latent_dim))
    finally:
        for h in hooks:
            h.remove()
    params = {id(p): p for m in used for p in m.parameters(recurse=False)}
    return sum(p.numel() * p.element_size() for p in params.values())


# ---- a folder's figures

def projection_values(folder: Path) -> int:
    """points x latent_dim of projection.npz's means, read from its npy header alone; 0 without a readable one
    (loading the projection says what is wrong with it)."""
    path = folder / PROJECTION_FILE
    if not path.is_file() or path.is_symlink():
        return 0
    try:
        with zipfile.ZipFile(path) as archive, archive.open("means.npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape = read(f, max_header_size=10_000)[0]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError):
        return 0
    return int(np.prod(shape, dtype=np.float64))


def _file_size(folder: Path, name: str) -> int:
    try:
        return (folder / name).stat().st_size
    except OSError:
        return 0


def folder_cost(folder: str | Path) -> Cost | None:
    """The folder's figures; None when its config (or an ONNX folder's manifest) does not validate: loading it
    refuses it then, naming the problem."""
    folder = Path(folder)
    if onnx_folder.is_onnx_folder(folder):
        decoder = _file_size(folder, onnx_folder.DECODER)
        return Cost(decoder + _file_size(folder, onnx_folder.ENCODER), None, None, decoder, projection_values(folder))
    try:
        config = load_config(folder)
    except (CheckpointError, ConfigError, ValueError):
        return None
    weights, multiply_adds, activations, decoder = _network_cost_cached(config.model)
    return Cost(weights, multiply_adds, activations, decoder, projection_values(folder))


_network_costs: dict[str, tuple[int, int, int, int]] = {}  # a config's JSON -> its figures (a meta pass: 15-70 ms)
MAX_CACHED = 256


def _network_cost_cached(model_config) -> tuple[int, int, int, int]:
    import json

    key = json.dumps(model_config.to_dict(), sort_keys=True, default=str)
    if key not in _network_costs:
        if len(_network_costs) >= MAX_CACHED:
            _network_costs.clear()
        _network_costs[key] = network_cost(model_config)
    return _network_costs[key]


def check_budget(folder: str | Path, budget: Budget = BUDGET) -> Cost | None:
    """Refuse a folder over the budget (FolderTooLarge, naming each figure over its limit); its Cost otherwise."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file() and not onnx_folder.is_onnx_folder(folder):
        return None
    cost = folder_cost(folder)
    over = cost.over(budget) if cost is not None else []
    if over:
        raise FolderTooLarge(f"{folder}: too large to open here: {'; '.join(over)} ({README})")
    return cost
