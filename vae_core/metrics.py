"""Disentanglement metrics by the disentanglement_lib protocol (Locatello et al. 2019).

Every score uses the mean of q(z|x) as the representation and only the factors that vary (dSprites' constant
colour is dropped). Sample counts, discretisation and classifiers follow disentanglement_lib's defaults:

| metric | protocol |
| --- | --- |
| beta-VAE score (Higgins 2017) | a point: random factor k, 64 pairs sharing k, feature = mean abs difference of the two codes; 10,000 train / 5,000 eval points; LogisticRegression (default settings); score = eval accuracy |
| FactorVAE score (Kim & Mnih 2018) | global variances from 10,000 codes (ddof 1), latents with std < 0.05 pruned; a vote: factor k fixed across 64 images, argmin of local / global variance; 10,000 train / 5,000 eval votes; majority-vote classifier |
| MIG (Chen 2018) | 10,000 codes, each latent in a 20-bin histogram, discrete MI with each factor (nats); mean over factors of (top1 - top2) / H(factor) |
| DCI (Eastwood & Williams 2018) | 10,000 train / 5,000 test; one GradientBoostingClassifier (defaults) per factor; importances -> disentanglement (entropy base = number of factors), completeness (base = number of latents), informativeness = test accuracy |
| SAP (Kumar 2018) | 10,000 train / 5,000 test; per (latent, factor) LinearSVC(C=0.01, balanced) on the factor's classes; mean over factors of the gap between the best two latents |

The only departure is one of cost, not of result: a ground-truth grid of at most `CACHE_LIMIT` images (all of
dSprites, all of faces) is encoded once, and every metric looks its codes up by grid index. The representation is
deterministic, so this gives exactly the codes the protocol would compute, without encoding 2.9 million images.
MIG, DCI and SAP each draw their own samples, as in disentanglement_lib.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from joblib import Parallel, delayed
from scipy.stats import entropy
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

PROTOCOL = "disentanglement_lib (Locatello et al. 2019)"
CACHE_LIMIT = 1_000_000  # grids up to this many images are encoded once
NUM_BINS = 20


class MetricsUnavailable(ValueError):
    """The dataset has no ground-truth factors, so disentanglement cannot be measured."""


def representation_from_model(model, batch_size: int = 1024) -> Callable[[np.ndarray], np.ndarray]:
    """images (n, C, H, W) float32 -> posterior means (n, latent_dim), under inference mode."""
    device = next(model.parameters()).device

    def represent(images: np.ndarray) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
                out.append(model.encode(x)[0].float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, model.latent_dim), np.float32)

    return represent


class FactorCodes:
    """Codes for factor class indices: rendered and encoded, or looked up in a once-encoded grid."""

    def __init__(self, dataset, represent: Callable[[np.ndarray], np.ndarray], cache: bool | None = None,
                 chunk: int = 8192):
        if not getattr(dataset, "factor_sizes", ()) or not dataset.varying_factors:
            raise MetricsUnavailable(
                f"{getattr(dataset, 'name', 'this dataset')} has no ground-truth factors: disentanglement metrics "
                "need a dataset generated from known factors (dsprites, faces)")
        self.dataset = dataset
        self.represent = represent
        self.varying = dataset.varying_factors
        self.cached = None
        if cache if cache is not None else dataset.num_images <= CACHE_LIMIT:
            codes = []
            for start in range(0, dataset.num_images, chunk):
                index = np.arange(start, min(start + chunk, dataset.num_images))
                codes.append(represent(dataset.images_from_factors(dataset.index_to_factors(index))))
            self.cached = np.concatenate(codes).astype(np.float64)

    def __call__(self, factors: np.ndarray) -> np.ndarray:
        """(n, F) class indices -> (n, D) codes."""
        if self.cached is not None:
            return self.cached[self.dataset.factors_to_index(factors)]
        return np.asarray(self.represent(self.dataset.images_from_factors(factors)), dtype=np.float64)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n random codes (n, D) and their varying factors' classes (n, K)."""
        factors = self.dataset.sample_factors(n, rng)
        return self(factors), factors[:, self.varying]


def _check(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"{name}={value} is too few samples for this protocol: the minimum is {minimum}")


def _result(seed: int, counts: dict, departures: list[str] | None = None, **scores) -> dict:
    return {**{k: float(v) for k, v in scores.items()}, "protocol": PROTOCOL, "samples": counts, "seed": seed,
            "departures": departures or []}


