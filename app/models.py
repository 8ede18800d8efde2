"""Models and the arrays derived from them, computed once per process and shared by every session.

A model is loaded once (`st.cache_resource`) and never mutated: every call into it runs under
torch.inference_mode. Arrays derived from it (a data sample's latents, its projection) are cached with
`st.cache_data`, keyed by the folder and the weights' modification time, so a retrained model is reloaded.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from app import streamlit_internals
from app.text import plain
from vae_core import checkpoints as ckpt
from vae_core import folder_safety
from vae_core.data import DATA_ENV, DataNotNamed, dataset_from_named, named_data_folders
from vae_core.edit_net import EDITS_CARD, stored_edits
from vae_core.explore import dim_order, elbo_terms, slider_limits, traversal_images
from vae_core.folder_budget import check_budget
from vae_core.kinds import Kind, Objective, kind, objective
from vae_core.latent import class_fit, class_means, kl_per_dim_over_data
from vae_core.naming import LatentName, name_latents
from vae_core.projection import Projection, load_projection, mutual_information_matrix, pca_2d, sample_dataset

# this process serves the app: every folder it lists or opens keeps the budget
folder_safety.serve_within_budget(check_budget)
NAMES_SHOWN_KEY = "names_shown"  # the sidebar's switch (app.state.names_switch): False hides every latent's name
SAMPLE_SIZE = 2000  # data sample for histograms, ranges and the live map: about a second to encode
QUICK_SIZE = 256  # enough for slider ranges and a KL ordering when the card and projection lack them


@dataclass(frozen=True)
class Handle:
    """A loaded model and where it came from; `key` identifies it in the data caches."""

    name: str
    path: str
    stamp: float
    loaded: ckpt.LoadedModel

    @property
    def model(self):
        """The network; a conditional VAE bound to the condition chosen on Explore (pages decode under it)."""
        if self.kind_info.conditional:
            return self.loaded.model.bound(int(st.session_state.get(condition_key(self), 0)))
        return self.loaded.model

    @property
    def kind(self) -> str:
        """The network's kind: vae, cvae, vq-vae or vae-gan (vae_core.kinds)."""
        return self.loaded.config.model.kind

    @property
    def kind_info(self) -> Kind:
        """What this kind of network is and can do: pages ask this, never compare kind names."""
        return kind(self.kind)

    @property
    def objective_info(self) -> Objective:
        return objective(self.loaded.config.train.objective)

    @property
    def card(self) -> dict:
        return self.loaded.card

    @property
    def config(self):
        return self.loaded.config

    @property
    def latent_dim(self) -> int:
        return self.loaded.config.model.latent_dim

    @property
    def image_size(self) -> int:
        return self.loaded.config.model.image_size

    @property
    def channels(self) -> int:
        return self.loaded.config.model.channels

    @property
    def key(self) -> tuple[str, float]:
        return self.path, self.stamp


def condition_key(h: Handle) -> str:
    """Session key of a conditional VAE's chosen condition (an index into its condition values)."""
    return f"condition::{h.name}"


def configure_process() -> None:
    """At the top of every run; the work is done once per process, under a lock, before any page's own code.

    One intra-op thread per request: a slider's single-image decode gains nothing from more, and idle OpenMP
    workers spinning after each call would take the CPU from the server (measured: median latency from slider key
    to new image 150 ms instead of 170 ms on a loaded 2-core machine). The libraries the pages import lazily are
    imported here first: two sessions importing pandas at once for the first time (a class opening
    Disentanglement together) made one of them fail with "partially initialized module 'pandas'" (seen under
    the load test's page visits)."""
    with _process_lock:
        torch.set_num_threads(1)
        if not _frozen:
            import pandas  # noqa: F401  the sidebar's table, and the pages' frames
            import plotly.graph_objects  # noqa: F401
        _freeze_startup_objects()
        streamlit_internals.protect_shared_caches()  # a client's "clear_cache" clears only its own session


_frozen = False
_process_lock = threading.Lock()


