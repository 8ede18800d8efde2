"""The shipped zoo: every folder in pretrained/ loads, decodes, and carries a complete card."""

from pathlib import Path

import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core.card_figures import figures
from vae_core.data import drawn_like, get_dataset
from vae_core.kinds import kind
from vae_core.models.vqvae import prior_code_grids
from vae_core.projection import load_projection, map_points

SHIPPED = sorted(p for p in ckpt.PRETRAINED_DIR.glob("*") if (p / ckpt.CONFIG_FILE).exists())
CARD_KEYS = {"objective", "beta", "schedule", "steps", "batch_size", "wall_time_s", "hardware", "final",
             "evaluation", "metrics"}


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and f.name != ckpt.RESUME_FILE)


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_model_loads_decodes_and_has_a_complete_card(folder):
    loaded = ckpt.load_model(folder)
    cfg = loaded.config.model
    with torch.inference_mode():
        if not kind(cfg.kind).continuous_latent:  # a VQ-VAE: a grid of codes drawn from the codebook
            images = loaded.model.decode_indices(prior_code_grids(loaded.model, 4, seed=0))
        else:
            images = loaded.model.decode_image(torch.randn(4, cfg.latent_dim,
                                                           generator=torch.Generator().manual_seed(0)))
    assert images.shape == (4, cfg.channels, cfg.image_size, cfg.image_size) and torch.isfinite(images).all()
    missing = CARD_KEYS - set(loaded.card)
    assert not missing, f"card.json lacks {sorted(missing)}"
    final = loaded.card["final"]
    assert final["recon"] > 0
    metrics = loaded.card["metrics"]
    if not kind(cfg.kind).continuous_latent:
        k = cfg.options.codebook_size
        assert 1 < final["perplexity"] <= k and 0 <= final["unused_codes"] < k
        assert "do not apply" in metrics["unavailable"]
    else:
        assert len(final["kl_per_dim"]) == cfg.latent_dim
        if loaded.config.dataset.factor_names:
            for name in ("beta_vae", "factor_vae", "mig", "dci", "sap"):
                assert "disentanglement_lib" in metrics[name]["protocol"], name
        projection = load_projection(folder, cfg.latent_dim)
        dataset = get_dataset(loaded.config.train.dataset)
        assert projection.num_points == map_points(dataset) and projection.umap is not None  # digits: each once
    assert (folder / ckpt.LOG_FILE).read_text().startswith("step,")
    assert _size(folder) <= 10_000_000


def test_the_zoo_fits_its_budget():
    assert sum(_size(f) for f in SHIPPED) <= 35 * 2**20  # 35 MiB: the repository travels whole to a GPU job


@pytest.mark.slow
@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_reconstruction_on_fresh_samples_matches_the_card(folder):
    loaded = ckpt.load_model(folder)
    exp = loaded.config
    dataset = get_dataset(exp.train.dataset, exp.train.data_root, exp.model.image_size, exp.model.channels)
    fresh = figures(loaded.model, dataset, exp, n=1000, seed=987)
    assert fresh["recon"] == pytest.approx(loaded.card["evaluation"]["recon"], rel=0.10)


@pytest.mark.slow
def test_beta_vae_mig_matches_its_card():
    folder = ckpt.PRETRAINED_DIR / "dsprites-beta-vae"
    if not folder.exists():
        pytest.skip("dsprites-beta-vae is not shipped yet")
    from vae_core.metrics import FactorCodes, mig, representation_from_model

    loaded = ckpt.load_model(folder)
    codes = FactorCodes(get_dataset("dsprites"), representation_from_model(loaded.model))
    assert mig(codes, seed=5)["score"] == pytest.approx(loaded.card["metrics"]["mig"]["score"], abs=0.05)


def test_faces_vae_gan_and_faces_vae_carry_sharpness_side_by_side():
    cards = {}
    for name in ("faces-vae", "faces-vae-gan"):
        folder = ckpt.PRETRAINED_DIR / name
        assert folder.is_dir(), f"{name} ships in pretrained/"
        cards[name] = ckpt.read_card(folder)["sharpness"]
        assert cards[name]["data"] > 0 and cards[name]["reconstructions"] > 0
    assert cards["faces-vae"]["data"] == cards["faces-vae-gan"]["data"]  # the same images measured


def test_the_disentanglement_page_counts_the_redrawn_faces_as_faces(monkeypatch):
    """faces-beta-tcvae in the sidebar (the expressive drawing): the page opens on the faces pair whose MIGs differ
    most, the plain drawing's models included (the same factors, the same heatmap rows), the lower MIG first."""
    from app.card import MIG, contrasting_pair

    monkeypatch.delenv(ckpt.MODELS_ENV, raising=False)
    entries = [e for e in ckpt.list_models() if e.error is None and e.config is not None and "mig" in e.card.get(
        "metrics", {})]
    names = [e.name for e in entries]
    mig = {e.name: MIG(e.card) for e in entries}
    faces = [e.name for e in entries if drawn_like(e.config.train.dataset) == "faces"]
    assert "faces-beta-tcvae" in faces and "faces-vae" in faces
    pair = contrasting_pair(entries, names, "faces-expressive")
    assert pair == [min(faces, key=mig.get), max(faces, key=mig.get)]
