import shlex
from pathlib import Path

import pytest

from vae_core.checkpoints import PRETRAINED_DIR, load_config, read_card, steps_in_all
from vae_core.data import drawn_like, get_dataset
from vae_core.train import build_parser, config_from_args
from vae_core.zoo import ZOO, train_command


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_recipe_is_a_valid_training_command(name, tmp_path):
    args = build_parser().parse_args([*shlex.split(ZOO[name]), "--out", str(tmp_path / name)])
    exp = config_from_args(args, get_dataset(args.dataset))
    assert exp.train.steps > 0 and drawn_like(exp.train.dataset) == name.split("-")[0]  # the name says the data
    resumed = build_parser().parse_args(train_command(name, tmp_path)[3:])  # after `python -m vae_core.train`
    assert resumed.resume and resumed.out == str(tmp_path / name) and resumed.steps == exp.train.steps


@pytest.mark.parametrize("name", sorted(ZOO))
def test_a_shipped_folder_says_one_training_length_with_its_recipe(name):
    """The recipe, config.json and the card agree on the run's length; a fine-tune's card adds its base's steps."""
    folder = PRETRAINED_DIR / name
    if not folder.is_dir():
        pytest.skip(f"{name} is not shipped")
    args = build_parser().parse_args([*shlex.split(ZOO[name]), "--out", "x"])
    card = read_card(folder)
    assert args.steps == load_config(folder).train.steps == card["steps"]
    if args.init_from:  # its base may have trained on since: it counts the steps it started from
        base = read_card(PRETRAINED_DIR / Path(args.init_from).name)
        assert 0 < card["steps_before"] <= steps_in_all(base)
    assert steps_in_all(card) == card["steps"] + card.get("steps_before", 0)
