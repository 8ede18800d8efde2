"""Hostile model folders: each is refused with a CheckpointError naming the file and the problem, before any large
allocation, and nothing in a folder runs code. Saves are atomic: a failure or a SIGKILL mid-save leaves whole files.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as save_bytes

from vae_core import checkpoints as ckpt
from vae_core import folder_safety
from vae_core.checkpoints import PRETRAINED_DIR

ROOT = Path(__file__).resolve().parent.parent
MARKER_ENV = "VAE_TEST_PICKLE_MARKER"


class _Payload:
    """Unpickling this touches a marker file: proof that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _header_file(header: dict, data: bytes = b"", header_len: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if header_len is None else header_len) + text + data


def _refused(folder: Path, *patterns: str) -> str:
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.load_model(folder)
    message = str(info.value)
    for pattern in patterns:
        assert pattern in message, message
    return message


# ---- pickles: refused by name and by content, and never unpickled

@pytest.mark.parametrize("name, how", [("model.pt", "torch"), ("weights.pkl", "pickle"), ("notes.txt", "pickle"),
                                       ("model.bin", "torch"), ("extra.ckpt", "bytes")])
def test_a_folder_holding_a_pickle_is_refused_and_nothing_runs(tiny_model_folder, tmp_path, name, how):
    folder, _ = tiny_model_folder
    marker = tmp_path / "code-ran"
    path = folder / name
    if how == "torch":
        torch.save({"payload": _Payload(str(marker)), "w": torch.zeros(2)}, path)  # a zip holding data.pkl
    elif how == "pickle":
        path.write_bytes(pickle.dumps(_Payload(str(marker)), protocol=4))
    else:
        path.write_bytes(b"anything: the name alone says pickle")
    _refused(folder, name, "pickle")
    entries = {e.name: e for e in ckpt.list_models(extra=[folder.parent])}
    assert name in entries["tiny"].error and "pickle" in entries["tiny"].error
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 1])
def test_protocol_0_and_1_pickles_have_no_header_and_are_still_refused(tiny_model_folder, tmp_path, protocol):
    folder, _ = tiny_model_folder
    marker = tmp_path / "code-ran"
    (folder / "notes.bin").write_bytes(pickle.dumps(_Payload(str(marker)), protocol=protocol))
    _refused(folder, "notes.bin", "pickle")
    assert not marker.exists()


def test_a_zip_holding_a_pickle_under_any_name_is_refused(tiny_model_folder, tmp_path):
    import io
    import zipfile

    folder, _ = tiny_model_folder
    marker = tmp_path / "code-ran"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("archive/data", pickle.dumps(_Payload(str(marker)), protocol=0))
    (folder / "extra.zip").write_bytes(buf.getvalue())
    _refused(folder, "extra.zip", "pickle")
    assert not marker.exists()


def test_text_and_the_shipped_files_are_not_taken_for_pickles(tiny_model_folder):
    folder, _ = tiny_model_folder
    (folder / "notes.md").write_text("c\nos\nsystem is a word here, not an opcode.\n")
    ckpt.load_model(folder)
    for path in PRETRAINED_DIR.glob("*/*"):
        assert not folder_safety._looks_like_pickle(path), path


def test_a_pickle_under_a_model_file_name_is_refused_and_not_run(tiny_model_folder, tmp_path):
    folder, _ = tiny_model_folder
    marker = tmp_path / "code-ran"
    for name in (ckpt.WEIGHTS_FILE, ckpt.CONFIG_FILE, ckpt.CARD_FILE, ckpt.PROJECTION_FILE):
        original = (folder / name).read_bytes() if (folder / name).exists() else None
        (folder / name).write_bytes(pickle.dumps(_Payload(str(marker)), protocol=2))
        _refused(folder, name)
        if original is None:
            (folder / name).unlink()
        else:
            (folder / name).write_bytes(original)
    assert not marker.exists()
    ckpt.load_model(folder)  # whole again


# ---- safetensors files that lie

def _valid_header(model) -> tuple[dict, bytes]:
    raw = save_bytes(_state(model))
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


