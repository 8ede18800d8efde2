import io
import zlib

import numpy as np
import pytest
from PIL import Image

from vae_core.imaging import ImageError, encode_gif, image_grid, preprocess_upload, to_uint8


def _png(image: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_mode_becomes_a_model_input(mode):
    image = Image.new("RGB", (50, 30), (255, 255, 255)).convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    for channels in (1, 3):
        x = preprocess_upload(_png(image, fmt), 64, channels)
        assert x.shape == (channels, 64, 64) and x.dtype == np.float32
        assert 0 <= x.min() and x.max() <= 1


def test_alpha_is_composited_on_black():
    image = Image.new("RGBA", (10, 10), (255, 255, 255, 0))
    assert preprocess_upload(_png(image), 32, 1).max() == 0


def test_exif_rotation_is_applied():
    image = Image.new("L", (40, 20), 0)
    image.paste(255, (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif, quality=95)
    x = preprocess_upload(buf.getvalue(), 32, 1)
    assert x[0, :8].mean() > 0.8 and x[0, -8:].mean() < 0.2  # the white half is now on top


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, this is text", "not a readable image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not a readable image"),
    ],
)
def test_bad_files_are_clear_errors(data, message):
    with pytest.raises(ImageError, match=message):
        preprocess_upload(data, 64, 1)


def test_truncated_and_huge_images_refused():
    data = _png(Image.new("RGB", (64, 64), (10, 200, 10)))
    with pytest.raises(ImageError):
        preprocess_upload(data[: len(data) // 2], 64, 3)
    header = bytearray(_png(Image.new("L", (1, 1))))
    header[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height claim 100,000 x 100,000
    header[29:33] = zlib.crc32(bytes(header[12:29])).to_bytes(4, "big")  # with a valid chunk CRC
    with pytest.raises(ImageError, match="limit|too large"):
        preprocess_upload(bytes(header), 64, 1)


def test_grid_and_gif():
    images = np.random.default_rng(0).random((6, 1, 8, 8)).astype(np.float32)
    grid = image_grid(images, 2, 3, pad=1)
    assert grid.shape == (1, 17, 26)
    assert np.array_equal(grid[:, 9:17, 18:26], images[5])
    gif = Image.open(io.BytesIO(encode_gif(images)))
    assert gif.n_frames == 10  # there and back
    assert to_uint8(images).shape == (6, 8, 8)


def test_downloads_carry_a_label_per_row():
    import io as _io

    from PIL import Image as _Image

    from vae_core.imaging import encode_gif, encode_labelled_png, image_grid

    rows = np.zeros((6, 1, 16, 16), np.float32)
    grid = image_grid(rows, 2, 3)
    plain = np.asarray(_Image.open(_io.BytesIO(encode_labelled_png(grid, ["", ""], 2))))
    labelled = np.asarray(_Image.open(_io.BytesIO(encode_labelled_png(grid, ["z7 posX", "z3 scale"], 2))))
    assert labelled.shape == plain.shape and labelled.shape[1] == grid.shape[2] + 120
    top, bottom = (labelled[:, :120] != plain[:, :120])[: labelled.shape[0] // 2], \
        (labelled[:, :120] != plain[:, :120])[labelled.shape[0] // 2:]
    assert top.any() and bottom.any()  # text in each row's margin
    frames = np.stack([image_grid(rows[:2] + t / 3, 2, 1) for t in range(3)])  # three different frames
    gif = _Image.open(_io.BytesIO(encode_gif(frames, labels=["a", "b"])))
    assert gif.size[0] == 16 + 120 and gif.n_frames >= 3


def test_a_valid_png_padded_after_its_end_is_not_counted_as_chunks():
    """Hostile round 3: a valid PNG followed by 240 KB of zeros was refused as "over 20,000 chunks" (the walker
    read the padding as empty chunks); the decoder stops at IEND, and so does the count."""
    import io

    from PIL import Image

    from vae_core.imaging import check_structure, load_image

    buf = io.BytesIO()
    Image.new("L", (16, 16), 200).save(buf, format="PNG")
    padded = buf.getvalue() + b"\x00" * 240_000
    check_structure(padded)  # no ImageError
    assert load_image(padded).size == (16, 16)


@pytest.mark.parametrize("canvas", [(1500, 800), (800, 1500), (5000, 700)])
def test_a_square_drawn_on_a_wide_or_tall_canvas_stays_a_square_when_shrunk(canvas):
    from PIL import ImageDraw

    from vae_core.imaging import load_rgba

    image = Image.new("L", canvas, 0)
    side = min(canvas) // 4
    ImageDraw.Draw(image).rectangle([100, 100, 100 + side - 1, 100 + side - 1], fill=255)
    ink = load_rgba(_png(image), 64)[..., 0] > 0.5
    rows, cols = np.nonzero(ink.any(1))[0], np.nonzero(ink.any(0))[0]
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert ink.shape[0] < canvas[1] and ink.shape[1] < canvas[0]  # shrunk, as before
    assert abs(height - width) <= 1, (height, width)  # one factor on both axes: a factor per axis made it 5:3
