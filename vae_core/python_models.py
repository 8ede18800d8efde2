"""Models from the Python code of the person who starts the server: `--model pkg.module:function` on the serve
command (`python -m app.serve --model ...`, `vae-explorer serve --model ...`) names a function that returns a model.

The code runs because that person named it on their own command line, in the server's own process; nothing in a
model folder, a link or a page can add to `REGISTERED` (it is filled only by `register`, called by the serve command
and by tests). The function is called when the model is first opened, and its result checked like any model from
other code (`vae_core.contract.check_explorable`, under a time limit).

What the function returns: any object (a `torch.nn.Module` or not) with
- `encode(x)`: x (N, C, H, W) float32 in [0, 1] -> mu (N, D), or (mu, logvar);
- `decode(z)`: z (N, D) -> images (N, C, H, W);
- `image_size` and `channels` (the images it takes); optional: `latent_dim` (else read from one trial encode),
  `decoder_output` ("probabilities", the default, or "logits"), `likelihood` ("bernoulli" or "gaussian"),
  `dataset` (the name of its data, for the pages that show data) and `name` (for the model picker).
"""

from __future__ import annotations

import importlib
import re
import time

import torch

from .config import ExperimentConfig
from .contract import ContractError, check_explorable
from .models.external import IMAGE_SIZES, ExternalModel
from .onnx_folder import OUTPUTS, TRIAL_SECONDS, ExternalError, Manifest, experiment_config

PREFIX = "python:"  # a registered model's path in the model list: python:pkg.module:function
SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
REGISTERED: dict[str, str] = {}  # path -> "pkg.module:function", as named on the serve command line


def register(spec: str) -> str:
    """Name a function to be listed as a model (the serve command's --model); returns its path in the model list."""
    if not SPEC.match(spec):
        raise ValueError(f"--model {spec!r}: name a function as package.module:function, e.g. mypkg.models:load_vae")
    path = PREFIX + spec
    REGISTERED[path] = spec
    return path


def is_registered(path: str) -> bool:
    return str(path) in REGISTERED


def load_python_model(path: str) -> tuple[ExternalModel, ExperimentConfig]:
    """Call a registered function and adapt what it returns to the contract; ExternalError naming what is wrong."""
    spec = REGISTERED[str(path)]
    module_name, function_name = spec.split(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        obj = function()
    except Exception as exc:  # noqa: BLE001  the named code failing is reported, not raised into the page
        raise ExternalError(f"{spec}: calling it raised {type(exc).__name__}: {str(exc)[:300]}") from None
    return adapt(obj, spec)


def adapt(obj, spec: str = "model") -> tuple[ExternalModel, ExperimentConfig]:
    """Any object with encode and decode (and its sizes) as an ExternalModel, checked once."""
    for method in ("encode", "decode"):
        if not callable(getattr(obj, method, None)):
            raise ExternalError(f"{spec}: the object it returns has no {method}(...) method; the contract asks for "
                                "encode(x) -> mu or (mu, logvar), and decode(z) -> images")
    size, channels = getattr(obj, "image_size", None), getattr(obj, "channels", None)
    if not isinstance(size, int) or not IMAGE_SIZES[0] <= size <= IMAGE_SIZES[1] or channels not in (1, 3):
        raise ExternalError(f"{spec}: say the images it takes as attributes image_size (an integer from "
                            f"{IMAGE_SIZES[0]} to {IMAGE_SIZES[1]}) and channels (1 or 3); got image_size={size!r}, "
                            f"channels={channels!r}")
    output = getattr(obj, "decoder_output", "probabilities")
    if output not in OUTPUTS:
        raise ExternalError(f"{spec}: decoder_output is \"probabilities\" or \"logits\", got {output!r}")
    if isinstance(obj, torch.nn.Module):
        obj.eval()

    def encode(x: torch.Tensor):
        out = obj.encode(x)
        if isinstance(out, (tuple, list)):
            if not 1 <= len(out) <= 2:
                raise ContractError(f"encode(x) returns mu or (mu, logvar); got {len(out)} values")
            return out[0], out[1] if len(out) == 2 else None
        return out, None

    def decode(z: torch.Tensor):
        return obj.decode(z)

    latent_dim = getattr(obj, "latent_dim", None)
    with torch.inference_mode():
        try:
            mu, logvar = encode(torch.zeros(1, channels, size, size))
        except Exception as exc:  # noqa: BLE001  anyone's code
            raise ExternalError(f"{spec}: encode(x) of one blank {channels}x{size}x{size} image raised "
                                f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(mu, torch.Tensor) or mu.ndim != 2:
        raise ExternalError(f"{spec}: encode(x) gives mu of shape (N, latent_dim); got "
                            f"{getattr(mu, 'shape', type(mu).__name__)}")
    latent_dim = latent_dim if isinstance(latent_dim, int) else int(mu.shape[1])
    manifest = Manifest(size, channels, latent_dim, output, str(getattr(obj, "dataset", "unknown"))[:200] or "unknown",
                        getattr(obj, "likelihood", "bernoulli"))
    try:
        config = experiment_config(manifest)
    except ValueError as exc:
        raise ExternalError(f"{spec}: {exc}") from None
    model = ExternalModel(config.model, encode, decode, output, logvar is not None, "python").eval()
    began = time.perf_counter()
    try:
        check_explorable(model)
    except ContractError as exc:
        raise ExternalError(f"{spec}: {exc}") from None
    if time.perf_counter() - began > TRIAL_SECONDS:
        raise ExternalError(f"{spec}: encoding and decoding two images took over {TRIAL_SECONDS:g} s")
    if isinstance(obj, torch.nn.Module):
        model.inner = obj  # its parameters: the device the contract puts inputs on
    return model, config
