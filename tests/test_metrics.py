"""The metrics on representations whose answer is known: the factors themselves, a rotation of them, noise."""

import numpy as np
import pytest

from vae_core.data.base import GroundTruthDataset
from vae_core.metrics import MetricsUnavailable, compute_all_metrics, mig

COUNTS = {
    "beta_vae": {"num_train": 600, "num_eval": 300},
    "factor_vae": {"num_train": 600, "num_eval": 300, "num_variance_estimate": 2000},
    "mig": {"num_train": 3000},
    "dci": {"num_train": 1000, "num_test": 500},
    "sap": {"num_train": 1000, "num_test": 500},
}
SCORES = [("beta_vae", "score"), ("factor_vae", "score"), ("mig", "score"), ("dci", "disentanglement"),
          ("dci", "completeness"), ("dci", "informativeness"), ("sap", "score")]


class FactorGrid(GroundTruthDataset):
    """A tiny grid whose 'images' are the factor classes themselves: (n, F, 1, 1)."""

    name = "factor-grid"
    factor_names = ("constant", "a", "b", "c", "d")
    factor_sizes = (1, 3, 6, 8, 10)

    def images_from_factors(self, factors):
        factors = np.asarray(factors)
        self.check_factors(factors)
        return factors.astype(np.float32)[:, :, None, None]


def _perfect(noise_dims=3):
    """One latent per varying factor (scaled to unit range), then noise latents that depend on no factor."""
    def represent(images):
        f = images[:, 1:, 0, 0] / (np.array(FactorGrid.factor_sizes[1:]) - 1)
        key = (images[:, 1:, 0, 0] @ np.array([1, 3, 18, 144])).astype(np.int64)
        noise = np.random.default_rng(7).normal(0, 0.5, (1440, noise_dims))[key]
        return np.concatenate([f, noise], axis=1)
    return represent


def _rotated():
    rotation = np.linalg.qr(np.random.default_rng(3).normal(size=(7, 7)))[0]
    perfect = _perfect()
    return lambda images: perfect(images) @ rotation


def _noise(images):
    key = (images[:, 1:, 0, 0] @ np.array([1, 3, 18, 144])).astype(np.int64)
    return np.random.default_rng(11).normal(size=(1440, 6))[key]


def _permuted():
    perfect = _perfect()
    order = np.array([4, 2, 6, 0, 1, 5, 3])
    return lambda images: perfect(images)[:, order]


def _scores(result):
    return {f"{m}.{k}": result[m][k] for m, k in SCORES}


@pytest.fixture(scope="module")
def results():
    grid = FactorGrid()
    return {name: compute_all_metrics(grid, fn, seed=0, **COUNTS)
            for name, fn in [("perfect", _perfect()), ("rotated", _rotated()), ("noise", _noise),
                             ("permuted", _permuted())]}


def test_perfect_representation_scores_near_the_top(results):
    r = results["perfect"]
    assert r["mig"]["score"] >= 0.9
    assert r["factor_vae"]["score"] == 1.0
    assert r["beta_vae"]["score"] >= 0.99
    assert r["dci"]["disentanglement"] >= 0.9
    assert r["dci"]["informativeness"] >= 0.95
    assert r["sap"]["score"] > 0.1  # a 1-D linear SVM cannot split 10 classes, so SAP stays low even here


def test_rotation_mixing_the_factors_scores_clearly_lower(results):
    perfect, rotated = results["perfect"], results["rotated"]
    assert rotated["mig"]["score"] < perfect["mig"]["score"] - 0.4
    assert rotated["dci"]["disentanglement"] < perfect["dci"]["disentanglement"] - 0.3


def test_noise_scores_near_chance(results):
    r = results["noise"]
    assert r["mig"]["score"] < 0.05
    assert r["beta_vae"]["score"] < 0.45  # chance is 0.25 for 4 factors
    assert r["factor_vae"]["score"] < 0.45
    assert r["dci"]["disentanglement"] < 0.3
    assert r["sap"]["score"] < 0.05


def test_permuting_latents_changes_no_score(results):
    perfect, permuted = _scores(results["perfect"]), _scores(results["permuted"])
    for key, value in perfect.items():
        assert permuted[key] == pytest.approx(value, abs=1e-6), key


def test_mi_matrix_of_the_perfect_representation_is_diagonal_dominant(results):
    mi = np.array(results["perfect"]["mi_matrix"])
    assert mi.shape == (4, 7)
    for k in range(4):
        assert mi[k, k] > 5 * np.delete(mi[k], k).max()
    assert results["perfect"]["factor_names"] == ["a", "b", "c", "d"]


def test_results_record_protocol_and_are_reproducible(results):
    again = compute_all_metrics(FactorGrid(), _perfect(), seed=0, **COUNTS)
    assert _scores(again) == _scores(results["perfect"])
    for name in ("beta_vae", "factor_vae", "mig", "dci", "sap"):
        assert "disentanglement_lib" in again[name]["protocol"] and again[name]["seed"] == 0
        assert again[name]["samples"]
    assert again["mig"]["samples"] == {"num_train": 3000, "num_bins": 20}


def test_uncached_path_gives_the_same_scores():
    grid = FactorGrid()
    cached = compute_all_metrics(grid, _perfect(), seed=1, **COUNTS)
    direct = compute_all_metrics(grid, _perfect(), seed=1, cache=False, **COUNTS)
    assert _scores(cached) == pytest.approx(_scores(direct))


def test_too_few_samples_name_the_minimum():
    from vae_core.metrics import FactorCodes

    with pytest.raises(ValueError, match="minimum is 20"):
        mig(FactorCodes(FactorGrid(), _perfect()), num_train=5)


def test_dataset_without_factors_is_refused():
    class Folder:
        name = "folder:/photos"
        factor_sizes = ()
        factor_names = ()

    with pytest.raises(MetricsUnavailable, match="ground-truth factors"):
        compute_all_metrics(Folder(), _noise)
