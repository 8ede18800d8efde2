import json
import os

import pytest
import torch
from safetensors.torch import save_file

from vae_core import checkpoints as ckpt

from .helpers import TINY_CARD


def test_save_load_round_trip_is_bit_exact(tiny_model_folder):
    folder, model = tiny_model_folder
    loaded = ckpt.load_model(folder)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.model.state_dict().items()):
        assert torch.equal(a, b), name
    z = torch.randn(2, 4)
    assert torch.equal(model.decode(z), loaded.model.decode(z))
    assert loaded.config.model.latent_dim == 4 and loaded.card == TINY_CARD
    assert not loaded.model.training


def test_no_pickle_in_a_model_folder(tiny_model_folder):
    folder, _ = tiny_model_folder
    for path in folder.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"
    assert (folder / "config.json").read_text().startswith("{")


def test_missing_weights_named(tiny_model_folder):
    folder, _ = tiny_model_folder
    (folder / "model.safetensors").unlink()
    with pytest.raises(ckpt.CheckpointError, match="model.safetensors: missing"):
        ckpt.load_model(folder)


def test_truncated_weights_named(tiny_model_folder):
    folder, _ = tiny_model_folder
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ckpt.CheckpointError, match="model.safetensors: truncated"):
        ckpt.load_model(folder)


def test_wrong_shapes_and_dtypes_refused(tiny_model_folder):
    folder, model = tiny_model_folder
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["encoder.head.weight"] = torch.zeros(3, 3)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ckpt.CheckpointError, match="encoder.head.weight has shape"):
        ckpt.load_model(folder)
    state = {k: v.clone().double() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ckpt.CheckpointError, match="dtype F64"):
        ckpt.load_model(folder)


def test_weights_stored_as_float16_load_as_float32_and_halve_the_file(tiny_model_folder):
    """A shipped folder may round its weights to float16 (the zoo's budget): the loaded network still computes in
    float32, from exactly the rounded weights, and the card's figures of the float32 weights are dropped."""
    folder, model = tiny_model_folder
    ckpt.update_card(folder, {"final": {"recon": 1.0}, "metrics": {"mig": 0.5}, "history": ["kept"]})
    before = (folder / "model.safetensors").stat().st_size
    stored = ckpt.store_weights_as_float16(folder)
    after = (folder / "model.safetensors").stat().st_size
    assert after < 0.55 * before
    loaded = ckpt.load_model(folder)
    for name, tensor in loaded.model.state_dict().items():
        assert tensor.dtype == torch.float32
        assert torch.equal(tensor, model.state_dict()[name].half().float()), name
    largest = max(float((t.half().float() - t).abs().max()) for t in model.state_dict().values())
    assert stored == {"dtype": "float16", "largest_weight_change": largest} and 0 < largest < 1e-2
    card = ckpt.read_card(folder)
    assert "final" not in card and "metrics" not in card and card["history"] == ["kept"]
    assert card["stored_as"] == stored


def test_only_a_weights_file_is_stored_as_float16(tmp_path):
    (tmp_path / "explorer.json").write_text("{}")  # say, an ONNX folder: nothing may be written into it
    with pytest.raises(ckpt.CheckpointError, match="only a folder with model.safetensors"):
        ckpt.store_weights_as_float16(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explorer.json"]


def test_weights_beyond_float16_stay_float32(tiny_model_folder):
    folder, model = tiny_model_folder
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["encoder.head.bias"][0] = 1e6  # float16 tops out at 65,504
    save_file(state, str(folder / "model.safetensors"))
    unchanged = (folder / "model.safetensors").read_bytes()
    with pytest.raises(ckpt.CheckpointError, match="encoder.head.bias holds weights beyond float16's range"):
        ckpt.store_weights_as_float16(folder)
    assert (folder / "model.safetensors").read_bytes() == unchanged


def test_config_errors_named(tiny_model_folder):
    folder, _ = tiny_model_folder
    config = json.loads((folder / "config.json").read_text())
    config["model"]["latent_dim"] = 1_000_000_000
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ckpt.CheckpointError, match="config.json.*latent_dim"):
        ckpt.load_model(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ckpt.CheckpointError, match="config.json: not valid JSON"):
        ckpt.load_model(folder)


def test_symlink_out_of_the_folder_refused(tiny_model_folder, tmp_path):
    folder, _ = tiny_model_folder
    outside = tmp_path / "elsewhere.safetensors"
    (folder / "model.safetensors").rename(outside)
    os.symlink(outside, folder / "model.safetensors")
    with pytest.raises(ckpt.CheckpointError, match="outside the model folder"):
        ckpt.load_model(folder)


def test_list_models_keeps_going_past_broken_folders(tiny_model_folder, tmp_path, monkeypatch):
    folder, model = tiny_model_folder
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("[]")
    other = tmp_path / "more" / "second"
    other.parent.mkdir()
    ckpt.save_model(other, model, ckpt.load_config(folder))
    monkeypatch.setenv(ckpt.MODELS_ENV, str(other.parent))
    entries = {e.name: e for e in ckpt.list_models(extra=[tmp_path])}
    assert entries["tiny"].error is None and entries["second"].error is None
    assert "config.json" in entries["broken"].error


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "card.json"
    ckpt.atomic_write_json(path, {"a": 1})

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        ckpt.atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]  # no temporary left behind


def test_the_model_list_checks_a_folder_once_per_change(tiny_model_folder, monkeypatch):
    """The app lists the models on every page run: a folder is checked again only when its files change."""
    import time

    folder, _ = tiny_model_folder
    checked = []
    real = ckpt.check_folder
    monkeypatch.setattr(ckpt, "check_folder", lambda f: (checked.append(f), real(f))[1])
    for _ in range(3):
        entries = {e.name: e for e in ckpt.list_models(extra=[folder.parent])}
    assert checked.count(folder) <= 1 and entries["tiny"].error is None
    time.sleep(0.01)
    (folder / "extra.pkl").write_bytes(b"not really")  # a new file: the folder changed
    entries = {e.name: e for e in ckpt.list_models(extra=[folder.parent])}
    assert "pickle" in entries["tiny"].error


def test_a_training_log_becomes_curves_and_hostile_rows_are_left_out(tmp_path):
    from vae_core.checkpoints import read_training_log

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "training.csv").write_text("step,total,recon,kl,kl_weight,capacity,tc,lr,elapsed_s\n"
                                         "50,10,9,1,0.5,,,0.0005,1\nnot a step,1,1,1,1,,,1,1\n"
                                         "100,8,7,1.2,1.0,,,0.0005,2\n150,[x](http://e),6,0.9,1,,,0.0005,3\n")
    log = read_training_log(folder)
    assert log["step"].tolist() == [50.0, 100.0, 150.0] and log["recon"].tolist() == [9.0, 7.0, 6.0]
    assert log["kl_weight"].tolist() == [0.5, 1.0, 1.0] and "capacity" not in log  # no column of it is a number
    assert "kl_per_dim" not in log  # an older log without each latent's KL
    (folder / "training.csv").write_text("step,recon,kl,kl_z0,kl_z1\n50,9,1,0.75,0.25\n100,8,1,0.9,0.1\n"
                                         "150,7,1,1.0,\n")
    assert read_training_log(folder)["kl_per_dim"][:, 1].tolist()[:2] == [0.25, 0.1]
    (folder / "training.csv").write_text("step,recon\n1,2\n")
    assert read_training_log(folder) is None  # one row is not a curve
    assert read_training_log(tmp_path / "nowhere") is None
