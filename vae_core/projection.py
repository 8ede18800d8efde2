"""2-D maps of a latent space: PCA, UMAP, placing new points on a shipped map, and `projection.npz`.

UMAP is slow the first time it runs in a process (numba compiles it: 35 to 45 s on a 2-core machine, and again
for the first `transform`), so it is fitted offline, when a model is evaluated, and its coordinates ship in the
model folder. A new point (an upload) is placed at the distance-weighted average of its nearest neighbours'
coordinates in latent space, which is UMAP's own starting guess for `transform` and instant. PCA of 10,000
points takes milliseconds and is computed live.

`projection.npz` holds the posterior means (and log-variances) of a fixed sample of the model's data, the
sample's factors (or labels), and its UMAP and PCA coordinates. It is written atomically and read with
`allow_pickle=False`: names are stored as fixed-width unicode arrays, never as Python objects.

This module imports neither streamlit nor plotly, and imports umap only inside `fit_umap`.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoints as ckpt
from .explore import elbo_terms

FORMAT_VERSION = 1
MAX_PROJECTION_BYTES = 500_000_000
MAX_POINTS = 100_000  # rows of a projection.npz (the shipped ones have 10,000)
MAX_ARRAY_BYTES = MAX_POINTS * 512 * 8  # the largest array: float64 means of a 512-dimensional latent
GRID_POINTS = 10_000  # a procedural grid's sample on the map (the metrics' protocols use this many)
MAP_POINTS = 60_000  # a set of images in memory: each image once, up to this many (an MNIST-size set whole)
UMAP_FIT_POINTS = 20_000  # UMAP is fitted on this many points; the others take the place of their neighbours
RECON_POINTS = 10_000  # the points whose reconstruction error is recorded (the data's error percentiles)
REQUIRED_KEYS = ("means", "logvars", "factors", "factor_names", "pca", "index", "seed")


@dataclass
class Projection:
    """The contents of a model folder's projection.npz.

    Attributes:
        means, logvars: (N, latent_dim) float32 posterior parameters of the sample.
        factors: (N, F) int64 ground-truth factor classes, or (N, 1) labels, or (N, 0) when the data has neither.
        factor_names: F names (("label",) for labelled data).
        label_names: class names of labelled data (empty otherwise).
        umap: (N, 2) float32 UMAP coordinates, or None when the file was written without them.
        pca: (N, 2) float32 PCA coordinates of the means.
        pca_explained: (2,) the fraction of the means' variance each PCA axis explains.
        index: (N,) int64 the images' flat indices in their dataset.
        seed: the seed the sample was drawn with.
        recon: (M,) float32 the reconstruction error at the posterior mean (nats) of the first M <= N points
            (RECON_POINTS of a larger map), or None in files written before it was recorded: the data's error
            distribution Reconstruct compares an upload with.
    """

    means: np.ndarray
    logvars: np.ndarray
    factors: np.ndarray
    factor_names: tuple[str, ...]
    label_names: tuple[str, ...]
    umap: np.ndarray | None
    pca: np.ndarray
    pca_explained: np.ndarray
    index: np.ndarray
    seed: int
    recon: np.ndarray | None = None

    @property
    def num_points(self) -> int:
        return int(self.means.shape[0])


@torch.inference_mode()
def encode_means(model, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Posterior parameters of many images, in batches, without gradients.

    Args:
        model: a `VAE` (left unchanged; call it in eval mode).
        images: (N, C, H, W) float32 in [0, 1].

    Returns:
        means, logvars: each (N, latent_dim) float32.
    """
    device = next(model.parameters()).device
    mus, logvars = [], []
    for start in range(0, len(images), batch_size):
        x = torch.as_tensor(np.ascontiguousarray(images[start: start + batch_size]), dtype=torch.float32)
        mu, logvar = model.encode(x.to(device))
        mus.append(mu.float().cpu().numpy())
        logvars.append(logvar.float().cpu().numpy())
    if not mus:
        d = model.latent_dim
        return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
    return np.concatenate(mus), np.concatenate(logvars)


