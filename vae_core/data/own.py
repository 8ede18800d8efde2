"""People's own data: MNIST and FashionMNIST from their IDX files (through torchvision), or a folder of images.

Nothing is downloaded unless the person asks (`download=True`) and has internet; by default the files must
already be in the folder given as `root`. Images are brought to the model's size: 28x28 digits are padded to
32x32 (2 pixels each side) or resized to 64x64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..imaging import ImageError, load_image, to_model_input

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MNIST_LABELS = tuple(str(d) for d in range(10))
FASHION_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")


class ArrayDataset:
    """Images held in memory with optional integer labels: the shape of every non-procedural dataset."""

    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray | None, label_names: tuple[str, ...]):
        self.name = name
        self.images = images  # (N, C, H, W) float32 in [0, 1]
        self.labels = labels  # (N,) int64 or None
        self.label_names = label_names
        self.channels = images.shape[1]
        self.image_size = images.shape[2]

    @property
    def num_images(self) -> int:
        return self.images.shape[0]

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """n random images (with replacement) and their labels."""
        index = rng.integers(0, self.num_images, n)
        return self.images[index], None if self.labels is None else self.labels[index]


def _fit_digits(data: np.ndarray, image_size: int) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 1, S, S) float32: padded to 32, or resized to 64."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(data, dtype=np.float32) / 255.0)[:, None]
    if image_size == 32:
        x = F.pad(x, (2, 2, 2, 2))
    else:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x.clamp(0, 1).numpy()


def load_mnist(root: str | Path, image_size: int = 32, fashion: bool = False, train: bool = True,
               download: bool = False) -> ArrayDataset:
    """MNIST or FashionMNIST from their IDX files under `root` (torchvision's layout: root/MNIST/raw/...)."""
    from torchvision import datasets

    cls = datasets.FashionMNIST if fashion else datasets.MNIST
    name = "fashion-mnist" if fashion else "mnist"
    try:
        ds = cls(str(root), train=train, download=download)
    except RuntimeError as exc:
        raise FileNotFoundError(
            f"{name}: no IDX files under {root} ({exc}). Put the four *-ubyte files in "
            f"{Path(root) / cls.__name__ / 'raw'}, or pass --download on a machine with internet."
        ) from None
    images = _fit_digits(ds.data.numpy(), image_size)
    labels = ds.targets.numpy().astype(np.int64)
    return ArrayDataset(name, images, labels, FASHION_LABELS if fashion else MNIST_LABELS)


def load_image_folder(root: str | Path, image_size: int = 64, channels: int = 3) -> ArrayDataset:
    """Every readable image under `root` (recursively), centre-cropped and resized; unreadable files are
    skipped. Sub-folder names become labels when there is more than one."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    images, classes = [], []
    for path in files:
        try:
            images.append(to_model_input(load_image(path.read_bytes()), image_size, channels))
        except ImageError:
            continue
        classes.append(path.parent.relative_to(root).as_posix())
    if not images:
        raise FileNotFoundError(f"no readable images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    names = tuple(sorted(set(classes)))
    labels = np.array([names.index(c) for c in classes], dtype=np.int64) if len(names) > 1 else None
    return ArrayDataset(f"folder:{root}", np.stack(images), labels, names if labels is not None else ())
