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
