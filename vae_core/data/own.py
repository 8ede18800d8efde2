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


class EachOnce:
    """A set of images in memory seen as a stream that gives each image once, in an order fixed by `seed`: what an
    evaluation of n images draws from a set smaller than n (drawing with replacement counted duplicates)."""

    def __init__(self, dataset: ArrayDataset, seed: int):
        self.dataset = dataset
        self.order = np.random.default_rng(seed).permutation(dataset.num_images)
        self.next = 0

    def __getattr__(self, name):  # name, channels, label_names, ...: the set's own
        return getattr(self.dataset, name)

    def sample(self, n: int, rng=None) -> tuple[np.ndarray, np.ndarray | None]:
        index = self.order[self.next:self.next + n]
        if len(index) < n:
            raise ValueError(f"only {self.dataset.num_images} images: {self.next + n} asked of them")
        self.next += n
        labels = self.dataset.labels
        return self.dataset.images[index], None if labels is None else labels[index]


def each_once(dataset, n: int, seed: int = 0):
    """(what to draw n evaluation images from, how many to draw): a procedural grid or a set larger than n as it
    is; a smaller set of images as `EachOnce` with its size, so that no image counts twice."""
    if isinstance(dataset, ArrayDataset) and dataset.num_images < n:
        return EachOnce(dataset, seed), dataset.num_images
    return dataset, n


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


LABELS_FILE = "labels.csv"  # beside the images: one row per image, "file,label" (file relative to the folder)
MIN_IMAGES = 2


CACHE_FORMAT = 1


def _cache_file(root: Path, files: list[Path], image_size: int, channels: int) -> Path | None:
    """Where the decoded images of `files` are kept between runs (`vae_core.cache_dirs`), named by everything they
    are made from: the folder, the size and channels, each file's name, size and modification time, and the labels
    file's; None when nothing is kept."""
    import hashlib

    from ..cache_dirs import cache_folder

    folder = cache_folder("folders")
    if folder is None:
        return None
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{root.resolve()}|{image_size}|{channels}".encode())
    for path in (*files, root / LABELS_FILE):
        try:
            info = path.stat()
        except OSError:
            continue
        digest.update(f"|{path.relative_to(root).as_posix()}|{info.st_size}|{info.st_mtime_ns}".encode())
    return folder / f"{digest.hexdigest()}.npz"


def _decoded(root: Path, files: list[Path], image_size: int,
             channels: int) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """(images as bytes (N, C, S, S) uint8, the readable files, the skipped (file, reason)): read from the cache
    when it holds this folder as it is now (60,000 small PNGs took 14 s to decode, the cache under a second)."""
    cache = _cache_file(root, files, image_size, channels)
    if cache is not None and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as kept:
                images, names = kept["images"], [str(n) for n in kept["kept"]]
                skipped = [(str(f), str(r)) for f, r in zip(kept["skipped_files"], kept["skipped_reasons"])]
            if images.dtype == np.uint8 and images.shape[1:] == (channels, image_size, image_size) \
                    and len(images) == len(names):
                return images, names, skipped
        except (OSError, ValueError, KeyError):
            pass  # damaged: decoded anew below
    images, kept_names, skipped = [], [], []
    for path in files:
        try:
            image = to_model_input(load_image(path.read_bytes()), image_size, channels)
        except (ImageError, OSError) as exc:
            skipped.append((path.relative_to(root).as_posix(), str(exc)[:200]))
            continue
        images.append(np.round(image * 255).astype(np.uint8))  # 8 bits a pixel, as the files hold them
        kept_names.append(path.relative_to(root).as_posix())
    stacked = np.stack(images) if images else np.zeros((0, channels, image_size, image_size), np.uint8)
    if cache is not None and len(images) >= MIN_IMAGES:
        import io

        from ..atomic import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez(buffer, images=stacked, kept=np.array(kept_names, dtype=str),
                 skipped_files=np.array([f for f, _ in skipped], dtype=str),
                 skipped_reasons=np.array([r for _, r in skipped], dtype=str))
        try:
            atomic_write_bytes(cache, buffer.getvalue())
        except OSError:
            pass  # a full disk: the next run decodes again
    return stacked, kept_names, skipped


def load_image_folder(root: str | Path, image_size: int = 64, channels: int = 3) -> ArrayDataset:
    """Every readable image under `root` (recursively), centre-cropped and resized, 8 bits a pixel; unreadable
    files are skipped and listed in `skipped` (file, reason). Labels: a labels.csv in `root` (file,label per row)
    when there is one, else the sub-folder names when there are more than one. The decoded images are kept in the
    cache (`vae_core.cache_dirs`) for the next run.

    Raises:
        FileNotFoundError: no such folder, or fewer than MIN_IMAGES readable images in it.
        ValueError: a labels file that names files the folder lacks, or lacks rows for some of its images.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    decoded, kept, skipped = _decoded(root, files, image_size, channels)
    if len(decoded) < MIN_IMAGES:
        found = f"{len(decoded)} readable image{'' if len(decoded) == 1 else 's'}"
        raise FileNotFoundError(f"{root}: {found} ({', '.join(IMAGE_SUFFIXES)}, in it or its sub-folders"
                                f"{f'; {len(skipped)} unreadable' if skipped else ''}); a model needs at least "
                                f"{MIN_IMAGES}, and hundreds to learn anything")
    if (root / LABELS_FILE).is_file():
        classes = _labels_from_file(root / LABELS_FILE, kept)
    else:
        classes = [str(Path(k).parent.as_posix()) for k in kept]
    names = tuple(sorted(set(classes)))
    labels = np.array([names.index(c) for c in classes], dtype=np.int64) if len(names) > 1 else None
    dataset = ArrayDataset(f"folder:{root}", decoded.astype(np.float32) / 255, labels,
                           names if labels is not None else ())
    dataset.skipped = skipped
    return dataset


def _labels_from_file(path: Path, files: list[str]) -> list[str]:
    """Each file's label from a labels file of "file,label" rows (a header row "file,label" is allowed)."""
    import csv

    rows = {}
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        for number, row in enumerate(csv.reader(f), 1):
            if not row or (number == 1 and [c.strip().lower() for c in row[:2]] == ["file", "label"]):
                continue
            if len(row) < 2 or not row[1].strip():
                raise ValueError(f"{path}, row {number}: a row is a file name and its label, e.g. a/cat.png,cat")
            rows[row[0].strip()] = row[1].strip()
    missing = [f for f in files if f not in rows]
    unknown = sorted(set(rows) - set(files))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no row for {len(missing)} image(s): {', '.join(missing[:5])}")
        if unknown:
            parts.append(f"rows for {len(unknown)} file(s) that are not readable images here: {', '.join(unknown[:5])}")
        raise ValueError(f"{path}: " + "; ".join(parts))
    return [rows[f] for f in files]