def beta_vae_score(codes: FactorCodes, seed: int = 0, batch_size: int = 64, num_train: int = 10_000,
                   num_eval: int = 5_000) -> dict:
    """Higgins et al.'s score: accuracy of a linear classifier predicting the fixed factor from |z1 - z2|."""
    _check("num_train", num_train, 2)
    _check("num_eval", num_eval, 1)
    _check("batch_size", batch_size, 1)
    rng = np.random.default_rng(seed)

    def points(n):
        k = rng.integers(0, len(codes.varying), n)
        f1 = codes.dataset.sample_factors(n * batch_size, rng)
        f2 = codes.dataset.sample_factors(n * batch_size, rng)
        fixed = np.repeat(np.asarray(codes.varying)[k], batch_size)
        f2[np.arange(n * batch_size), fixed] = f1[np.arange(n * batch_size), fixed]
        diff = np.abs(codes(f1) - codes(f2)).reshape(n, batch_size, -1).mean(1)
        return diff, k

    x_train, y_train = points(num_train)
    x_eval, y_eval = points(num_eval)
    if len(np.unique(y_train)) < 2:
        raise ValueError("num_train is too small: the training points cover fewer than two factors")
    with warnings.catch_warnings():  # the protocol's defaults stop lbfgs at 100 iterations; keep them, quietly
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression().fit(x_train, y_train)
    counts = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval}
    return _result(seed, counts, score=model.score(x_eval, y_eval), train_accuracy=model.score(x_train, y_train))


def factor_vae_score(codes: FactorCodes, seed: int = 0, batch_size: int = 64, num_train: int = 10_000,
                     num_eval: int = 5_000, num_variance_estimate: int = 10_000) -> dict:
    """Kim & Mnih's score: majority-vote accuracy of the latent with the least normalised variance."""
    _check("num_train", num_train, 1)
    _check("num_eval", num_eval, 1)
    _check("batch_size", batch_size, 2)
    _check("num_variance_estimate", num_variance_estimate, 2)
    rng = np.random.default_rng(seed)
    global_var = np.var(codes.sample(num_variance_estimate, rng)[0], axis=0, ddof=1)
    active = np.sqrt(global_var) >= 0.05
    counts = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval,
              "num_variance_estimate": num_variance_estimate}
    if not active.any():
        return _result(seed, counts, score=0.0, train_accuracy=0.0, active_dims=0)

    def votes(n):
        k = rng.integers(0, len(codes.varying), n)
        factors = codes.dataset.sample_factors(n * batch_size, rng).reshape(n, batch_size, -1)
        column = np.asarray(codes.varying)[k]
        factors[np.arange(n)[:, None], np.arange(batch_size)[None, :], column[:, None]] = \
            factors[np.arange(n), 0, column][:, None]
        z = codes(factors.reshape(n * batch_size, -1)).reshape(n, batch_size, -1)
        local = np.var(z, axis=1, ddof=1)[:, active] / global_var[active]
        table = np.zeros((len(codes.varying), int(active.sum())), dtype=np.int64)
        np.add.at(table, (k, np.argmin(local, axis=1)), 1)
        return table

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=0)
    cols = np.arange(train_votes.shape[1])
    eval_votes = votes(num_eval)
    return _result(seed, counts,
                   score=eval_votes[classifier, cols].sum() / eval_votes.sum(),
                   train_accuracy=train_votes[classifier, cols].sum() / train_votes.sum(),
                   active_dims=int(active.sum()))