@pytest.mark.parametrize("case, expected", [
    ("header_len_huge", "over the 1000000-byte limit"),
    ("header_len_past_end", "truncated"),
    ("header_not_json", "corrupt safetensors header"),
    ("header_a_list", "not a JSON object"),
    ("header_nested_deep", "nested too deeply"),
    ("header_huge_int", "corrupt safetensors header"),
    ("offsets_strings", "is malformed"),
    ("shape_negative", "is malformed"),
    ("shape_bool", "is malformed"),
    ("extra_key", "is malformed"),
    ("metadata_not_strings", "__metadata__"),
    ("shape_lie", "has shape"),
    ("dtype_f16", "F16 tensor needs"),  # float16 may be stored, but its bytes must be float16's
    ("dtype_bf16", "dtype BF16"),
    ("dtype_unknown", "dtype XYZ"),
    ("offsets_overlap", "byte offsets"),
    ("offsets_too_small", "byte offsets"),
    ("padded", "truncated or padded"),
    ("truncated", "truncated or padded"),
    ("extra_tensor", "unexpected ['evil']"),
    ("missing_tensor", "missing ["),
    ("empty", "no header"),
])
def test_lying_safetensors_are_refused_by_name(tiny_model_folder, case, expected):
    folder, model = tiny_model_folder
    header, data = _valid_header(model)
    first, second = sorted(header, key=lambda k: header[k]["data_offsets"])[:2]
    raw = None
    if case == "header_len_huge":
        raw = _header_file(header, data, header_len=2**62)
    elif case == "header_len_past_end":
        raw = _header_file(header, data, header_len=len(json.dumps(header)) + len(data) + 10)
    elif case == "header_not_json":
        raw = struct.pack("<Q", 10) + b"{not json!" + data
    elif case == "header_a_list":
        raw = struct.pack("<Q", 2) + b"[]" + data
    elif case == "header_nested_deep":
        text = b"[" * 200_000 + b"]" * 200_000
        raw = struct.pack("<Q", len(text)) + text
    elif case == "header_huge_int":
        text = b'{"x": ' + b"9" * 50_000 + b"}"
        raw = struct.pack("<Q", len(text)) + text
    elif case == "offsets_strings":
        header[first]["data_offsets"] = ["0", "4"]
    elif case == "shape_negative":
        header[first]["shape"] = [-1, 4]
    elif case == "shape_bool":
        header[first]["shape"] = [True]
    elif case == "extra_key":
        header[first]["code"] = "import os"
    elif case == "metadata_not_strings":
        header["__metadata__"] = {"a": {"b": 1}}
    elif case == "shape_lie":
        header[first]["shape"] = header[first]["shape"][::-1] + [1]
    elif case == "dtype_f16":
        header[first]["dtype"] = "F16"
    elif case == "dtype_bf16":
        header[first]["dtype"] = "BF16"
    elif case == "dtype_unknown":
        header[first]["dtype"] = "XYZ"
    elif case == "offsets_overlap":
        header[second]["data_offsets"][0] -= 4
    elif case == "offsets_too_small":
        header[first]["data_offsets"][1] -= 4
        header[second]["data_offsets"][0] -= 4
    elif case == "padded":
        data += bytes(64)
    elif case == "truncated":
        data = data[:-64]
    elif case == "extra_tensor":
        end = max(v["data_offsets"][1] for v in header.values())
        header["evil"] = {"dtype": "F32", "shape": [1], "data_offsets": [end, end + 4]}
        data += bytes(4)
    elif case == "missing_tensor":
        del header[first]
    elif case == "empty":
        raw = b""
    (folder / ckpt.WEIGHTS_FILE).write_bytes(_header_file(header, data) if raw is None else raw)
    _refused(folder, "model.safetensors", expected)


def test_nan_weights_are_refused(tiny_model_folder):
    folder, model = tiny_model_folder
    state = _state(model)
    name = next(iter(state))
    state[name].view(-1)[0] = float("nan")
    (folder / ckpt.WEIGHTS_FILE).write_bytes(save_bytes(state))
    _refused(folder, "model.safetensors", f"{name} holds NaN or infinite values")


def test_a_lying_header_is_refused_before_the_weights_are_read(tiny_model_folder):
    """A 150 MB file whose header lies about a shape: refused having read a few KB, not 150 MB."""
    folder, model = tiny_model_folder
    header, data = _valid_header(model)
    first = next(iter(header))
    header[first]["shape"] = [10_000, 3_000]
    path = folder / ckpt.WEIGHTS_FILE
    path.write_bytes(_header_file(header, data))
    with open(path, "r+b") as f:
        f.truncate(150_000_000)  # sparse: no disk used
    tracemalloc.start()
    try:
        _refused(folder, "has shape")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"{peak / 1e6:.0f} MB allocated before refusing"


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=4), max_leaves=20),
       keep=st.booleans())