def sample_dataset(dataset, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    """A fixed sample of a dataset with its factors (or labels) and flat indices.

    Ground-truth datasets (with `images_from_factors`) give their factor classes; datasets of images in memory
    (MNIST, folders) give their labels as one factor named "label", or no factor when unlabelled.

    Returns:
        images (n, C, H, W) float32, factors (n, F) int64, factor_names (F,), index (n,) int64.
    """
    rng = np.random.default_rng(seed)
    if hasattr(dataset, "images_from_factors"):
        factors = dataset.sample_factors(n, rng)
        return (dataset.images_from_factors(factors), factors.astype(np.int64), tuple(dataset.factor_names),
                dataset.factors_to_index(factors).astype(np.int64))
    if n >= dataset.num_images:  # a set smaller than the sample: each image once, no point drawn twice
        index = rng.permutation(dataset.num_images).astype(np.int64)
        n = len(index)
    else:
        index = rng.integers(0, dataset.num_images, n).astype(np.int64)  # what ArrayDataset.sample draws
    labels = getattr(dataset, "labels", None)
    if labels is None:
        return dataset.images[index], np.zeros((n, 0), np.int64), (), index
    return dataset.images[index], np.asarray(labels)[index].astype(np.int64)[:, None], ("label",), index


def images_for_rows(dataset, projection: Projection, rows) -> np.ndarray:
    """The images of some rows of a projection, rendered again from their factors or read by index.

    Returns:
        (len(rows), C, H, W) float32 in [0, 1].
    """
    rows = np.asarray(rows, dtype=np.int64)
    if hasattr(dataset, "images_from_factors") and projection.factors.shape[1] == len(dataset.factor_sizes):
        return dataset.images_from_factors(projection.factors[rows])
    return np.asarray(dataset.images[projection.index[rows]], dtype=np.float32)


def pca_2d(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components of a set of latents.

    Args:
        latents: (N, D) points; D may be 1 (the second axis is then all zeros).

    Returns:
        coords: (N, 2) float32; explained: (2,) fraction of the variance each axis explains.
    """
    x = np.asarray(latents, dtype=np.float64)
    n, d = x.shape
    coords = np.zeros((n, 2), np.float32)
    explained = np.zeros(2)
    k = min(2, d, n)
    if k == 0 or n < 2:
        return coords, explained
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:k] * np.where(vt[:k][np.arange(k), np.abs(vt[:k]).argmax(1)] < 0, -1.0, 1.0)[:, None]
    coords[:, :k] = centred @ axes.T  # sign fixed so the largest loading of each axis is positive
    total = (s ** 2).sum()
    if total > 0:
        explained[:k] = s[:k] ** 2 / total
    return coords, explained


def fit_umap(latents: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """UMAP coordinates of a set of latents, for offline use (tens of seconds the first time in a process).

    Args:
        latents: (N, D) points, N >= 3.
        seed: fixes the layout (and makes UMAP single-threaded).

    Returns:
        (N, 2) float32.
    """
    import umap  # deliberately lazy: importing umap compiles numba code

    x = np.asarray(latents, dtype=np.float32)
    if x.shape[0] < 3:
        raise ValueError(f"UMAP needs at least 3 points, got {x.shape[0]}")
    # A sample drawn with replacement from a small dataset (1,797 digits) repeats images; repeated points make
    # UMAP's neighbour graph fall apart into tiny islands. Fit the distinct points and give repeats their place.
    _, first, inverse = np.unique(x, axis=0, return_index=True, return_inverse=True)
    if len(first) == len(x):  # no repeats: fit the points as given
        fit, back = x, None
    else:
        order = np.argsort(first)  # distinct points in order of first appearance
        fit = x[first[order]]
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        back = rank[inverse.reshape(-1)]
    if fit.shape[0] < 3:
        raise ValueError(f"UMAP needs at least 3 distinct points, got {fit.shape[0]}")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, fit.shape[0] - 1), min_dist=min_dist,
                        random_state=seed, n_jobs=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # seeded runs use 1 thread
        coords = reducer.fit_transform(fit).astype(np.float32)
    return coords if back is None else coords[back]


def place_points(new_latents: np.ndarray, ref_latents: np.ndarray, ref_coords: np.ndarray, k: int = 10) -> np.ndarray:
    """Place new latents on an existing 2-D map without refitting it (instant).

    Each new point goes to the average of the map coordinates of its k nearest reference latents, weighted by
    inverse distance: UMAP's own initial guess for `transform`. A point equal to a reference point lands on it.

    Args:
        new_latents: (M, D); ref_latents: (N, D); ref_coords: (N, 2) the map of ref_latents.

    Returns:
        (M, 2) float32.
    """
    new = np.atleast_2d(np.asarray(new_latents, dtype=np.float64))
    ref = np.asarray(ref_latents, dtype=np.float64)
    coords = np.asarray(ref_coords, dtype=np.float64)
    if ref.shape[0] == 0:
        raise ValueError("place_points needs at least one reference point")
    if new.shape[1] != ref.shape[1]:
        raise ValueError(f"new latents have {new.shape[1]} dimensions, the map's have {ref.shape[1]}")
    k = max(1, min(k, ref.shape[0]))
    chunk = max(1, 2_000_000 // ref.shape[0])  # rows at a time: (chunk, N) distances of about 16 MB
    placed = np.empty((new.shape[0], coords.shape[1]), np.float32)  # 2-D places, or latents from map places
    ref_norms = (ref ** 2).sum(1)[None, :]
    for start in range(0, new.shape[0], chunk):
        part = new[start:start + chunk]
        # squared distances through |a|^2 - 2ab + |b|^2: (M, N) without an (M, N, D) temporary
        dist = np.sqrt(np.maximum((part ** 2).sum(1)[:, None] - 2 * part @ ref.T + ref_norms, 0.0))
        nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]  # (M, k)
        near_dist = np.take_along_axis(dist, nearest, axis=1)
        weights = 1.0 / np.maximum(near_dist, 1e-12)
        exact = near_dist <= 1e-9
        weights = np.where(exact.any(1, keepdims=True), exact.astype(np.float64), weights)
        weights /= weights.sum(1, keepdims=True)
        placed[start:start + chunk] = (weights[:, :, None] * coords[nearest]).sum(1)
    return placed


def mutual_information_matrix(means: np.ndarray, factors: np.ndarray, bins: int = 20,
                              normalize: bool = False) -> np.ndarray:
    """Mutual information (nats) between each factor and each latent, as MIG computes it (`vae_core.metrics`).

    Args:
        means: (N, D) posterior means; factors: (N, F) integer classes.
        normalize: divide each factor's row by that factor's entropy, so 1 means "this dimension determines
            the factor" (a factor with a single value gets 0).

    Returns:
        (F, D) in nats (or fractions of each factor's entropy when normalized).
    """
    from .metrics import factor_entropies
    from .metrics import mutual_information_matrix as discrete_mi

    means = np.asarray(means, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.int64)
    if factors.ndim != 2 or factors.shape[0] != means.shape[0]:
        raise ValueError(f"factors must be (N, F) with N = {means.shape[0]}; got {factors.shape}")
    if means.shape[0] == 0:
        return np.zeros((factors.shape[1], means.shape[1]))
    mi = np.maximum(discrete_mi(means, factors, bins), 0.0)
    if normalize:
        entropies = factor_entropies(factors)
        mi = np.where(entropies[:, None] > 0, mi / np.where(entropies > 0, entropies, 1.0)[:, None], 0.0)
    return mi


def map_points(dataset) -> int:
    """How many points a dataset's map has: GRID_POINTS of a procedural grid; every image of a set in memory up
    to MAP_POINTS (a smaller set: each image once)."""
    if hasattr(dataset, "images_from_factors"):
        return GRID_POINTS
    return min(dataset.num_images, MAP_POINTS)


def _steps(total: int, what: str, progress: bool):
    """A progress bar over `total` images when `progress`, else a silent counter."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="img", disable=not progress, leave=False)


def encode_with_errors(model, images: np.ndarray, measured: int, batch_size: int = 256,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means, logvars, recon) of `images`: the posterior of each (`encode_means`), and the reconstruction errors
    (nats per image, at the posterior mean) of the first `measured` only (decoding is most of the cost, and the
    data's error percentiles need a sample, not 60,000)."""
    means, logvars = [], []
    recon = np.zeros(min(measured, len(images)), np.float32)
    chunk = batch_size * 8
    with _steps(len(images), "encoding", progress) as bar:
        for start in range(0, len(images), chunk):
            part = images[start:start + chunk]
            mu, logvar = encode_means(model, part, batch_size)
            means.append(mu)
            logvars.append(logvar)
            if start < measured:
                stop = min(len(part), measured - start)
                recon[start:start + stop] = elbo_terms(model, part[:stop], batch_size)["recon"]
            bar.update(len(part))
    if not means:
        return (*encode_means(model, images[:0]), recon)
    return np.concatenate(means), np.concatenate(logvars), recon


def fit_map(means: np.ndarray, seed: int = 0, fitted: int | None = None) -> np.ndarray:
    """UMAP coordinates of every point: fitted on the first `fitted` (the sample is already in random order), the
    others placed at the distance-weighted mean of their 10 nearest fitted neighbours (`place_points`, UMAP's own
    first guess for new points). 60,000 points fitted whole took 100 s on one core; 20,000 about a third."""
    fitted = UMAP_FIT_POINTS if fitted is None else fitted
    if len(means) <= fitted:
        return fit_umap(means, seed=seed)
    base = fit_umap(means[:fitted], seed=seed)
    return np.concatenate([base, place_points(means[fitted:], means[:fitted], base)])


def write_projection(folder: str | Path, model, dataset, n: int | None = None, seed: int = 0,
                     with_umap: bool = True, progress: bool = False) -> Projection:
    """Encode a fixed sample of the dataset and write `projection.npz` into a model folder, atomically.

    Args:
        folder: the model folder.
        model: the folder's `VAE`, in eval mode.
        dataset: the model's dataset (`vae_core.data.get_dataset`).
        n: sample size (default `map_points`); seed: the sample's seed (and UMAP's).
        with_umap: fit UMAP (slow the first time in a process); without it the file holds PCA only.
        progress: show progress bars (the command line).

    Returns:
        The `Projection` written.
    """
    images, factors, factor_names, index = sample_dataset(dataset, map_points(dataset) if n is None else n, seed)
    means, logvars, recon = encode_with_errors(model, images, RECON_POINTS, progress=progress)
    del images
    pca, explained = pca_2d(means)
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "means": means.astype(np.float32),
        "logvars": logvars.astype(np.float32),
        "factors": factors.astype(np.int64),
        "factor_names": np.array(factor_names, dtype="<U64").reshape(-1),
        "label_names": np.array(tuple(getattr(dataset, "label_names", ()) or ()), dtype="<U64").reshape(-1),
        "pca": pca,
        "pca_explained": explained,
        "index": index,
        "seed": np.array(seed, dtype=np.int64),
        "recon": recon,
    }
    if with_umap:
        if progress:
            print(f"UMAP of {min(len(means), UMAP_FIT_POINTS):,} points"
                  + (f", {len(means) - UMAP_FIT_POINTS:,} more placed by their neighbours"
                     if len(means) > UMAP_FIT_POINTS else "") + "...", flush=True)
        arrays["umap"] = fit_map(means, seed=seed)
    save_arrays(Path(folder) / ckpt.PROJECTION_FILE, arrays)
    return load_projection(folder)


STORED_AS_FLOAT16 = ("means", "logvars", "pca", "umap", "recon")  # 3 significant digits: plotting, placing and
# ranking an upload's error among the data's (Reconstruct), not metrics


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a projection's arrays compact, atomically: coordinates and posterior parameters as float16 (kept
    float32 where that would overflow), factor classes and indices in the smallest unsigned type that holds them,
    in an npz whose members are LZMA-compressed (12% smaller than deflate on the shipped files; `np.load` reads
    either). `load_projection` reads them back as float32 and int64, so files written before read the same."""
    compact = dict(arrays)
    for name in STORED_AS_FLOAT16:
        if name in compact and np.abs(compact[name]).max(initial=0.0) < np.finfo(np.float16).max / 2:
            compact[name] = compact[name].astype(np.float16)
    for name in ("factors", "index"):
        arr = compact[name]
        if arr.size and arr.min() >= 0:
            compact[name] = arr.astype(np.min_scalar_type(int(arr.max())))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_LZMA) as archive:
        for name, arr in compact.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
    ckpt.atomic_write_bytes(path, buf.getvalue())


def add_recon(folder: str | Path, model, dataset) -> Projection:
    """Record each point's reconstruction error in a projection.npz written before it was recorded (the points'
    images rendered again from their factors or read by index), atomically; the other arrays are kept as they are."""
    proj = load_projection(folder)
    path = Path(folder) / ckpt.PROJECTION_FILE
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    images = images_for_rows(dataset, proj, np.arange(proj.num_points))
    arrays["recon"] = elbo_terms(model, images)["recon"].astype(np.float32)
    save_arrays(path, arrays)
    return load_projection(folder)


def _array(data, name: str, path: Path, kind: str, ndim: int) -> np.ndarray:
    arr = data[name]
    if arr.dtype.kind not in kind or arr.ndim != ndim:
        raise ckpt.CheckpointError(f"{path}: '{name}' has dtype {arr.dtype} and {arr.ndim} dimensions; "
                                   f"expected a {ndim}-dimensional {'number' if 'f' in kind else 'integer'} array")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ckpt.CheckpointError(f"{path}: '{name}' holds NaN or infinite values")
    return arr


def check_npz_headers(path: Path, max_bytes: int = MAX_ARRAY_BYTES) -> None:
    """Read only the npy headers of an npz archive and refuse it before any array is allocated: a member whose
    shape or dtype is absurd, or whose stored size disagrees with its header (a header that lies, or a zip
    bomb: the uncompressed size is checked against the header, not trusted)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > 64:
                raise ckpt.CheckpointError(f"{path}: {len(members)} arrays; a projection file has about ten")
            for member in members:
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f, max_header_size=10_000)
                    header_bytes = f.tell()
                if dtype.hasobject:
                    raise ckpt.CheckpointError(f"{path}: '{member.filename}' holds Python objects")
                cells = int(np.prod(shape, dtype=np.float64)) if shape else 1
                if cells * dtype.itemsize > max_bytes:
                    raise ckpt.CheckpointError(f"{path}: '{member.filename}' claims shape {shape} of {dtype}; "
                                               f"a projection array here holds at most {max_bytes:,} bytes")
                if member.file_size != header_bytes + cells * dtype.itemsize:
                    raise ckpt.CheckpointError(f"{path}: '{member.filename}' holds {member.file_size:,} bytes, "
                                               f"not the {header_bytes + cells * dtype.itemsize:,} its header says")
    except ckpt.CheckpointError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ckpt.CheckpointError(f"{path}: not a readable projection file ({exc})") from None


