import numpy as np
from PIL import Image

from vae_core import checkpoints as ckpt
from vae_core.data import Faces
from vae_core.evaluate import evaluate_folder, format_table, main
from vae_core.train import train

from .helpers import tiny_config

SMALL = {
    "beta_vae": {"num_train": 200, "num_eval": 100, "batch_size": 16},
    "factor_vae": {"num_train": 200, "num_eval": 100, "num_variance_estimate": 500},
    "mig": {"num_train": 500},
    "dci": {"num_train": 200, "num_test": 100},
    "sap": {"num_train": 200, "num_test": 100},
}


def test_evaluation_writes_metrics_into_the_card(tmp_path):
    folder = tmp_path / "faces-tiny"
    exp = tiny_config(channels=3, steps=20, batch_size=16, objective="beta-vae", beta=4.0, dataset="faces")
    train(exp, folder, progress=False, dataset=Faces())
    card = evaluate_folder(folder, projection=False, recon_samples=256, metric_counts=SMALL, log=lambda *_: None,
                           iwae_k=4, iwae_samples=32)
    on_disk = ckpt.read_card(folder)
    assert on_disk["metrics"]["mig"]["score"] == card["metrics"]["mig"]["score"]
    assert 0 <= card["metrics"]["mig"]["score"] <= 1
    assert card["metrics"]["mig"]["samples"]["num_train"] == 500
    assert np.array(card["metrics"]["mi_matrix"]).shape == (7, 4)  # 7 face factors x 4 latents
    assert card["evaluation"]["samples"] == 256 and card["steps"] == 20  # training facts kept
    table = format_table(["faces-tiny"], [card])
    assert "MIG" in table and "faces-tiny" in table


def test_data_without_factors_still_gets_reconstruction(tmp_path, capsys):
    images = tmp_path / "photos"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (70, 70, 3), dtype=np.uint8)).save(images / f"{i}.png")
    exp = tiny_config(channels=3, steps=4, batch_size=4, dataset=f"folder:{images}")
    folder = tmp_path / "photo-model"
    train(exp, folder, progress=False)
    assert main([str(folder), "--no-projection", "--recon-samples", "16", "--iwae-k", "2", "--iwae-samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "need a dataset generated from known factors" in out
    card = ckpt.read_card(folder)
    assert "ground-truth factors" in card["metrics"]["unavailable"] and card["evaluation"]["recon"] > 0


def test_compare_prints_models_side_by_side(tiny_model_folder, capsys):
    folder, _ = tiny_model_folder
    ckpt.update_card(folder, {"metrics": {"mig": {"score": 0.123}}, "steps": 7})
    assert main(["--compare", str(folder), str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("tiny") >= 2 and "0.123" in out


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 1
    assert "no such model folder" in capsys.readouterr().err