def test_fuzz_safetensors_headers(tmp_path_factory, header, keep):
    """Arbitrary JSON as a header (or merged into a valid one): refused with CheckpointError, never another error."""
    folder = tmp_path_factory.getbasetemp() / "fuzz-header"
    if not (folder / ckpt.CONFIG_FILE).exists():
        from vae_core.models.vae import VAE

        from .helpers import tiny_config

        torch.manual_seed(0)
        ckpt.save_model(folder, VAE(tiny_config().model), tiny_config())
    model = ckpt.load_model(folder).model
    valid, data = _valid_header(model)
    if keep and isinstance(header, dict):
        header = {**valid, **header}  # a new dict: `valid` stays the header the model was saved with
    (folder / ckpt.WEIGHTS_FILE).write_bytes(_header_file(header, data))
    try:
        ckpt.load_model(folder)
    except ckpt.CheckpointError as exc:
        assert "model.safetensors" in str(exc)
    else:
        assert header == valid  # only an unchanged header loads
    (folder / ckpt.WEIGHTS_FILE).write_bytes(save_bytes(_state(model)))


# ---- config.json (and card.json) that lie

@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["model"].update(latent_dim=1_000_000_000), "latent_dim=1000000000 is outside"),
    (lambda c: c["model"].update(conv_channels=[10**9] * 4), "conv_channels[i]=1000000000 is outside"),
    (lambda c: c["model"].update(hidden_dim="256"), "hidden_dim must be an integer"),
    (lambda c: c["model"].update(latent_dim=True), "latent_dim must be an integer"),
    (lambda c: c["model"].update(latent_dim=4.0), "latent_dim must be an integer"),
    (lambda c: c["model"].update(image_size=[64]), "image_size=(64,) is not one of"),
    (lambda c: c["model"].update(gaussian_std=float("nan")), "gaussian_std=nan is outside"),
    (lambda c: c["model"].update(evil="__import__('os')"), "unknown key(s) ['evil']"),
    (lambda c: c.update(extra=1), "unknown key(s) ['extra']"),
    (lambda c: c.update(format_version=True), "format_version True is not supported"),
    (lambda c: c.update(model=[1, 2]), "model: expected a JSON object"),
    (lambda c: c["train"].update(data_root=7), "data_root must be a folder name"),
    (lambda c: c["train"].update(steps=-1), "steps=-1 is outside"),
    (lambda c: c["dataset"].update(factor_sizes=["a"] * 6), "factor_sizes[] must be an integer"),
    (lambda c: c["dataset"].update(factor_names=[1, 2, 3, 4, 5, 6]), "factor_names must list strings"),
    (lambda c: c["dataset"].update(name={"a": 1}), "dataset.name must be a string"),
])
def test_bad_configs_are_refused_by_name(tiny_model_folder, edit, expected):
    folder, _ = tiny_model_folder
    config = json.loads((folder / ckpt.CONFIG_FILE).read_text())
    edit(config)
    (folder / ckpt.CONFIG_FILE).write_text(json.dumps(config))
    message = _refused(folder, "config.json", expected)
    assert message.count("config.json") == 1
    entries = {e.name: e for e in ckpt.list_models(extra=[folder.parent])}
    assert expected in entries["tiny"].error


@pytest.mark.parametrize("name", [ckpt.CONFIG_FILE, ckpt.CARD_FILE])
@pytest.mark.parametrize("text, expected", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"a": ' + b"1" * 20_000 + b"}", "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    (b"{" + b" " * 1_100_000 + b"}", "over the 1000000-byte limit"),
    (b"", "not valid JSON"),
    (b"null", "expected a JSON object"),
])
def test_hostile_json_is_refused_by_name(tiny_model_folder, name, text, expected):
    folder, _ = tiny_model_folder
    (folder / name).write_bytes(text)
    _refused(folder, name, expected)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(section=st.sampled_from(["model", "train", "dataset", None]), key=st.text(max_size=12),
       value=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=3), max_leaves=10),
       use_known_key=st.booleans())
def test_fuzz_configs(section, key, value, use_known_key):
    """Any value under any key of a valid config: a validated config or a ConfigError, never another error."""
    from vae_core.config import ConfigError, ExperimentConfig

    from .helpers import tiny_config

    config = tiny_config().to_dict()
    target = config if section is None else config[section]
    if use_known_key:
        key = sorted(target)[len(key) % len(target)]
    target[key] = value
    try:
        exp = ExperimentConfig.from_dict(json.loads(json.dumps(config)))
    except ConfigError:
        return
    assert 1 <= exp.model.latent_dim <= 512 and exp.model.image_size in (32, 64)
    assert all(isinstance(n, str) for n in exp.dataset.factor_names)


