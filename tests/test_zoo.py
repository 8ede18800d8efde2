import shlex

import pytest

from vae_core.data import get_dataset
from vae_core.train import build_parser, config_from_args
from vae_core.zoo import ZOO, train_command


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_recipe_is_a_valid_training_command(name, tmp_path):
    args = build_parser().parse_args([*shlex.split(ZOO[name]), "--out", str(tmp_path / name)])
    exp = config_from_args(args, get_dataset(args.dataset))
    assert exp.train.steps > 0 and exp.train.dataset == name.split("-")[0]
    assert "--resume" in train_command(name)