def _freeze_startup_objects() -> None:
    """Once per process: move the objects of the imports (torch, numpy, streamlit: about 400,000) out of the
    garbage collector's sight. Streamlit runs a full collection after every script run (runner.postScriptGC),
    which otherwise walks them all each time: measured 70% of the server's CPU, about 90 ms of a slider's
    120 ms, so 30 sessions could not be served by 2 cores. Later objects are still collected as usual."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def _mtime(path: Path) -> float:
    """A file's modification time (0 when missing): part of the cache keys, so a rewritten file is reread."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(show_spinner="Loading the model...", max_entries=16)
def _load(path: str, stamp: float) -> ckpt.LoadedModel:
    return ckpt.load_model(path)


def handle_at(path: str, stamp: float) -> Handle:
    """The model folder at `path` as it was at `stamp` (`folder_stamp`): what a function cached on (path, stamp)
    rebuilds its handle from."""
    return Handle(Path(path).name, path, stamp, _load(path, stamp))


STAMPED = (ckpt.WEIGHTS_FILE, ckpt.CONFIG_FILE, ckpt.CARD_FILE, ckpt.PROJECTION_FILE, EDITS_CARD)


@st.cache_resource(max_entries=16, show_spinner=False)
def _edits(path: str, stamp: float) -> tuple[dict, dict, str | None]:
    h = handle_at(path, stamp)
    sizes = dict(zip(h.config.dataset.factor_names, h.config.dataset.factor_sizes))
    return stored_edits(path, h.latent_dim, sizes) if h.kind_info.trained_here else ({}, {}, None)


def edits(h: Handle) -> tuple[dict, dict, str | None]:
    """(factor -> the counterfactual edit stored beside the model, their card, why none is used) (vae_core.edits)."""
    return _edits(h.path, h.stamp)


@dataclass(frozen=True)
class ClassVectors:
    """Labelled data's attribute vectors (no twins to learn an edit from): each class's mean latent, its names, and
    the share of the data's points whose nearest class mean is their own (how well the vectors fit)."""

    centres: np.ndarray
    names: tuple[str, ...]
    fit: float


def class_vectors(h: Handle) -> ClassVectors | None:
    """The class vectors of a model of labelled images (digits, a folder with sub-folders) that has no stored
    edits, from its map's points; None otherwise."""
    if edits(h)[0] or h.kind_info.conditional:
        return None
    proj, _ = map_projection(h)
    if proj is None or proj.factor_names != ("label",) or len(proj.label_names) < 2:
        return None
    return _class_vectors(h.path, h.stamp, proj)


@st.cache_data(max_entries=32, show_spinner=False)
def _class_vectors(path: str, stamp: float, _proj: Projection) -> ClassVectors:
    labels = _proj.factors[:, 0]
    centres = class_means(_proj.means, labels, len(_proj.label_names))
    return ClassVectors(centres, tuple(_proj.label_names), class_fit(_proj.means, labels, centres))


@st.cache_data(max_entries=32, show_spinner=False)
def _training_log(path: str, stamp: float) -> dict | None:
    return ckpt.read_training_log(path)


def training_log(h: Handle) -> dict | None:
    """The model's training.csv as curves (vae_core.checkpoints.read_training_log), or None."""
    return _training_log(h.path, _mtime(Path(h.path) / ckpt.LOG_FILE)) if h.kind_info.trained_here else None


def folder_stamp(folder: Path) -> float:
    """The latest modification time of the files a model is read from: the weights, its config, its card and its
    projection. Every cache of a model is keyed by it, so a folder evaluated (or retrained) while the app runs is read
    again on the next rerun: the card in the sidebar and the tables, the map and the data's errors alike (the card
    was kept until a restart while the map already showed the new projection)."""
    return max(_mtime(folder / name) for name in STAMPED)


def open_model(entry: ckpt.ModelEntry) -> Handle:
    """The loaded model of a listed folder; raises CheckpointError naming the problem."""
    return handle_at(str(entry.path), folder_stamp(Path(entry.path)))


@st.cache_resource(show_spinner="Preparing the dataset...", max_entries=8)
def _dataset(name: str, root: str | None, image_size: int, channels: int, named: tuple[str, ...]):
    """A model's dataset; data read from a path only from a folder in `named` ($VAE_EXPLORER_DATA, part of the
    key so that a server started with other folders does not reuse this one)."""
    return dataset_from_named(name, root, image_size, channels, [Path(p) for p in named])