def discretize(codes: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Each latent into `num_bins` equal-width histogram bins (disentanglement_lib's discretiser): (n, D) int."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], num_bins)[1][:-1]
        out[:, d] = np.digitize(codes[:, d], edges)
    return out


def mutual_information_matrix(codes: np.ndarray, factors: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Discrete mutual information (nats) between each factor and each discretised latent: (K, D)."""
    binned = discretize(codes, num_bins)
    return np.array([[mutual_info_score(factors[:, k], binned[:, d]) for d in range(codes.shape[1])]
                     for k in range(factors.shape[1])])


def factor_entropies(factors: np.ndarray) -> np.ndarray:
    """Discrete entropy (nats) of each factor column: (K,)."""
    return np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])


def mig(codes: FactorCodes, seed: int = 0, num_train: int = 10_000, num_bins: int = NUM_BINS) -> dict:
    """Chen et al.'s mutual information gap, with the factor-by-latent MI matrix it is built from."""
    _check("num_train", num_train, num_bins)
    z, y = codes.sample(num_train, np.random.default_rng(seed))
    mi = mutual_information_matrix(z, y, num_bins)
    top = np.sort(mi, axis=1)[:, ::-1]
    gaps = (top[:, 0] - (top[:, 1] if mi.shape[1] > 1 else 0.0)) / factor_entropies(y)
    result = _result(seed, {"num_train": num_train, "num_bins": num_bins}, score=gaps.mean())
    result["per_factor"] = [float(g) for g in gaps]
    result["mi_matrix"] = mi.round(5).tolist()
    return result


def _train_test(codes: FactorCodes, seed: int, num_train: int, num_test: int, min_train: int):
    """Independent train and test draws of (codes, factor classes), checked against the minimum counts."""
    _check("num_train", num_train, min_train)
    _check("num_test", num_test, 1)
    rng = np.random.default_rng(seed)
    return (*codes.sample(num_train, rng), *codes.sample(num_test, rng))


def _boosted_trees_fit(z_train, y_train, z_test, y_test, seed: int) -> tuple[np.ndarray, float, float]:
    """DCI's per-factor model: (absolute feature importances, train accuracy, test accuracy)."""
    model = GradientBoostingClassifier(random_state=seed).fit(z_train, y_train)
    return np.abs(model.feature_importances_), model.score(z_train, y_train), model.score(z_test, y_test)


def dci(codes: FactorCodes, seed: int = 0, num_train: int = 10_000, num_test: int = 5_000) -> dict:
    """Eastwood & Williams' disentanglement, completeness and informativeness from boosted-tree importances."""
    z_train, y_train, z_test, y_test = _train_test(codes, seed, num_train, num_test, min_train=10)
    num_codes, num_factors = z_train.shape[1], y_train.shape[1]
    # one boosted model per factor, fitted in parallel processes: the same models (fixed random_state), sooner
    jobs = min(num_factors, os.cpu_count() or 1)
    fits = Parallel(n_jobs=jobs)(delayed(_boosted_trees_fit)(z_train, y_train[:, k], z_test, y_test[:, k], seed)
                                 for k in range(num_factors))
    importance = np.stack([f[0] for f in fits], axis=1) if fits else np.zeros((num_codes, 0))
    train_acc, test_acc = [f[1] for f in fits], [f[2] for f in fits]
    total = importance.sum()
    code_weight = importance.sum(1) / total if total > 0 else np.ones(num_codes) / num_codes
    per_code = 1.0 - entropy(importance.T + 1e-11, base=num_factors)
    factor_weight = importance.sum(0) / total if total > 0 else np.ones(num_factors) / num_factors
    per_factor = 1.0 - entropy(importance + 1e-11, base=num_codes)
    counts = {"num_train": num_train, "num_test": num_test}
    result = _result(seed, counts, disentanglement=(per_code * code_weight).sum(),
                     completeness=(per_factor * factor_weight).sum(), informativeness=np.mean(test_acc),
                     informativeness_train=np.mean(train_acc))
    result["importance_matrix"] = importance.round(5).tolist()
    return result


def sap(codes: FactorCodes, seed: int = 0, num_train: int = 10_000, num_test: int = 5_000) -> dict:
    """Kumar et al.'s separated attribute predictability (discrete factors)."""
    z_train, y_train, z_test, y_test = _train_test(codes, seed, num_train, num_test, min_train=2)
    scores = np.zeros((z_train.shape[1], y_train.shape[1]))
    for d in range(z_train.shape[1]):
        for k in range(y_train.shape[1]):
            if len(np.unique(y_train[:, k])) < 2:
                continue
            svm = LinearSVC(C=0.01, class_weight="balanced").fit(z_train[:, d:d + 1], y_train[:, k])
            scores[d, k] = np.mean(svm.predict(z_test[:, d:d + 1]) == y_test[:, k])
    top = np.sort(scores, axis=0)
    gap = top[-1] - top[-2] if scores.shape[0] > 1 else top[-1]
    return _result(seed, {"num_train": num_train, "num_test": num_test}, score=gap.mean())


def active_units(means: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Latents whose posterior means vary over the data (variance above `threshold`, Burda et al. 2016): (D,)."""
    return np.var(np.asarray(means), axis=0) > threshold


def compute_all_metrics(dataset, represent: Callable[[np.ndarray], np.ndarray], seed: int = 0,
                        cache: bool | None = None, **counts) -> dict:
    """All five scores, the MI matrix and active units, each with its protocol, counts and seed.

    Args:
        represent: images (n, C, H, W) -> posterior means (n, D).
        counts: per-metric overrides, e.g. mig={"num_train": 1000} (recorded in each result).
    """
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    codes = FactorCodes(dataset, represent, cache)
    seconds["encoding"] = round(time.perf_counter() - began, 2)
    results = {}
    for name, metric in (("beta_vae", beta_vae_score), ("factor_vae", factor_vae_score), ("mig", mig),
                         ("dci", dci), ("sap", sap)):
        began = time.perf_counter()
        results[name] = metric(codes, seed, **counts.get(name, {}))
        seconds[name] = round(time.perf_counter() - began, 2)
    z, _ = codes.sample(10_000, np.random.default_rng(seed))
    results["active_units"] = int(active_units(z).sum())
    results["factor_names"] = [dataset.factor_names[k] for k in codes.varying]
    results["mi_matrix"] = results["mig"]["mi_matrix"]
    results["seconds"] = seconds  # wall-clock seconds of each part: the grid's encoding and each metric
    if codes.cached is not None:
        for name in ("beta_vae", "factor_vae", "mig", "dci", "sap"):
            results[name]["departures"].append(
                f"codes looked up from the whole grid ({dataset.num_images} images) encoded once; identical to "
                "encoding each sample, since the representation (the posterior mean) is deterministic")
    return results
