"""Turning any image a person brings into a model's input, and tensors back into pictures.

Uploads are hostile by default: the file size and the decoded pixel count are capped before decoding,
EXIF orientation is applied, only the first frame of an animation is used, every Pillow mode is converted
(alpha composited over the background colour, 16-bit and float scaled to 8 bits, CMYK and palettes to RGB),
and the result is resized to the model's square input. Anything that is not a readable image raises
`ImageError` with a message a person can act on.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

MAX_FILE_BYTES = 20 * 1024 * 1024  # 20 MB: more than any phone photo needs
MAX_PIXELS = 40_000_000  # decoded pixels (e.g. 8000 x 5000); larger headers are refused before decoding


class ImageError(ValueError):
    """An upload could not be turned into a model input; the message says why and what to do."""


def load_image(data: bytes, max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode bytes into an upright RGB or L Pillow image, refusing anything unsafe or unreadable.

    Args:
        data: the file's bytes.
        max_bytes, max_pixels: caps checked before the pixels are decoded.

    Returns:
        An image in mode "L" (grey) or "RGB", EXIF orientation applied, first frame only.
    """
    if not data:
        raise ImageError("the file is empty (0 bytes); choose a PNG, JPEG, GIF, WebP or BMP image")
    if len(data) > max_bytes:
        raise ImageError(f"the file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"the image claims {width} x {height} pixels; the limit is {max_pixels / 1e6:.0f} "
                    "million pixels: resize it first"
                )
            image.seek(0)  # first frame of an animation
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("the image is too large to decode safely (a decompression bomb?)") from None
    except Exception as exc:  # noqa: BLE001  Pillow raises many types for bad files: all mean "not a readable image"
        raise ImageError(
            f"this file is not a readable image ({type(exc).__name__}); choose a PNG, JPEG, GIF, WebP or BMP"
        ) from None
    if image.width < 1 or image.height < 1:
        raise ImageError("the image has no pixels")
    return _to_8bit(image)


def _to_8bit(image: Image.Image, background: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """Any Pillow mode -> "L" or "RGB", compositing transparency over `background`."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        low, high = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = np.zeros_like(arr) if not np.isfinite(high - low) or high <= low else (arr - low) / (high - low)
        return Image.fromarray(np.nan_to_num(arr * 255).astype(np.uint8), "L")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode == "P":
        image = image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
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
    """Bytes of an upload -> the model's input (channels, image_size, image_size); raises ImageError."""
    return to_model_input(load_image(data), image_size, channels, binarize)


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


def encode_gif(frames: np.ndarray, scale: int = 1, duration_ms: int = 100, bounce: bool = True) -> bytes:
    """(T, C, H, W) in [0, 1] -> animated GIF bytes that loop (there and back when `bounce`)."""
    arrays = list(to_uint8(frames))
    if bounce and len(arrays) > 2:
        arrays = arrays + arrays[-2:0:-1]
    pils = [Image.fromarray(a) for a in arrays]
    if scale > 1:
        pils = [p.resize((p.width * scale, p.height * scale), Image.Resampling.NEAREST) for p in pils]
    buf = io.BytesIO()
    pils[0].save(buf, format="GIF", save_all=True, append_images=pils[1:], duration=duration_ms, loop=0)
    return buf.getvalue()
