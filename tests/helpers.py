"""Helpers for the tests: tiny configs that train in a second on the CPU; image files with forged headers."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from vae_core.config import DatasetInfo, ExperimentConfig, ModelConfig, TrainConfig
from vae_core.data import GROUND_TRUTH

TINY = {"conv_channels": (4, 4, 8, 8), "hidden_dim": 16}
TINY_CARD = {"objective": "vae"}  # the card of conftest's tiny_model_folder


def tiny_config(image_size: int = 64, channels: int = 1, latent_dim: int = 4, dataset: str | None = None,
                likelihood: str = "bernoulli", model: dict | None = None, **train) -> ExperimentConfig:
    """A config small enough to train in a second on the CPU: every test's tiny model starts here.

    dataset: None is dSprites' factors for one channel and faces for three; a named dataset with factors (a
    procedural one) records them, as a trained folder would. model: more ModelConfig fields (a kind's own);
    the rest are TrainConfig fields."""
    dataset = dataset or ("dsprites" if channels == 1 else "faces")
    info = DatasetInfo(dataset)
    if dataset in GROUND_TRUTH:
        truth = GROUND_TRUTH[dataset]()
        info = DatasetInfo(dataset, tuple(truth.factor_names), tuple(truth.factor_sizes))
    return ExperimentConfig(
        model=ModelConfig(image_size=image_size, channels=channels, latent_dim=latent_dim, likelihood=likelihood,
                          **{**TINY, **(model or {})}),
        train=TrainConfig(**{"dataset": dataset, "objective": "vae", "steps": 10, "batch_size": 8, "log_every": 2,
                             **train}),
        dataset=info,
    )


def _fix_png_crcs(data: bytearray) -> bytes:
    """Recompute every PNG chunk CRC, so that forged fields get past the checksum to the parser."""
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        end = pos + 8 + length
        if end + 4 > len(data):
            break
        data[end:end + 4] = struct.pack(">I", zlib.crc32(bytes(data[pos + 4:end])))
        pos = end + 4
    return bytes(data)


def _forge(fmt: str, width: int, height: int) -> bytes:
    """A small real file whose header claims width x height pixels (each wrapped to its field's bit width)."""
    mode = {"GIF": "P", "BMP": "RGB", "TIFF": "L", "JPEG": "L", "PNG": "L", "WEBP": "RGB"}[fmt]
    buf = io.BytesIO()
    Image.new(mode, (8, 8), 1).save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    raw = bytearray(buf.getvalue())
    if fmt == "PNG":
        raw[16:24] = struct.pack(">II", width % 2**32, height % 2**32)
        return _fix_png_crcs(raw)
    if fmt == "GIF":  # the logical screen and the first frame
        raw[6:10] = struct.pack("<HH", width % 2**16, height % 2**16)
        i = raw.index(b"\x2c")
        raw[i + 5:i + 9] = struct.pack("<HH", width % 2**16, height % 2**16)
    elif fmt == "BMP":
        raw[18:26] = struct.pack("<ii", width % 2**31, height % 2**31)
    elif fmt == "TIFF":
        count = struct.unpack("<H", raw[struct.unpack("<I", raw[4:8])[0]:][:2])[0]
        ifd = struct.unpack("<I", raw[4:8])[0] + 2
        for k in range(count):
            entry = ifd + 12 * k
            (tag,) = struct.unpack("<H", raw[entry:entry + 2])
            if tag in (256, 257):  # ImageWidth, ImageLength
                value = width if tag == 256 else height
                raw[entry + 2:entry + 12] = struct.pack("<HII", 4, 1, value % 2**32)  # as LONG
    elif fmt == "JPEG":
        i = raw.index(b"\xff\xc0")
        raw[i + 5:i + 9] = struct.pack(">HH", height % 2**16, width % 2**16)
    elif fmt == "WEBP":  # VP8L: 14-bit width - 1 and height - 1 after the signature byte
        i = raw.index(b"VP8L") + 9
        bits = struct.unpack("<I", raw[i:i + 4])[0] & ~((1 << 28) - 1)
        bits |= ((width - 1) % 2**14) | (((height - 1) % 2**14) << 14)  # the field holds size - 1
        raw[i:i + 4] = struct.pack("<I", bits)
    return bytes(raw)


def unescaped(markdown: str) -> str:
    """Markdown source as it reads on the page: backslash escapes removed (app.text.plain adds them)."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown)