def dataset_for(h: Handle):
    """(dataset, None) when the model's data is at hand and fits the model, else (None, the reason). Data read from
    a path is opened only from a folder named in $VAE_EXPLORER_DATA by the person who started the app, never from
    the path a model folder records (vae_core.data.dataset_from_named)."""
    t = h.config.train
    named = tuple(str(p) for p in named_data_folders())
    try:
        dataset = _dataset(t.dataset, t.data_root, h.image_size, h.channels, named)
    except DataNotNamed as exc:
        return None, (f"this model was trained on data read from a path, and the app reads a data folder only when "
                      f"the person who starts it names it. Start it with `{DATA_ENV}={plain(exc.recorded, 200)}` "
                      f"(or the folder it was moved to, with the same last name) before `make app`")
    except Exception as exc:  # noqa: BLE001  any failure means "no dataset examples", never a broken page
        return None, f"the dataset {plain(t.dataset)} is not available here ({plain(exc, 200)})"
    if (dataset.channels, dataset.image_size) != (h.channels, h.image_size):
        return None, (f"the dataset {t.dataset!r} has {dataset.channels}-channel {dataset.image_size}px images; "
                      f"this model takes {h.channels}-channel {h.image_size}px")
    return dataset, None


@st.cache_data(show_spinner="Encoding a sample of the data...", max_entries=32)
def _data_sample(path: str, stamp: float, n: int, seed: int) -> dict | None:
    h = handle_at(path, stamp)
    dataset, _ = dataset_for(h)
    if dataset is None:
        return None
    images, factors, names, index = sample_dataset(dataset, n, seed)
    terms = elbo_terms(h.model, images)
    return {"means": terms["mu"], "logvars": terms["logvar"], "recon": terms["recon"], "kl": terms["kl"],
            "factors": factors, "factor_names": names, "index": index}


def data_errors(h: Handle) -> np.ndarray | None:
    """The data's reconstruction errors (nats per image): recorded in the shipped projection.npz where it has them
    (no encoding on the first visit), else measured on a data sample; None without data."""
    proj, _ = projection(h)
    if proj is not None and proj.recon is not None and len(proj.recon):
        return proj.recon  # a large map records its first points' (projection.RECON_POINTS)
    sample = data_sample(h)
    return None if sample is None else sample["recon"]


SAMPLE_MULTIPLY_ADDS = 40_000_000_000  # the data sample's compute: the zoo's 2,000 images of 20 M multiply-adds each


def data_sample(h: Handle, n: int = SAMPLE_SIZE, seed: int = 0) -> dict | None:
    """Latents, reconstruction and KL (nats) of a fixed sample of the model's data; None without data. A network
    dearer than the zoo's samples fewer images (at least QUICK_SIZE), so that opening any folder within the budget
    costs about the same time (the budget's largest took 15 s with 2,000 images, 9 s with 400)."""
    return _data_sample(h.path, h.stamp, min(n, _affordable_sample(h.path, h.stamp)) if h.kind_info.trained_here
                        else n, seed)