def load_projection(folder: str | Path, latent_dim: int | None = None) -> Projection:
    """Read and validate a model folder's projection.npz (no pickle).

    Args:
        latent_dim: when given, the means must have this many dimensions.

    Raises:
        CheckpointError: naming the file and the problem (missing, unreadable, wrong keys, shapes or dtypes).
    """
    path = ckpt.safe_file(Path(folder), ckpt.PROJECTION_FILE, MAX_PROJECTION_BYTES)
    check_npz_headers(path, MAX_POINTS * max(latent_dim or 512, 16) * 8)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in REQUIRED_KEYS if k not in data.files]
            if missing:
                raise ckpt.CheckpointError(f"{path}: missing arrays {missing}")
            means = _array(data, "means", path, "f", 2).astype(np.float32)
            logvars = _array(data, "logvars", path, "f", 2).astype(np.float32)
            factors = _array(data, "factors", path, "iu", 2).astype(np.int64)
            pca = _array(data, "pca", path, "f", 2).astype(np.float32)
            index = _array(data, "index", path, "iu", 1).astype(np.int64)
            umap = _array(data, "umap", path, "f", 2).astype(np.float32) if "umap" in data.files else None
            recon = _array(data, "recon", path, "f", 1).astype(np.float32) if "recon" in data.files else None
            explained = data["pca_explained"].astype(np.float64) if "pca_explained" in data.files else np.zeros(2)
            names = data["factor_names"]
            labels = data["label_names"] if "label_names" in data.files else np.zeros(0, "<U1")
            if names.dtype.kind != "U" or labels.dtype.kind != "U":
                raise ckpt.CheckpointError(f"{path}: factor_names and label_names must be unicode arrays")
            seed = int(data["seed"])
    except ckpt.CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise ckpt.CheckpointError(f"{path}: not a readable projection file ({exc})") from None
    n = means.shape[0]
    problems = []
    if logvars.shape != means.shape:
        problems.append(f"logvars {logvars.shape} differ from means {means.shape}")
    if latent_dim is not None and means.shape[1] != latent_dim:
        problems.append(f"means have {means.shape[1]} dimensions, the model has {latent_dim}")
    for name, arr in (("factors", factors), ("pca", pca), ("index", index), ("umap", umap)):
        if arr is not None and arr.shape[0] != n:
            problems.append(f"{name} has {arr.shape[0]} rows, means have {n}")
    if recon is not None and recon.shape[0] > n:  # the first points' errors (RECON_POINTS of a large map)
        problems.append(f"recon has {recon.shape[0]} rows, more than the {n} points")
    for name, arr in (("pca", pca), ("umap", umap)):
        if arr is not None and arr.shape[1] != 2:
            problems.append(f"{name} must have 2 columns, has {arr.shape[1]}")
    if len(names) != factors.shape[1]:
        problems.append(f"{len(names)} factor names for {factors.shape[1]} factor columns")
    if problems:
        raise ckpt.CheckpointError(f"{path}: " + "; ".join(problems))
    return Projection(means, logvars, factors, tuple(str(s) for s in names), tuple(str(s) for s in labels), umap,
                      pca, explained, index, seed, recon)
