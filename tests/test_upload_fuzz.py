"""Property-based fuzzing of upload preprocessing (vae_core.imaging): every input, however hostile, ends as a valid
model input or an `ImageError`, never another exception, and never a large allocation.

Inputs: random bytes behind real magic numbers; images in every Pillow mode written in every accepted format that
can hold it (random, uniform and extreme pixel values, 1-3 frames, EXIF orientations valid and not); those images
truncated, bit-flipped, spliced, padded; headers forged to claim any size from 0 to 2**32 - 1; valid images in
formats the app does not accept (EPS, PDF, ICO, ...); text and SVG. The count of inputs tried is written to
tests/artifacts/upload_fuzz.json (`UPLOAD_FUZZ_EXAMPLES` scales it: e.g. 20000 for a long run).
"""

from __future__ import annotations

import io
import json
import os
import resource
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vae_core.imaging import (
    ACCEPTED_FORMATS,
    FORMAT_MAX_PIXELS,
    MAX_PIXELS,
    ImageError,
    load_image,
    preprocess_upload,
)

from .helpers import _fix_png_crcs, _forge

EXAMPLES = int(os.environ.get("UPLOAD_FUZZ_EXAMPLES", "500"))  # per test; 6 fuzz tests, 3,000 inputs in all
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Pillow's note on writing IM files
ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "upload_fuzz.json"
TRIED: Counter = Counter()

MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I",
         "I;16", "I;16L", "I;16B", "F"]
OTHER_FORMATS = ["EPS", "PDF", "ICO", "PPM", "TGA", "PCX", "SGI", "IM", "XBM", "QOI", "SPIDER", "JPEG2000", "DDS",
                 "MSP", "ICNS", "DIB", "BLP"]
MULTI_FRAME = {"GIF", "PNG", "WEBP", "TIFF"}  # and MPO, written as JPEG
EXIF_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF"}
MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"GIF89a", b"GIF87a", b"BM",
         b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"RIFF\x00\x00\x00\x00WEBPVP8L", b"II*\x00", b"MM\x00*",
         b"%!PS-Adobe-3.0 EPSF-3.0\n", b"%PDF-1.4\n", b"\x00\x00\x01\x00", b"\x00\x00\x00\x1cftypavif",
         b"<svg xmlns='http://www.w3.org/2000/svg'>", b"\x80\x04\x95"]


def _writable_pairs(formats) -> list[tuple[str, str]]:
    """(mode, format) pairs that Pillow writes and reads back, found by trying each on a 3 x 2 image."""
    pairs = []
    for mode in MODES:
        for fmt in formats:
            buf = io.BytesIO()
            try:
                Image.new(mode, (3, 2)).save(buf, format=fmt)
                Image.open(io.BytesIO(buf.getvalue())).load()
                pairs.append((mode, fmt))
            except Exception:  # noqa: BLE001, S110  this pair cannot be written here
                pass
    return pairs


ACCEPTED_PAIRS = _writable_pairs(ACCEPTED_FORMATS)
OTHER_PAIRS = _writable_pairs(OTHER_FORMATS)


