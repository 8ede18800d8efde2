"""Datasets by name: the procedural ground-truth grids and people's own data.

`get_dataset(name, ...)` is what the training and evaluation commands call; every dataset has `name`,
`channels`, `image_size`, `num_images`, `factor_names`, `factor_sizes`, `label_names` and
`sample(n, rng) -> (images (n, C, H, W) float32, factors or labels)`.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from .base import GroundTruthDataset
from .dsprites import DSprites
from .faces import ExpressiveFaces, Faces

GROUND_TRUTH = {"dsprites": DSprites, "faces": Faces, "faces-expressive": ExpressiveFaces}
# a grid drawn again another way keeps its subject, factors and framing: what is made for one serves the other
# (how an upload is framed, an edit's recipe, the drawn-faces corpus)
DRAWN_LIKE = {"faces-expressive": "faces"}


def drawn_like(name: str) -> str:
    """The dataset whose subject and framing `name` shares (itself for all but a redrawn grid)."""
    return DRAWN_LIKE.get(name, name)
OWN_DATA = ("mnist", "fashion-mnist")
BUILT_IN = ("digits",)  # real data shipped inside a package (scikit-learn's 8x8 digits)
FOLDER_PREFIX = "folder:"
DATA_ENV = "VAE_EXPLORER_DATA"  # the data folders the app may read, named by the person starting it (os.pathsep)


def named_data_folders() -> list[Path]:
    """The folders named in $VAE_EXPLORER_DATA, in order (the only data folders the app reads)."""
    return [Path(p) for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p.strip()]


def recorded_location(name: str, root: str | None) -> str | None:
    """Where a model's data was read from when it trained: folder:PATH's PATH, or mnist's --data-root; None for
    data that is not read from a path (the procedural grids, the digits shipped with scikit-learn)."""
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        return name[len(FOLDER_PREFIX):]
    return root if name in OWN_DATA and isinstance(root, str) else None


def named_location(recorded: str, named: list[Path] | None = None) -> Path | None:
    """The named data folder (`named_data_folders`) that holds a model's data recorded at `recorded`: the one
    whose resolved path it is, else the one with its last name (a moved copy), else None. The recorded path comes
    from a model folder: it is compared, never opened."""
    named = named_data_folders() if named is None else named
    recorded_path = PurePath(os.path.normpath(os.path.abspath(recorded)))
    for folder in named:
        if PurePath(os.path.realpath(folder)) == recorded_path or PurePath(os.path.abspath(folder)) == recorded_path:
            return folder
    last = recorded_path.name
    return next((folder for folder in named if last and Path(os.path.abspath(folder)).name == last), None)


def dataset_from_named(name: str, root: str | None, image_size: int, channels: int,
                       named: list[Path] | None = None):
    """The dataset a model trained on, opened from a named data folder (for data read from a path); raises
    DataNotNamed saying which variable to set, when no named folder holds it."""
    recorded = recorded_location(name, root)
    if recorded is None:
        return get_dataset(name, root, image_size, channels)
    folder = named_location(recorded, named)
    if folder is None:
        raise DataNotNamed(recorded)
    if name in OWN_DATA:
        return get_dataset(name, str(folder), image_size, channels)
    return get_dataset(FOLDER_PREFIX + str(folder), None, image_size, channels)


class DataNotNamed(LookupError):
    """A model's data is read from a path that the person starting the app has not named."""

    def __init__(self, recorded: str):
        self.recorded = recorded
        super().__init__(f"its data ({recorded}) is read only from a folder named when the app starts: start it "
                         f"with {DATA_ENV}={recorded}")


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


__all__ = ["DATA_ENV", "DSprites", "DataNotNamed", "Faces", "GroundTruthDataset", "dataset_from_named", "dataset_names",
           "get_dataset", "named_data_folders", "named_location", "recorded_location"]
