"""Datasets by name: the procedural ground-truth grids and people's own data.

`get_dataset(name, ...)` is what the training and evaluation commands call; every dataset has `name`,
`channels`, `image_size`, `num_images`, `factor_names`, `factor_sizes`, `label_names` and
`sample(n, rng) -> (images (n, C, H, W) float32, factors or labels)`.
"""

from __future__ import annotations

from .base import GroundTruthDataset
from .dsprites import DSprites
from .faces import Faces

GROUND_TRUTH = {"dsprites": DSprites, "faces": Faces}
OWN_DATA = ("mnist", "fashion-mnist")
BUILT_IN = ("digits",)  # real data shipped inside a package (scikit-learn's 8x8 digits)
FOLDER_PREFIX = "folder:"


def dataset_names() -> list[str]:
    """The names `get_dataset` accepts (plus folder:PATH)."""
    return sorted(GROUND_TRUTH) + list(BUILT_IN) + list(OWN_DATA) + [FOLDER_PREFIX + "PATH"]


def get_dataset(name: str, root: str | None = None, image_size: int | None = None, channels: int | None = None,
                download: bool = False):
    """A dataset by name.

    Args:
        name: a built-in ground-truth dataset (dsprites, faces), digits, mnist, fashion-mnist, or folder:PATH.
        root: the folder holding mnist / fashion-mnist files.
        image_size, channels: for data that can be resized (digits, mnist: 32 or 64; folders: any model size).

    Raises:
        ValueError: an unknown name, listing the valid ones.
    """
    if name in GROUND_TRUTH:
        return GROUND_TRUTH[name]()
    if name == "digits":
        from .digits import load_digits

        return load_digits(image_size or 32)
    if name in OWN_DATA:
        from .own import load_mnist

        if root is None:
            raise ValueError(f"{name} needs --data-root, the folder holding its IDX files")
        return load_mnist(root, image_size or 32, fashion=name == "fashion-mnist", download=download)
    if name.startswith(FOLDER_PREFIX):
        from .own import load_image_folder

        return load_image_folder(name[len(FOLDER_PREFIX):], image_size or 64, channels or 3)
    raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(dataset_names())}")


__all__ = ["DSprites", "Faces", "GroundTruthDataset", "dataset_names", "get_dataset"]