@pytest.fixture(scope="module", autouse=True)
def _report():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    ARTIFACT.parent.mkdir(exist_ok=True)
    report = {"examples_per_test": EXAMPLES, "tried": sum(v for k, v in TRIED.items() if "/" not in k),
              "by_test": dict(sorted(TRIED.items())),
              "peak_rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024}
    ARTIFACT.write_text(json.dumps(report, indent=2) + "\n")


def check(data: bytes, test: str, size: int = 64, channels: int = 1, binarize: bool = False) -> np.ndarray | None:
    """The invariant: a valid model input, or an ImageError with a message; returns the input or None."""
    TRIED[test] += 1
    try:
        x = preprocess_upload(data, size, channels, binarize)
    except ImageError as exc:
        assert len(str(exc)) > 10 and "Traceback" not in str(exc)
        TRIED[f"{test}/refused"] += 1
        return None
    assert isinstance(x, np.ndarray) and x.shape == (channels, size, size) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0
    assert x.flags.c_contiguous
    if binarize:
        assert set(np.unique(x).tolist()) <= {0.0, 1.0}
    TRIED[f"{test}/accepted"] += 1
    return x


targets = st.tuples(st.sampled_from([32, 64]), st.sampled_from([1, 3]), st.booleans())


@st.composite
def pixels(draw, mode: str, width: int, height: int) -> Image.Image:
    """An image of `mode`: noise, a uniform value, a gradient, or (float and int modes) extreme values."""
    kind = draw(st.sampled_from(["noise", "uniform", "gradient", "extreme"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n = len(Image.new(mode, (width, height)).tobytes())
    if kind == "extreme" and mode in ("F", "I"):
        dtype = np.float32 if mode == "F" else np.int32
        values = ([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-45, 0.0, 1.0] if mode == "F"
                  else [-(2**31), 2**31 - 1, 0, 1, 65535, 255])
        arr = rng.choice(np.array(values, dtype=dtype), size=(height, width))
        if draw(st.booleans()):
            arr[:] = arr.flat[0]  # all one extreme value (all NaN, all inf, ...)
        return Image.frombytes(mode, (width, height), arr.astype(dtype).tobytes())
    if kind == "uniform":
        raw = bytes([draw(st.integers(0, 255))]) * n
    elif kind == "gradient":
        raw = (np.arange(n) % 256).astype(np.uint8).tobytes()
    else:
        raw = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    image = Image.frombytes(mode, (width, height), raw)
    if mode == "P":
        image.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        if draw(st.booleans()):
            image.info["transparency"] = draw(st.integers(0, 255))
    return image


@st.composite
def encoded_images(draw, pairs) -> tuple[bytes, str, str]:
    """(file bytes, mode, format): a random image of a random mode saved in a format that can hold it."""
    mode, fmt = draw(st.sampled_from(pairs))
    shape = draw(st.sampled_from(["small", "small", "small", "thin", "wide"]))
    width, height = {"small": (draw(st.integers(1, 40)), draw(st.integers(1, 40))),
                     "thin": (1, draw(st.integers(1, 600))), "wide": (draw(st.integers(1, 600)), 1)}[shape]
    image = draw(pixels(mode, width, height))
    options = {}
    if fmt in MULTI_FRAME and draw(st.integers(0, 3)) == 0:
        frames = [draw(pixels(mode, draw(st.integers(1, 30)), draw(st.integers(1, 30)))) for _ in range(2)]
        options.update(save_all=True, append_images=frames)
    if fmt in EXIF_FORMATS and draw(st.booleans()):
        exif = Image.Exif()
        exif[0x0112] = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 0, 9, 65535]))
        options["exif"] = exif
    for picture, kwargs in ((image, options), (image, {}), (image.crop((0, 0, 16, 16)), {})):
        buf = io.BytesIO()  # plainer until the format takes it: some refuse an option, or a size, for a mode
        try:
            picture.save(buf, format=fmt, **kwargs)
            break
        except Exception:  # noqa: BLE001, S110
            pass
    return buf.getvalue(), mode, fmt


@settings(FUZZ)
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=3000), target=targets)
def test_fuzz_random_bytes_behind_real_magic_numbers(magic, body, target):
    check(magic + body, "random_bytes", *target)


@settings(FUZZ)
@given(case=encoded_images(ACCEPTED_PAIRS), target=targets)
def test_fuzz_valid_images_of_every_mode_and_format_are_accepted(case, target):
    data, mode, fmt = case
    x = check(data, "valid_images", *target)
    assert x is not None, f"a valid {mode} {fmt} image was refused"


@settings(FUZZ)
@given(case=encoded_images(ACCEPTED_PAIRS), target=targets, data=st.data())
def test_fuzz_damaged_images(case, target, data):
    raw = bytearray(case[0])
    how = data.draw(st.sampled_from(["truncate", "flip", "zero_run", "splice", "pad", "prefix"]))
    at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
    if how == "truncate":
        raw = raw[:at]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "zero_run":
        raw[at:at + data.draw(st.integers(1, 64))] = bytes(min(64, len(raw) - at))
    elif how == "splice":
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    elif how == "pad":
        raw += data.draw(st.binary(min_size=1, max_size=256))
    else:
        raw = data.draw(st.binary(min_size=1, max_size=16)) + raw
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and data.draw(st.booleans()):
        raw = bytearray(_fix_png_crcs(raw))  # let the damage past the checksums
    check(bytes(raw), "damaged_images", *target)


dimension = st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1), st.sampled_from([100_000, 65_535, 16_384]))


FIELD_BITS = {"PNG": (32, 32), "GIF": (16, 16), "BMP": (31, 31), "TIFF": (32, 32), "JPEG": (16, 16),
              "WEBP": (14, 14)}


