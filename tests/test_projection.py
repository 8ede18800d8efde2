"""vae_core.projection: PCA, placing points on a map, mutual information, and projection.npz."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core.data import DSprites
from vae_core.models.vae import VAE
from vae_core.projection import (
    encode_means,
    fit_umap,
    images_for_rows,
    load_projection,
    mutual_information_matrix,
    pca_2d,
    place_points,
    save_arrays,
    write_projection,
)

from .helpers import tiny_config


def test_importing_projection_imports_no_ui_and_no_umap():
    code = ("import sys, vae_core.projection; "
            "print(sorted(m for m in ('streamlit', 'plotly', 'umap') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pca_matches_the_largest_variance_axes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 5)) * np.array([5.0, 0.1, 2.0, 0.1, 0.1])
    coords, explained = pca_2d(x)
    assert coords.shape == (500, 2) and coords.dtype == np.float32
    assert np.corrcoef(coords[:, 0], x[:, 0])[0, 1] ** 2 > 0.99
    assert np.corrcoef(coords[:, 1], x[:, 2])[0, 1] ** 2 > 0.99
    assert explained[0] > explained[1] > 0 and explained.sum() <= 1 + 1e-9
    assert np.array_equal(pca_2d(x)[0], coords)  # deterministic, signs included


def test_pca_of_one_dimension_and_of_one_point():
    coords, explained = pca_2d(np.arange(6.0)[:, None])
    assert coords.shape == (6, 2) and np.all(coords[:, 1] == 0) and explained[0] == pytest.approx(1.0)
    assert pca_2d(np.ones((1, 3)))[0].shape == (1, 2)


def test_place_points_lands_on_exact_matches_and_between_neighbours():
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    coords = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [50.0, 50.0]])
    placed = place_points(ref, ref, coords, k=3)
    np.testing.assert_allclose(placed, coords, atol=1e-5)
    midway = place_points(np.array([[0.5, 0.0]]), ref, coords, k=2)  # equidistant from rows 0 and 1
    np.testing.assert_allclose(midway, [[5.0, 0.0]], atol=1e-5)
    with pytest.raises(ValueError, match="dimensions"):
        place_points(np.zeros((1, 3)), ref, coords)


def test_mutual_information_is_high_for_a_copy_and_low_for_noise():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 4, size=(4000, 2))
    means = np.stack([factors[:, 1] + 0.01 * rng.normal(size=4000), rng.normal(size=4000)], 1)
    mi = mutual_information_matrix(means, factors, bins=20)
    assert mi.shape == (2, 2)
    assert mi[1, 0] == pytest.approx(np.log(4), rel=0.02)  # z0 determines factor 1: all its entropy
    assert mi[0, 0] < 0.02 and mi[0, 1] < 0.02 and mi[1, 1] < 0.02
    normalized = mutual_information_matrix(means, factors, normalize=True)
    assert normalized[1, 0] == pytest.approx(1.0, abs=0.02)
    constant = mutual_information_matrix(means, np.zeros((4000, 1), np.int64), normalize=True)
    assert np.all(constant == 0)


@pytest.fixture(scope="module")
def tiny_vae():
    torch.manual_seed(0)
    exp = tiny_config()
    return exp, VAE(exp.model).eval()


def test_write_and_load_projection_round_trip(tmp_path, tiny_vae):
    exp, model = tiny_vae
    ckpt.save_model(tmp_path, model, exp)
    dataset = DSprites()
    written = write_projection(tmp_path, model, dataset, n=64, seed=3, with_umap=False)
    loaded = load_projection(tmp_path, latent_dim=exp.model.latent_dim)
    assert loaded.num_points == 64 and loaded.umap is None and loaded.seed == 3
    assert loaded.factor_names == dataset.factor_names
    np.testing.assert_array_equal(loaded.means, written.means)
    from vae_core.explore import elbo_terms

    np.testing.assert_allclose(loaded.recon, elbo_terms(model, images_for_rows(dataset, loaded, np.arange(64)))["recon"],
                               rtol=5e-4)  # each point's reconstruction error, as Reconstruct measures an upload (float16)
    images = images_for_rows(dataset, loaded, [0, 5])  # stored as float16: about 3 significant digits
    np.testing.assert_allclose(encode_means(model, images)[0], loaded.means[[0, 5]], rtol=1e-3, atol=1e-3)
    pca, _ = pca_2d(loaded.means)
    np.testing.assert_allclose(loaded.pca, pca, rtol=1e-3, atol=2e-3)
    with np.load(tmp_path / ckpt.PROJECTION_FILE, allow_pickle=False) as data:  # no object arrays anywhere
        assert all(data[k].dtype.kind != "O" for k in data.files)
    assert not list(tmp_path.glob(".*.tmp"))


def test_projections_are_stored_compact_and_files_written_before_read_the_same(tmp_path, tiny_vae):
    exp, model = tiny_vae
    ckpt.save_model(tmp_path, model, exp)
    written = write_projection(tmp_path, model, DSprites(), n=64, seed=3, with_umap=False)
    path = tmp_path / ckpt.PROJECTION_FILE
    with zipfile.ZipFile(path) as archive:
        assert {m.compress_type for m in archive.infolist()} == {zipfile.ZIP_LZMA}
    with np.load(path, allow_pickle=False) as data:
        assert data["means"].dtype == data["pca"].dtype == data["recon"].dtype == np.float16  # recon: ranks an upload
        assert data["factors"].dtype == np.uint8 and data["index"].dtype == np.uint32  # dSprites: 737,280 images
        arrays = {k: data[k] for k in data.files}
    legacy = {k: v.astype(np.float32) if v.dtype == np.float16 else v.astype(np.int64) if v.dtype.kind == "u" else v
              for k, v in arrays.items()}
    buf = io.BytesIO()
    np.savez_compressed(buf, **legacy)  # as the files before this change: float32, int64, deflate
    path.write_bytes(buf.getvalue())
    old = load_projection(tmp_path)
    for name in ("means", "logvars", "pca", "factors", "index", "recon"):
        np.testing.assert_array_equal(getattr(old, name), getattr(written, name))
        assert getattr(old, name).dtype == getattr(written, name).dtype
    wide = dict(arrays, means=np.full((64, 4), 1e5, np.float32))  # an autoencoder's unbounded codes stay float32
    save_arrays(path, wide)
    assert load_projection(tmp_path).means.max() == 1e5


def _rewrite(folder, **changes):
    path = folder / ckpt.PROJECTION_FILE
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del arrays[key]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("change, message", [
    ({"means": None}, "missing arrays"),
    ({"pca": np.zeros((10, 2), np.float32)}, "pca has 10 rows"),
    ({"factor_names": np.array(["a"])}, "1 factor names"),
    ({"logvars": np.full((64, 4), np.nan, np.float32)}, "NaN"),
    ({"factors": np.zeros((64, 6), np.float32)}, "integer"),
    ({"factor_names": np.array([object()] * 6, dtype=object)}, "holds Python objects"),
])
def test_load_projection_names_the_problem(tmp_path, tiny_vae, change, message):
    _, model = tiny_vae
    write_projection(tmp_path, model, DSprites(), n=64, with_umap=False)
    _rewrite(tmp_path, **change)
    with pytest.raises(ckpt.CheckpointError, match=message):
        load_projection(tmp_path)


def _npz(members: dict[str, bytes], compression=0) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _npy(shape, dtype="<f4", body: bytes = b"") -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue() + body


def test_an_npz_whose_header_lies_or_that_is_a_bomb_is_refused_before_allocating(tmp_path):
    import tracemalloc
    import zipfile

    cases = {
        "a header that claims 36 TiB": _npz({"means.npy": _npy((3_000_000, 3_000_000), body=b"\0" * 64)}),
        "a header that claims more than it holds": _npz({"means.npy": _npy((10_000, 10), body=b"\0" * 64)}),
        "a bomb": _npz({"means.npy": _npy((100_000, 512), "<f8") + bytes(500_000_000)}, zipfile.ZIP_DEFLATED),
    }
    for case, data in cases.items():
        assert len(data) < 2_000_000, case
        (tmp_path / ckpt.PROJECTION_FILE).write_bytes(data)
        tracemalloc.start()
        with pytest.raises(ckpt.CheckpointError, match="claims shape|holds"):
            load_projection(tmp_path, latent_dim=10)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 20_000_000, (case, peak)


def test_load_projection_refuses_other_files(tmp_path, tiny_vae):
    with pytest.raises(ckpt.CheckpointError, match="missing"):
        load_projection(tmp_path)
    (tmp_path / ckpt.PROJECTION_FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ckpt.CheckpointError, match="not a readable projection"):
        load_projection(tmp_path)
    _, model = tiny_vae
    write_projection(tmp_path, model, DSprites(), n=16, with_umap=False)
    with pytest.raises(ckpt.CheckpointError, match="the model has 7"):
        load_projection(tmp_path, latent_dim=7)


def test_umap_of_a_small_sample(tmp_path, tiny_vae):
    """The real UMAP fit (about 20 s in a fresh process, numba compiling) on 300 points."""
    _, model = tiny_vae
    proj = write_projection(tmp_path, model, DSprites(), n=300, seed=1)
    assert proj.umap.shape == (300, 2) and np.isfinite(proj.umap).all()
    again = fit_umap(proj.means, seed=1)  # (the file's means are float16: UMAP of them is its own layout)
    np.testing.assert_allclose(fit_umap(proj.means, seed=1), again, atol=1e-4)  # a seed fixes the layout
    placed = place_points(proj.means[:3], proj.means, proj.umap)
    np.testing.assert_allclose(placed, proj.umap[:3], atol=1e-5)


def test_a_large_map_fits_umap_on_a_part_places_the_rest_and_records_a_sample_s_errors(tmp_path, tiny_vae,
                                                                                       monkeypatch):
    """Scale round: 60,000 points fitted whole took 100 s of UMAP on one core. Here, scaled down: a set of 400
    images in memory is mapped whole (each image once), the map fitted on the first 300 (PCA standing in for UMAP,
    whose first fit takes a minute here), the other 100 placed among their neighbours; the first 150 points' errors
    are recorded."""
    from vae_core import projection
    from vae_core.data.own import ArrayDataset

    _, model = tiny_vae
    images = DSprites().images_from_factors(DSprites().sample_factors(400, np.random.default_rng(0)))
    dataset = ArrayDataset("folder:/x", images, np.arange(400) % 3, ("a", "b", "c"))
    monkeypatch.setattr(projection, "UMAP_FIT_POINTS", 300)
    monkeypatch.setattr(projection, "RECON_POINTS", 150)
    fitted = []
    monkeypatch.setattr(projection, "fit_umap", lambda means, seed: fitted.append(len(means)) or pca_2d(means)[0])
    proj = write_projection(tmp_path, model, dataset)
    assert proj.num_points == 400 and sorted(proj.index.tolist()) == list(range(400))
    assert proj.umap.shape == (400, 2) and np.isfinite(proj.umap).all() and proj.recon.shape == (150,)
    assert fitted == [300]
    rest = place_points(proj.means[300:], proj.means[:300], proj.umap[:300])  # (the file's means are float16)
    assert np.median(np.abs(proj.umap[300:] - rest)) < 0.01 * np.ptp(proj.umap)
    lo, hi = proj.umap[:300].min(0), proj.umap[:300].max(0)
    assert ((proj.umap[300:] >= lo - 1e-3) & (proj.umap[300:] <= hi + 1e-3)).all()  # among the fitted points
    from vae_core.explore import elbo_terms

    np.testing.assert_allclose(proj.recon, elbo_terms(model, dataset.images[proj.index[:150]])["recon"], rtol=1e-3)


def test_place_points_in_chunks_equals_all_at_once():
    rng = np.random.default_rng(0)
    ref, coords, new = rng.normal(size=(100_000, 2)), rng.normal(size=(100_000, 2)), rng.normal(size=(50, 2))
    placed = place_points(new, ref, coords, k=5)  # 2,000,000 // 100,000 = 20 rows at a time
    dist = np.linalg.norm(new[:, None] - ref[None], axis=2)
    nearest = np.argsort(dist, axis=1)[:, :5]
    weights = 1 / np.take_along_axis(dist, nearest, axis=1)
    expected = (weights[:, :, None] * coords[nearest]).sum(1) / weights.sum(1, keepdims=True)
    np.testing.assert_allclose(placed, expected, atol=1e-4)
