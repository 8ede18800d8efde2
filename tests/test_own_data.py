"""People's own data in the real on-disk formats: IDX files (MNIST, FashionMNIST) and image folders."""

import struct

import numpy as np
import pytest
from PIL import Image

from vae_core.data import get_dataset


def _write_idx(path, array):
    """IDX: big-endian magic (0, 0, dtype 0x08 = ubyte, ndim), then each dimension, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_root(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("MNIST", "FashionMNIST"):
        raw = tmp_path / folder / "raw"
        raw.mkdir(parents=True)
        for prefix, n in (("train", 12), ("t10k", 4)):
            images = rng.integers(0, 256, (n, 28, 28))
            images[:, 0, 0] = 255  # a known pixel to find after padding
            _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
            _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return tmp_path


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_files_load_padded_to_32(idx_root, name):
    ds = get_dataset(name, root=str(idx_root), image_size=32)
    assert ds.images.shape == (12, 1, 32, 32) and ds.images.dtype == np.float32
    assert ds.labels.tolist() == [i % 10 for i in range(12)]
    assert (ds.images[:, 0, 2, 2] == 1.0).all() and (ds.images[:, :, :2, :] == 0).all()
    assert len(ds.label_names) == 10
    images, labels = ds.sample(5, np.random.default_rng(0))
    assert images.shape == (5, 1, 32, 32) and labels.shape == (5,)


def test_idx_resized_to_64(idx_root):
    assert get_dataset("mnist", root=str(idx_root), image_size=64).images.shape == (12, 1, 64, 64)


def test_missing_idx_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="raw"):
        get_dataset("mnist", root=str(tmp_path))


def test_image_folder_with_png_and_jpeg(tmp_path):
    for label, colour in (("cats", (200, 30, 30)), ("dogs", (30, 30, 200))):
        (tmp_path / label).mkdir()
        Image.new("RGB", (80, 60), colour).save(tmp_path / label / "a.png")
        Image.new("RGB", (40, 40), colour).save(tmp_path / label / "b.jpg", quality=95)
    (tmp_path / "dogs" / "notes.png").write_text("not an image")  # skipped, not fatal
    ds = get_dataset(f"folder:{tmp_path}", image_size=32, channels=3)
    assert ds.images.shape == (4, 3, 32, 32)
    assert ds.label_names == ("cats", "dogs") and ds.labels.tolist() == [0, 0, 1, 1]
    assert ds.images[0, 0].mean() > 0.7 and ds.images[2, 2].mean() > 0.7  # red cats, blue dogs


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="0 readable images.*a model needs at least 2"):
        get_dataset(f"folder:{tmp_path}")


def test_a_folder_s_decoded_images_are_kept_for_the_next_run_and_made_anew_when_it_changes(tmp_path, monkeypatch):
    """Scale round: 60,000 small PNGs took 14 s to decode at every start of the app; kept, under a second."""
    import os
    import time

    from vae_core.cache_dirs import CACHE_ENV
    from vae_core.data import own

    monkeypatch.delenv(CACHE_ENV, raising=False)  # the suite turns caching off: on here, in a folder of its own
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "shapes"
    for label in ("a", "b"):
        (data / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (20, 30), np.uint8)).save(data / label / f"{i}.png")
    (data / "b" / "bad.png").write_text("not an image")
    first = own.load_image_folder(data, 32, 1)
    decoded = []
    real = own.load_image
    monkeypatch.setattr(own, "load_image", lambda *a, **k: decoded.append(1) or real(*a, **k))
    again = own.load_image_folder(data, 32, 1)
    assert not decoded and np.array_equal(first.images, again.images) and again.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert again.skipped == first.skipped and len(again.skipped) == 1
    assert np.array_equal(np.round(first.images * 255) / 255, first.images.astype(np.float64))  # 8 bits a pixel
    later = time.time() + 5
    os.utime(data / "a" / "0.png", (later, later))  # a file changed: every image decoded anew
    own.load_image_folder(data, 32, 1)
    assert len(decoded) == 7
    for kept in (tmp_path / "cache" / "vae-explorer" / "folders").iterdir():
        kept.write_bytes(b"damaged")  # a damaged cache file: decoded anew, never an error
    decoded.clear()
    assert np.array_equal(own.load_image_folder(data, 32, 1).images, first.images) and len(decoded) == 7