@settings(FUZZ)
@given(fmt=st.sampled_from(sorted(FIELD_BITS)), width=dimension, height=dimension, target=targets)
def test_fuzz_forged_dimensions_are_refused_before_decoding(fmt, width, height, target):
    bits = FIELD_BITS[fmt]
    claimed = (width % 2 ** bits[0], height % 2 ** bits[1])
    if fmt == "WEBP":
        claimed = ((width - 1) % 2**14 + 1, (height - 1) % 2**14 + 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    x = check(_forge(fmt, width, height), "forged_dimensions", *target)
    if claimed[0] * claimed[1] > FORMAT_MAX_PIXELS.get(fmt, MAX_PIXELS):
        assert x is None, f"{fmt} claiming {claimed} was decoded"
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 320 * 1024, f"{fmt} claiming {claimed}: {grown / 1024:.0f} MB allocated"  # WebP at its cap: 256


@settings(FUZZ)
@given(case=encoded_images(OTHER_PAIRS), target=targets)
def test_fuzz_images_in_formats_not_accepted_are_refused_by_name(case, target):
    data, mode, fmt = case
    TRIED["other_formats"] += 1
    with pytest.raises(ImageError, match="not a readable image.*PNG, JPEG, GIF, WebP, BMP or TIFF"):
        preprocess_upload(data, *target)
        pytest.fail(f"a {mode} {fmt} image was decoded")


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP", "TIFF", "JPEG", "WEBP"])
def test_a_header_claiming_a_huge_image_names_the_limit(fmt):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    side = 16_384 if fmt == "WEBP" else 65_000 if fmt in ("GIF", "JPEG") else 100_000
    with pytest.raises(ImageError, match=f"claims {side**2:,} pixels; the limit is 40 million pixels: resize"):
        preprocess_upload(_forge(fmt, side, side), 64, 3)
    limit = "for WEBP is 16" if fmt == "WEBP" else "is 40"
    with pytest.raises(ImageError, match=f"claims 7000 x 7000 pixels; the limit {limit} million pixels: resize"):
        preprocess_upload(_forge(fmt, 7000, 7000), 64, 3)  # over our cap, under Pillow's own
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


def test_a_decompression_bomb_under_the_file_cap_is_refused():
    buf = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buf, format="PNG", optimize=True)  # 25 million pixels in a few KB
    assert len(buf.getvalue()) < 50_000
    with pytest.raises(ImageError, match="5000 x 5000 pixels; the limit is 10 million"):
        load_image(buf.getvalue(), max_pixels=10_000_000)


@pytest.mark.parametrize("data", [b"", b"\x00", b"hello, I am text renamed to .png\n" * 20,
                                  (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg' width='10' "
                                   b"height='10'><rect width='10' height='10'/></svg>"),
                                  b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"])
def test_text_svg_and_postscript_are_refused(data):
    with pytest.raises(ImageError):
        preprocess_upload(data, 64, 1)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_white_stays_white_and_black_stays_black(fmt):
    for value, expected in ((65535, 1.0), (0, 0.0), (32896, 128 / 255)):
        image = Image.frombytes("I;16", (7, 5), np.full((5, 7), value, np.uint16).tobytes())
        buf = io.BytesIO()
        image.save(buf, format=fmt)
        x = preprocess_upload(buf.getvalue(), 32, 1)
        assert np.allclose(x, expected, atol=1 / 255), (value, x.mean())


@settings(FUZZ)
@given(mode=st.sampled_from(["L", "RGB", "I;16", "RGBA", "P"]), fmt=st.sampled_from(["PNG", "BMP", "TIFF", "GIF"]),
       grey=st.integers(0, 255), w=st.integers(1, 50), h=st.integers(1, 50))
def test_fuzz_a_uniform_grey_image_keeps_its_grey(mode, fmt, grey, w, h):
    TRIED["uniform_grey"] += 1
    image = Image.new("L", (w, h), grey)
    if mode == "I;16" and fmt not in ("PNG", "TIFF"):
        return  # the others would store it in 8 bits, clipped by Pillow on saving
    image = (Image.frombytes("I;16", (w, h), np.full((h, w), grey * 257, np.uint16).tobytes()) if mode == "I;16"
             else image.convert(mode))
    buf = io.BytesIO()
    try:
        image.save(buf, format=fmt)
    except OSError:
        return  # this format cannot hold this mode
    for channels in (1, 3):
        x = preprocess_upload(buf.getvalue(), 32, channels)
        assert np.allclose(x, grey / 255, atol=1.5 / 255), (mode, fmt, grey, float(x.mean()))
