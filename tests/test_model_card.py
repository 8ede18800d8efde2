"""Each shipped folder's README.md is written from its card (vae_core.model_card), so it cannot drift from it."""

from __future__ import annotations

import json
import shutil

from vae_core import checkpoints as ckpt
from vae_core.checkpoints import PRETRAINED_DIR
from vae_core.model_card import main, render


def test_every_shipped_readme_is_what_its_card_says():
    assert main(["--check"]) == 0, "a card changed: run `python -m vae_core.model_card` and commit the READMEs"


def test_a_changed_card_makes_its_readme_stale_and_the_command_writes_it_anew(tmp_path, capsys):
    folder = shutil.copytree(PRETRAINED_DIR / "faces-vae-gan", tmp_path / "faces-vae-gan",
                             ignore=shutil.ignore_patterns("*.npz", "*.safetensors"))
    ckpt.update_card(folder, {"history": ["fine-tuned from faces-vae at 42,000 steps"]})
    assert main(["--check", str(folder)]) == 1 and "out of date" in capsys.readouterr().err
    assert main([str(folder)]) == 0 and main(["--check", str(folder)]) == 0
    text = (folder / "README.md").read_text()
    assert "## History\n\n- fine-tuned from faces-vae at 42,000 steps" in text
    assert "for 43,000 steps in all (42,000 of them before it was fine-tuned from `faces-vae`)" in text


def test_a_hostile_card_writes_no_text_of_its_own_into_the_figures(tmp_path):
    folder = shutil.copytree(PRETRAINED_DIR / "dsprites-beta-tcvae", tmp_path / "m",
                             ignore=shutil.ignore_patterns("*.npz", "*.safetensors"))
    card = json.loads((folder / "card.json").read_text())
    card["evaluation"]["recon"] = "[log in](http://example.com)"
    card["metrics"]["mi_matrix"] = {"not": "a matrix"}
    card["metrics"]["mig"]["score"] = "high"
    (folder / "card.json").write_text(json.dumps(card))
    text = render(folder)
    assert "example.com" not in text and "high" not in text and "What each latent carries" not in text
    assert "- type: mig" not in text and "| recon (nats/image) |" not in text