@st.cache_data(max_entries=64, show_spinner=False)
def _affordable_sample(path: str, stamp: float) -> int:
    from vae_core.folder_budget import folder_cost

    cost = folder_cost(path)
    return SAMPLE_SIZE if cost is None or not cost.multiply_adds else \
        max(QUICK_SIZE, SAMPLE_MULTIPLY_ADDS // cost.multiply_adds)


@st.cache_data(show_spinner="Reading the projection...", max_entries=32)
def _projection(path: str, stamp: float, latent_dim: int) -> tuple[Projection | None, str | None]:
    if not (Path(path) / ckpt.PROJECTION_FILE).exists():
        return None, None
    try:
        return load_projection(path, latent_dim), None
    except ckpt.CheckpointError as exc:
        return None, str(exc)


def projection(h: Handle) -> tuple[Projection | None, str | None]:
    """The shipped projection.npz (or None) and, when it is broken, why."""
    return _projection(h.path, h.stamp, h.latent_dim)


def data_means(h: Handle, n: int = SAMPLE_SIZE) -> np.ndarray | None:
    """Posterior means of a data sample: the shipped projection's, else those of n live images, else None."""
    proj, _ = projection(h)
    if proj is not None:
        return proj.means
    sample = data_sample(h, n)
    return None if sample is None else sample["means"]


def kl_per_dim(h: Handle) -> np.ndarray | None:
    """Per-dimension KL (nats): from the card (evaluation, else end of training), else from a data sample."""
    for section in ("evaluation", "final"):
        values = h.card.get(section, {}).get("kl_per_dim") if isinstance(h.card.get(section), dict) else None
        try:
            kl = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if kl.shape == (h.latent_dim,) and np.isfinite(kl).all():
            return kl
    proj, _ = projection(h)
    sample = {"means": proj.means, "logvars": proj.logvars} if proj is not None else data_sample(h, QUICK_SIZE)
    if sample is None:
        return None
    return kl_per_dim_over_data(torch.from_numpy(sample["means"]), torch.from_numpy(sample["logvars"])).numpy()


def dims(h: Handle) -> tuple[list[int], np.ndarray, np.ndarray | None]:
    """(dimensions ordered by KL, active mask, KL per dimension or None)."""
    kl = kl_per_dim(h)
    order, active = dim_order(kl, h.latent_dim)
    return order, active, kl


def limits(h: Handle) -> np.ndarray:
    """Slider limits per dimension."""
    return slider_limits(data_means(h, QUICK_SIZE), h.latent_dim)


@st.cache_data(max_entries=256, show_spinner=False)
def _example(path: str, stamp: float, number: int) -> np.ndarray | None:
    dataset, _ = dataset_for(handle_at(path, stamp))
    return None if dataset is None else sample_dataset(dataset, 1, seed=10_000 + number)[0][0]


def example_factors(h: Handle, number: int) -> np.ndarray | None:
    """The generating factors of dataset example `number` (ground-truth data only), else None."""
    dataset, _ = dataset_for(h)
    if dataset is None or not hasattr(dataset, "images_from_factors"):
        return None
    return sample_dataset(dataset, 1, seed=10_000 + int(number))[1][0]


def dataset_example(h: Handle, number: int) -> np.ndarray | None:
    """Dataset example number `number` (C, H, W), the same for everyone; None without data."""
    return _example(h.path, h.stamp, int(number))


def map_projection(h: Handle) -> tuple[Projection | None, bool]:
    """(the points of the latent map, whether they were computed live): the shipped projection.npz, else a
    live PCA of the data sample, else (None, True) when the model has neither."""
    proj, _ = projection(h)
    if proj is not None:
        return proj, False
    sample = data_sample(h)
    if sample is None:
        return None, True
    pca, explained = pca_2d(sample["means"])
    dataset, _ = dataset_for(h)
    labels = tuple(getattr(dataset, "label_names", ()) or ())
    return Projection(sample["means"], sample["logvars"], sample["factors"], tuple(sample["factor_names"]), labels,
                      None, pca, explained, sample["index"], 0), True


@st.cache_data(max_entries=32, show_spinner="Computing mutual information...")
def _mi(path: str, stamp: float, latent_dim: int) -> tuple[np.ndarray, list[str]] | None:
    h = handle_at(path, stamp)
    proj, _ = map_projection(h)
    if proj is None or proj.factors.shape[1] == 0:
        return None
    keep = [k for k in range(proj.factors.shape[1]) if len(np.unique(proj.factors[:, k])) > 1]
    if not keep:
        return None
    matrix = mutual_information_matrix(proj.means, proj.factors[:, keep], normalize=True)
    return matrix, [proj.factor_names[k] for k in keep]


def mi_matrix(h: Handle) -> tuple[np.ndarray, list[str], str] | None:
    """(factor-by-latent MI as a share of each factor's entropy, factor names, where it comes from): the card's,
    else computed from the latents of a data sample; None without factors."""
    card_mi = h.card.get("metrics", {}).get("mi_matrix") if isinstance(h.card.get("metrics"), dict) else None
    if isinstance(card_mi, dict):
        names, card_mi = card_mi.get("factor_names"), card_mi.get("matrix", card_mi.get("values"))
    else:
        names = None
    try:
        matrix = np.asarray(card_mi, dtype=np.float64)
    except (TypeError, ValueError):
        matrix = None
    if matrix is not None and matrix.ndim == 2 and matrix.shape[1] == h.latent_dim:
        sizes = dict(zip(h.config.dataset.factor_names, h.config.dataset.factor_sizes))
        # the card's own names only when they are the dataset's factors (a card comes from anyone: a dict or a name
        # the data lacks broke Explore and Traversals)
        if not (isinstance(names, list) and len(names) == matrix.shape[0]
                and all(isinstance(n, str) and n in sizes for n in names)):
            varying = [n for n, s in zip(h.config.dataset.factor_names, h.config.dataset.factor_sizes) if s > 1]
            names = varying if len(varying) == matrix.shape[0] else [f"factor {i}" for i in range(matrix.shape[0])]
        entropy = np.array([np.log(sizes[n]) if sizes.get(n, 1) > 1 else 1.0 for n in names])  # a uniform grid's
        return np.clip(matrix / entropy[:, None], 0.0, 1.0), list(names), "from the model card (evaluation)"
    result = _mi(h.path, h.stamp, h.latent_dim)
    if result is None:
        return None
    return result[0], result[1], "computed live from the latents of a data sample"


def latent_names(h: Handle) -> list[LatentName] | None:
    """Each latent named by the factor it carries (vae_core.naming), or None where the data has no factors or the
    teacher has hidden the names (the sidebar's switch, `?names=hidden`)."""
    if st.session_state.get(NAMES_SHOWN_KEY) is False:
        return None
    mi = mi_matrix(h)
    if mi is None or not h.kind_info.continuous_latent:
        return None
    _, active, _ = dims(h)
    return name_latents(mi[0], mi[1], np.ones(len(mi[1])), active)  # mi_matrix gives shares already


@st.cache_data(max_entries=64, show_spinner=False)
def _traversal(path: str, stamp: float, z: np.ndarray, values: np.ndarray, rows: tuple[int, ...]) -> np.ndarray:
    return traversal_images(_load(path, stamp).model, z, values, list(rows))


def traversal(h: Handle, z, values, rows) -> np.ndarray:
    """The decoded traversal grid of `rows` from `z` over `values` (vae_core.explore.traversal_images), once per
    model and question: a page visited again, or another widget on it moved, decodes nothing anew (measured:
    130 of Disentanglement's 270 ms a visit)."""
    return _traversal(h.path, h.stamp, np.asarray(z, dtype=np.float32), np.asarray(values, dtype=np.float32),
                      tuple(int(r) for r in rows))


@st.cache_data(max_entries=32, show_spinner=False)
def _traversal_sheet(path: str, stamp: float, z: np.ndarray, values: np.ndarray, rows: tuple[int, ...],
                     labels: tuple[str, ...], scale: int) -> bytes:
    from vae_core.imaging import encode_labelled_png, image_grid

    images = traversal(handle_at(path, stamp), z, values, rows)
    return encode_labelled_png(image_grid(images, len(rows), values.shape[1]), list(labels), len(rows), scale=scale)


def traversal_sheet(h: Handle, z, values, rows, labels, scale: int = 2) -> bytes:
    """`traversal` as one PNG, each row named in a margin by `labels` (vae_core.imaging.encode_labelled_png)."""
    return _traversal_sheet(h.path, h.stamp, np.asarray(z, dtype=np.float32), np.asarray(values, dtype=np.float32),
                            tuple(int(r) for r in rows), tuple(labels), scale)


@st.cache_data(max_entries=16, show_spinner="Decoding the learned manifold...")
def _manifold(path: str, stamp: float, n: int) -> tuple[str, int, np.ndarray]:
    import base64

    from vae_core.imaging import encode_png, image_grid
    from vae_core.manifold import manifold_grid

    images, latents = manifold_grid(_load(path, stamp).model, n)
    grid = image_grid(images, n, n, pad=0)
    uri = "data:image/png;base64," + base64.b64encode(encode_png(grid)).decode("ascii")
    return uri, grid.shape[-1], latents


def manifold(h: Handle, n: int = 15) -> tuple[str, int, np.ndarray]:
    """A 2-D model's learned-manifold figure: the decoded n x n quantile grid as a PNG data URI, its width in
    pixels, and the cells' latents (n, n, 2)."""
    return _manifold(h.path, h.stamp, n)


def as_tensor(array) -> torch.Tensor | None:
    """float32 tensor of an array, None for None (optional arguments of vae_core.latent)."""
    return None if array is None else torch.as_tensor(np.asarray(array, dtype=np.float32))