# ---- links and special files

@pytest.mark.parametrize("name", [ckpt.WEIGHTS_FILE, ckpt.CONFIG_FILE, ckpt.CARD_FILE])
def test_links_out_of_the_folder_are_refused(tiny_model_folder, tmp_path, name):
    folder, _ = tiny_model_folder
    outside = tmp_path / f"outside-{name}"
    (folder / name).rename(outside)
    (folder / name).symlink_to(outside)
    _refused(folder, name, "outside the model folder")
    (folder / name).unlink()
    (folder / name).symlink_to("/dev/zero")
    _refused(folder, name, "outside the model folder")


@pytest.mark.timeout(20)
def test_fifos_neither_block_nor_load(tiny_model_folder):
    folder, _ = tiny_model_folder
    os.mkfifo(folder / "stray.fifo")  # never opened: opening a FIFO blocks until a writer comes
    ckpt.load_model(folder)
    (folder / ckpt.WEIGHTS_FILE).unlink()
    os.mkfifo(folder / ckpt.WEIGHTS_FILE)
    _refused(folder, "model.safetensors", "not a regular file")


def test_a_folder_of_too_many_files_is_refused(tiny_model_folder):
    folder, _ = tiny_model_folder
    for i in range(ckpt.MAX_FOLDER_ENTRIES + 1):
        (folder / f"f{i}").touch()
    _refused(folder, "over 1000 entries")


# ---- atomic saves

def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_a_save_that_fails_part_way_changes_nothing(tiny_model_folder, monkeypatch, fail_at):
    """The write of the fail_at-th file fails (disk full): every previous file stays as it was, no temp is left."""
    folder, model = tiny_model_folder
    before = _snapshot(folder)
    exp = ckpt.load_config(folder)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    calls = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        ckpt.save_model(folder, model, exp, {"objective": "vae", "new": True})
    assert _snapshot(folder) == before


SAVER = textwrap.dedent("""
    import sys, torch
    from vae_core import checkpoints as ckpt
    from vae_core.models.vae import VAE
    from tests.helpers import tiny_config
    exp = tiny_config()
    models = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        models.append(VAE(exp.model))
    print("ready", flush=True)
    i = 0
    while True:
        ckpt.save_model(sys.argv[1], models[i % 2], exp, {"objective": "vae", "seed": 1 + i % 2, "pad": "x" * 50000})
        i += 1
""")


def test_sigkill_during_saves_never_leaves_a_half_written_folder(tmp_path):
    """A process saving two models in turn, killed at random moments: the folder always loads, whole, as one
    of the two (weights and card from the same save or adjacent saves, never a torn file)."""
    import random

    from vae_core.models.vae import VAE

    from .helpers import tiny_config

    exp = tiny_config()
    expected = {}
    for seed in (1, 2):
        torch.manual_seed(seed)
        expected[seed] = VAE(exp.model).state_dict()
    folder = tmp_path / "m"
    rng = random.Random(0)
    rounds = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not (folder / ckpt.WEIGHTS_FILE).exists():
            continue  # killed before the first save finished: nothing written, which is whole too
        loaded = ckpt.load_model(folder)
        state = loaded.model.state_dict()
        match = [s for s, ref in expected.items() if all(torch.equal(state[k], ref[k]) for k in ref)]
        assert len(match) == 1 and loaded.card["seed"] in (1, 2)
        rounds += 1
    assert rounds >= 2


def test_a_safetensors_header_length_that_starts_like_a_pickle_opcode_is_not_a_pickle(tmp_path):
    prefix = b'{"__metadata__":{"pad":"'
    header = prefix + b" " * (0x0580 - len(prefix) - 3) + b'"}}'
    assert len(header) == 0x0580  # the length's first two bytes, 80 05, are pickle's PROTO 5 opcode
    safetensors_like = tmp_path / "model.safetensors"
    safetensors_like.write_bytes(len(header).to_bytes(8, "little") + header)
    assert safetensors_like.read_bytes()[:2] == b"\x80\x05"
    assert not folder_safety._looks_like_pickle(safetensors_like)
    real = tmp_path / "real.bin"
    real.write_bytes(pickle.dumps({"w": 1}, protocol=5))
    assert folder_safety._looks_like_pickle(real)
