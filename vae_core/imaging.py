"""Turning any image a person brings into a model's input, and tensors back into pictures.

Uploads are hostile by default: the file size and the decoded pixel count are capped before decoding,
EXIF orientation is applied, only the first frame of an animation is used, every Pillow mode is converted
(alpha composited over the background colour, 16-bit and float scaled to 8 bits, CMYK and palettes to RGB),
and the result is resized to the model's square input. Anything that is not a readable image raises
`ImageError` with a message a person can act on.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
from PIL import Image, ImageOps

MAX_FILE_BYTES = 20 * 1024 * 1024  # 20 MB: more than any phone photo needs
MAX_PIXELS = 40_000_000  # decoded pixels (e.g. 8000 x 5000); larger headers are refused before decoding
# Only these decoders ever see an upload: Pillow can open dozens of formats, some through external programs
# (EPS runs Ghostscript), and a classroom needs none of them.
ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
ACCEPTED_NAMES = "PNG, JPEG, GIF, WebP, BMP or TIFF"
# Pillow's WebP decoder holds several full-size RGBA copies (measured: 540 MB for 35 million pixels, about 16 bytes
# a pixel, against 8 for a PNG), so WebP gets a lower cap: 16 million pixels, about 250 MB at worst.
FORMAT_MAX_PIXELS = {"WEBP": 16_000_000}
# Modes Image.reduce can box-average; transparency is premultiplied first so that hidden colours do not bleed.
_REDUCIBLE = {"L", "RGB", "RGBX", "CMYK", "YCbCr", "I", "F", "RGBa", "La"}
_PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}
_MB = 1024 * 1024
# What decoding may cost, checked before the pixels are decoded: memory (the pixels times what a mode takes, with
# the working copies of the conversions; measured: a palette with transparency about 14 bytes a pixel, 16-bit
# grey about 20), and the structures whose number, not size, sets the time (each JPEG scan decodes the whole
# image again; every PNG chunk and JPEG comment is a round of the decoder's loop).
DECODE_BUDGET_BYTES = 300 * _MB
BYTES_PER_PIXEL = {"1": 2, "L": 3, "P": 6, "PA": 14, "LA": 12, "RGB": 8, "RGBA": 14, "CMYK": 10, "YCbCr": 8,
                   "I;16": 20, "I;16L": 20, "I;16B": 20, "I;16N": 20, "I": 24, "F": 24}
MAX_JPEG_SCANS = 64  # a progressive photo has about 10
MAX_JPEG_COMMENTS = 1000
MAX_PNG_CHUNKS = 20_000  # a 20 MB PNG in 8 KB IDAT chunks has 2,500


class ImageError(ValueError):
    """An upload could not be turned into a model input; the message says why and what to do."""


def load_image(data: bytes, max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS,
               size_hint: int | None = None, keep_alpha: bool = False) -> Image.Image:
    """Decode bytes into an upright RGB or L Pillow image, refusing anything unsafe or unreadable.

    Args:
        data: the file's bytes.
        max_bytes, max_pixels: caps checked before the pixels are decoded.
        size_hint: the side the image will be shrunk to, if known: a JPEG is then decoded at a reduced scale
            (at least this size), which takes a fraction of the memory and time of a full decode.

    Returns:
        An image in mode "L" (grey) or "RGB" ("RGBA" where it has transparency and `keep_alpha`), EXIF
        orientation applied, first frame only.
    """
    if not data:
        raise ImageError(f"the file is empty (0 bytes); choose a {ACCEPTED_NAMES} image")
    if len(data) > max_bytes:
        raise ImageError(f"the file is {len(data) / _MB:.1f} MB; the limit is {max_bytes / _MB:.0f} MB")
    check_structure(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on corrupt EXIF: the image may be fine
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size
            limit = min(max_pixels, FORMAT_MAX_PIXELS.get(image.format, max_pixels))
            if width * height > limit:
                kind = f"for {image.format} " if limit < max_pixels else ""
                raise ImageError(
                    f"the image claims {width} x {height} pixels; the limit {kind}is {limit / 1e6:.0f} "
                    "million pixels: resize it first"
                )
            image.seek(0)  # first frame of an animation
            drafted = bool(size_hint) and image.format in ("JPEG", "MPO")
            if drafted:  # decoded at a fraction of its size: the budget is for what is decoded
                image.draft(None, (size_hint, size_hint))
            mode = "PA" if image.mode == "P" and "transparency" in image.info else image.mode
            cost = image.width * image.height * BYTES_PER_PIXEL.get(mode, 14)
            if cost > DECODE_BUDGET_BYTES and not drafted:
                raise ImageError(
                    f"the image's {width} x {height} pixels ({_describe(mode)}) would take about {cost / _MB:,.0f} "
                    f"MB to decode; the limit is {DECODE_BUDGET_BYTES / _MB:.0f} MB: resize it, or save it as an "
                    "8-bit RGB image")
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.width < 1 or image.height < 1:
                raise ImageError("the image has no pixels")
            return _to_8bit(_shrink(image, size_hint), keep_alpha=keep_alpha)
    except (ImageError, MemoryError):  # MemoryError: a capped worker (vae_core.upload_worker) says so itself
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's own, larger cap
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        claim = f"claims {int(claimed.group(1)):,} pixels" if claimed else "is too large to decode safely"
        raise ImageError(f"the image {claim}; the limit is {max_pixels / 1e6:.0f} million pixels: "
                         "resize it first") from None
    except Exception:  # noqa: BLE001  Pillow raises many types for bad files: all mean "not a readable image"
        raise ImageError(
            f"this file is not a readable image (damaged, or not really a {ACCEPTED_NAMES} file); choose a "
            f"{ACCEPTED_NAMES} image"
        ) from None


def _describe(mode: str) -> str:
    return {"PA": "a palette with transparency", "P": "a palette", "I;16": "16-bit grey", "I;16B": "16-bit grey",
            "I;16L": "16-bit grey", "I;16N": "16-bit grey", "I": "32-bit grey", "F": "floating-point grey",
            "LA": "grey with transparency", "RGBA": "colour with transparency"}.get(mode, f"{mode} mode")


def check_structure(data: bytes) -> None:
    """Refuse files whose structure would make decoding slow whatever their pixel count: a JPEG of very many
    scans or comments, a PNG of very many chunks. Counted in the bytes, before any decoder sees them."""
    if data[:2] == b"\xff\xd8":
        scans = data.count(b"\xff\xda")  # a 0xFF in the coded data is followed by 0x00: only markers match
        if scans > MAX_JPEG_SCANS:
            raise ImageError(f"this JPEG has {scans:,} scans (a photo has about 10) and would take too long to "
                             "decode: save it again as an ordinary JPEG")
        first = data.find(b"\xff\xda")
        comments = data.count(b"\xff\xfe", 0, first if first >= 0 else len(data))
        if comments > MAX_JPEG_COMMENTS:
            raise ImageError(f"this JPEG has {comments:,} comment segments and would take too long to decode: save "
                             "it again as an ordinary JPEG")
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        pos, chunks = 8, 0
        while pos + 8 <= len(data):
            chunks += 1
            if chunks > MAX_PNG_CHUNKS:
                raise ImageError(f"this PNG has over {MAX_PNG_CHUNKS:,} chunks and would take too long to decode: "
                                 "save it again as an ordinary PNG")
            if data[pos + 4:pos + 8] == b"IEND":  # the decoder stops here: what follows is never read
                break
            pos += 12 + int.from_bytes(data[pos:pos + 4], "big")


# A shrunk image keeps at most this many times (4 x size_hint)^2 pixels; past it (a strip far longer than wide), each
# axis is reduced on its own and the drawing's proportions give way to the copy's cost.
SHRUNK_PIXELS_PER_SQUARE = 64


def _shrink(image: Image.Image, size_hint: int | None) -> Image.Image:
    """Box-average an image down, by one factor on both axes, to no less than 4 x `size_hint` along its shorter
    side, where its mode allows: a drawing keeps its proportions (a square drawn on a wide canvas stays a square;
    a factor per axis had squeezed it into a rhombus), and the conversions that follow copy a small image instead of
    a large one. A 1 x 40 million strip is reduced along each axis on its own (SHRUNK_PIXELS_PER_SQUARE)."""
    if not size_hint:
        return image
    fx, fy = (max(1, side // (4 * size_hint)) for side in image.size)
    uniform = min(fx, fy)
    kept = (image.width // uniform) * (image.height // uniform)
    factors = (uniform, uniform) if kept <= SHRUNK_PIXELS_PER_SQUARE * (4 * size_hint) ** 2 else (fx, fy)
    if max(factors) < 2:
        return image
    if image.mode in _PREMULTIPLIED:
        image = image.convert(_PREMULTIPLIED[image.mode])
    return image.reduce(factors) if image.mode in _REDUCIBLE else image


def _to_unit(arr: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer or float pixels -> float32 in [0, 1].

    Integer images (16- and 32-bit) are stretched from their smallest to their largest value: their real range,
    so 12-bit data in a 16-bit file is not left almost black (a constant image keeps its nominal 8- or 16-bit
    level). Floats within [0, 1] or [0, 255] are read as such, others stretched too. NaN becomes 0 and
    infinities the ends of the range.
    """
    arr = arr.astype(np.float32)
    finite = arr[np.isfinite(arr)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    ranges = [(0.0, 1.0), (0.0, 255.0)] if mode == "F" else [] if high > low else \
        [(0.0, 65535.0)] if mode.startswith("I;16") else [(0.0, 255.0), (0.0, 65535.0)]  # a constant: nominal
    scale = next(((a, b) for a, b in ranges if a <= low and high <= b), None)
    if scale is None and not high > low:  # a constant out of every range: white when positive, else black
        return np.full(arr.shape, 1.0 if low > 0 else 0.0, np.float32)
    if scale is None:  # stretched, in float64: the range of float32 extremes overflows float32
        scale, arr = (low, high), arr.astype(np.float64)
    arr = np.nan_to_num(arr, nan=scale[0], posinf=scale[1], neginf=scale[0])
    arr = (arr - scale[0]) / (scale[1] - scale[0])
    return np.clip(arr, 0.0, 1.0).astype(np.float32)


def _to_8bit(image: Image.Image, background: tuple[int, int, int] = (0, 0, 0), keep_alpha: bool = False
             ) -> Image.Image:
    """Any Pillow mode -> "L" or "RGB", compositing transparency over `background` (or "RGBA", keeping it)."""
    if image.mode in ("La", "RGBa"):  # premultiplied by _shrink: Pillow converts these only to their plain forms
        image = image.convert(image.mode.upper())
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        with np.errstate(invalid="ignore", over="ignore"):  # signalling NaNs in float files flag every cast
            arr = _to_unit(np.asarray(image), mode)
        return Image.fromarray((arr * 255.0 + 0.5).astype(np.uint8), "L")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode == "P":
        image = image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        if keep_alpha:
            return rgba
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    if image.mode == "1":
        return image.convert("L")
    if image.mode not in ("L", "RGB"):
        return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    return image


def to_model_input(
    image: Image.Image, image_size: int, channels: int, binarize: bool = False, fit: str = "crop"
) -> np.ndarray:
    """An upright L/RGB image -> (channels, image_size, image_size) float32 in [0, 1].

    Args:
        fit: "crop" takes the centred square; "pad" pads the shorter side with black.
        binarize: threshold at 0.5 (for models of binary data such as dSprites).
    """
    image = image.convert("L" if channels == 1 else "RGB")
    if fit == "pad":
        side = max(image.size)
        image = ImageOps.pad(image, (side, side), color=0)
    else:
        image = ImageOps.fit(image, (min(image.size),) * 2)
    image = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
    arr = np.asarray(image, dtype=np.float32) / 255.0
    arr = arr[None] if channels == 1 else arr.transpose(2, 0, 1)
    if binarize:
        arr = (arr >= 0.5).astype(np.float32)
    return np.ascontiguousarray(arr)


def preprocess_upload(data: bytes, image_size: int, channels: int, binarize: bool = False) -> np.ndarray:
    """Bytes of an upload -> the model's input (channels, image_size, image_size); raises ImageError.

    A large picture is decoded at a reduced scale where the format allows (JPEG) and box-averaged down to a
    few times the model's size before the final resampling, so a phone photo costs little memory and time.
    """
    image = _shrink(load_image(data, size_hint=image_size), image_size)  # again for modes reduce cannot take
    return to_model_input(image, image_size, channels, binarize)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(..., C, H, W) floats in [0, 1] -> (..., H, W) grey or (..., H, W, 3) colour uint8."""
    arr = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    arr = (arr * 255.0 + 0.5).astype(np.uint8)
    arr = np.moveaxis(arr, -3, -1)
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def image_grid(images: np.ndarray, rows: int, cols: int, pad: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """(rows * cols, C, H, W) in [0, 1] -> one (C, rows*(H+pad)-pad, cols*(W+pad)-pad) array, row-major."""
    n, c, h, w = images.shape
    if n != rows * cols:
        raise ValueError(f"image_grid needs rows * cols = {rows * cols} images, got {n}")
    grid = np.full((c, rows * (h + pad) - pad, cols * (w + pad) - pad), pad_value, dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[:, r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = images[i]
    return grid


def encode_png(image: np.ndarray, scale: int = 1) -> bytes:
    """(C, H, W) in [0, 1] -> PNG bytes, enlarged `scale` times with nearest-neighbour pixels."""
    pil = Image.fromarray(to_uint8(image))
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


LABEL_MARGIN = 120  # px, the least width of a sheet's label margin: short labels ("z3 scale") all get this one


def label_rows(pixels: np.ndarray, labels: list[str], row_height: int, font_px: int | None = None) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 with a white margin on the left holding one label per row of `row_height` pixels.

    Every label is shown whole: wrapped at its spaces (never inside a word) into the lines a row holds, the margin
    as narrow as the longest label allows (LABEL_MARGIN at least). The font (Pillow's own, nothing to download) is
    a fifth of a row's height by default, so the labels keep their size beside the pictures however the sheet is
    scaled on a page (Disentanglement shows a sheet of 7 steps about 440 px wide: letters of 11 px)."""
    from PIL import ImageDraw, ImageFont

    font_px = font_px or max(11, row_height // 5)
    font = ImageFont.load_default(size=font_px)
    spacing = font_px // 4
    texts = [" ".join(str(label).split()) for label in labels]
    most_lines = max(1, (row_height - font_px) // (font_px + spacing))  # a line's height apart from the next row
    width = max((narrowest_width(text, font, most_lines) for text in texts), default=0.0)
    margin = max(LABEL_MARGIN, font_px + round(width))
    pil = Image.fromarray(pixels)
    out = Image.new(pil.mode, (pil.width + margin, pil.height), 255 if pil.mode == "L" else (255, 255, 255))
    out.paste(pil, (margin, 0))
    draw = ImageDraw.Draw(out)
    for r, text in enumerate(texts):
        draw.multiline_text((font_px // 2, r * row_height + row_height // 2), "\n".join(wrap_words(text, font, width)),
                            font=font, fill=0 if pil.mode == "L" else (0, 0, 0), anchor="lm", spacing=spacing)
    return np.asarray(out)


def wrap_words(text: str, font, width: float) -> list[str]:
    """`text` in lines no wider than `width` (in `font`), broken at its spaces; a longer word keeps a line of its
    own, whole."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def narrowest_width(text: str, font, most_lines: int) -> float:
    """About the least width in which `text` wraps (`wrap_words`) into `most_lines` lines or fewer: never less
    than its longest word."""
    width = max([font.getlength(text) / most_lines, *(font.getlength(word) for word in text.split(" "))])
    while len(wrap_words(text, font, width)) > most_lines:
        width *= 1.05
    return width


def encode_labelled_png(image: np.ndarray, labels: list[str], rows: int, scale: int = 1) -> bytes:
    """A grid (C, H, W) in [0, 1] of `rows` rows, enlarged `scale` times, each row labelled on the left."""
    pixels = to_uint8(image)
    if scale > 1:
        pixels = np.asarray(Image.fromarray(pixels).resize((pixels.shape[1] * scale, pixels.shape[0] * scale),
                                                           Image.Resampling.NEAREST))
    buf = io.BytesIO()
    Image.fromarray(label_rows(pixels, labels, pixels.shape[0] // rows)).save(buf, format="PNG")
    return buf.getvalue()


def encode_gif(frames: np.ndarray, scale: int = 1, duration_ms: int = 100, bounce: bool = True,
               labels: list[str] | None = None) -> bytes:
    """(T, C, H, W) in [0, 1] -> animated GIF bytes that loop (there and back when `bounce`); with `labels`, one
    per row of the frame, each frame's rows are labelled on the left."""
    arrays = list(to_uint8(frames))
    if bounce and len(arrays) > 2:
        arrays = arrays + arrays[-2:0:-1]
    pils = [Image.fromarray(a) for a in arrays]
    if scale > 1:
        pils = [p.resize((p.width * scale, p.height * scale), Image.Resampling.NEAREST) for p in pils]
    if labels:
        pils = [Image.fromarray(label_rows(np.asarray(p), labels, p.height // len(labels))) for p in pils]
    buf = io.BytesIO()
    pils[0].save(buf, format="GIF", save_all=True, append_images=pils[1:], duration=duration_ms, loop=0)
    return buf.getvalue()


def load_rgba(data: bytes, size_hint: int | None = None) -> np.ndarray:
    """Bytes of an upload -> (H, W, 4) float32 in [0, 1] (alpha 1 where the file has none); raises ImageError.

    Shrunk as `preprocess_upload` shrinks (to a few times `size_hint`), with the same checks before decoding.
    """
    image = _shrink(load_image(data, size_hint=size_hint, keep_alpha=True), size_hint)
    image = _to_8bit(image, keep_alpha=True).convert("RGBA")
    return np.asarray(image, dtype=np.float32) / 255.0
