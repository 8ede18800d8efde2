import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vae_core import checkpoints as ckpt
from vae_core.data import DSprites, Faces
from vae_core.train import NonFiniteLoss, main, train

from .helpers import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _weights(folder):
    return load_file(str(folder / ckpt.WEIGHTS_FILE))


# colour images keep a high Bernoulli floor (the pixels' own entropy), so the faces' drop is smaller
@pytest.mark.parametrize("dataset, ratio", [(DSprites(), 0.5), (Faces(), 0.97)], ids=["dsprites", "faces"])
def test_short_training_run_lowers_the_loss(tmp_path, dataset, ratio):
    exp = tiny_config(channels=dataset.channels, steps=60, batch_size=32, log_every=10, lr=2e-3,
                      objective="beta-vae", beta=1.0)
    card = train(exp, tmp_path / "m", progress=False, dataset=dataset)
    rows = list(csv.DictReader((tmp_path / "m" / ckpt.LOG_FILE).open()))
    assert [int(r["step"]) for r in rows] == list(range(10, 61, 10))
    assert float(rows[-1]["total"]) < ratio * float(rows[0]["total"])
    per_dim = [[float(r[f"kl_z{d}"]) for d in range(4)] for r in rows]  # each latent's KL, logged
    assert all(abs(sum(dims) - float(r["kl"])) < 1e-3 for dims, r in zip(per_dim, rows))
    assert ckpt.read_training_log(tmp_path / "m")["kl_per_dim"].shape == (6, 4)
    assert card["steps"] == 60 and len(card["final"]["kl_per_dim"]) == 4
    loaded = ckpt.load_model(tmp_path / "m")
    assert loaded.card["final"]["recon"] == card["final"]["recon"]


def test_resume_after_a_stop_equals_an_uninterrupted_run(tmp_path):
    exp = tiny_config(steps=12, checkpoint_every=4, objective="beta-tcvae", beta=6.0)
    train(exp, tmp_path / "straight", progress=False)
    train(exp, tmp_path / "resumed", progress=False, stop_after=7)
    partial = _weights(tmp_path / "resumed")
    train(exp, tmp_path / "resumed", resume=True, progress=False)
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert any(not torch.equal(partial[k], straight[k]) for k in straight)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    log_a, log_b = (list(csv.DictReader((tmp_path / name / ckpt.LOG_FILE).open())) for name in ("straight", "resumed"))
    for row in (*log_a, *log_b):
        del row["elapsed_s"]
    assert log_a == log_b and "kl_z2" in log_a[0]  # same rows (each latent's KL too), apart from the wall clock


def test_channels_last_trains_the_same_model_and_says_so(tmp_path):
    """--channels-last is a choice of kernels: the same run to float rounding, resumable, saved in the ordinary
    layout, and named on the card's hardware line (not in the recipe)."""
    exp = tiny_config(steps=12, checkpoint_every=4, objective="beta-vae", beta=4.0)
    train(exp, tmp_path / "default", progress=False)
    train(exp, tmp_path / "last", progress=False, stop_after=8, channels_last=True)
    card = train(exp, tmp_path / "last", resume=True, progress=False, channels_last=True)
    default, last = _weights(tmp_path / "default"), _weights(tmp_path / "last")
    for key in default:
        assert torch.allclose(default[key], last[key], rtol=1e-3, atol=1e-4), key  # other kernels, same run
        assert last[key].is_contiguous()
    assert card["hardware"].endswith(", channels-last") and "channels" not in ckpt.load_config(tmp_path / "last").to_dict()["train"]


def test_a_shipped_folder_continues_exactly_at_a_recorded_optimizer_reset(tmp_path):
    exp = tiny_config(steps=12, checkpoint_every=4, log_every=2, objective="vae")
    exp = replace(exp, train=replace(exp.train, optimizer_resets=(8,)))
    train(exp, tmp_path / "straight", progress=False)
    train(exp, tmp_path / "shipped", progress=False, stop_after=8)
    (tmp_path / "shipped" / ckpt.RESUME_FILE).unlink()  # what ships: weights, config, card and log only
    train(exp, tmp_path / "shipped", resume=True, progress=False)
    straight, continued = _weights(tmp_path / "straight"), _weights(tmp_path / "shipped")
    for key in straight:
        assert torch.equal(straight[key], continued[key]), key
    no_reset = replace(exp, train=replace(exp.train, optimizer_resets=()))
    train(no_reset, tmp_path / "plain", progress=False)
    plain = _weights(tmp_path / "plain")
    assert any(not torch.equal(plain[k], straight[k]) for k in plain)  # the reset does change the run
    train(no_reset, tmp_path / "refused", progress=False, stop_after=8)
    (tmp_path / "refused" / ckpt.RESUME_FILE).unlink()
    with pytest.raises(ckpt.CheckpointError, match="--reset-optimizer-at 8"):
        train(no_reset, tmp_path / "refused", resume=True, progress=False)


def test_a_lower_rate_from_a_step_holds_across_a_resume_and_is_on_the_card(tmp_path):
    exp = tiny_config(steps=12, checkpoint_every=4, log_every=2, objective="vae")
    lowered = replace(exp, train=replace(exp.train, lr_changes=((8, 1e-4),)))
    train(exp, tmp_path / "constant", progress=False)
    train(lowered, tmp_path / "straight", progress=False)
    train(exp, tmp_path / "continued", progress=False, stop_after=8)  # begun at one rate, lowered on resuming
    train(lowered, tmp_path / "continued", resume=True, progress=False)
    straight, continued, constant = (_weights(tmp_path / n) for n in ("straight", "continued", "constant"))
    for key in straight:
        assert torch.equal(straight[key], continued[key]), key  # the resume file's old rate does not come back
    assert any(not torch.equal(straight[k], constant[k]) for k in straight)
    rows = list(csv.DictReader((tmp_path / "straight" / ckpt.LOG_FILE).open()))
    assert [float(r["lr"]) for r in rows] == [exp.train.lr] * 4 + [1e-4] * 2  # rows end at steps 2, 4, ..., 12
    assert ckpt.load_config(tmp_path / "continued").train.lr_changes == ((8, 1e-4),)
    from vae_core.model_card import render

    assert f"learning rate {exp.train.lr:g}, 0.0001 from step 8;" in render(tmp_path / "continued")


def test_a_continued_folder_drops_the_figures_of_its_earlier_weights(tmp_path):
    exp = tiny_config(steps=12, checkpoint_every=4, log_every=2, objective="vae")
    exp = replace(exp, train=replace(exp.train, optimizer_resets=(8,)))
    folder = tmp_path / "shipped"
    train(exp, folder, progress=False, stop_after=8)
    ckpt.update_card(folder, {"evaluation": {"recon": 1.0}, "metrics": {"mig": {"score": 0.9}}, "swap": {},
                              "notes": "kept"})
    (folder / ckpt.RESUME_FILE).unlink()
    train(exp, folder, resume=True, progress=False, stop_after=10)  # a checkpoint part-way
    card = ckpt.read_card(folder)
    assert card["steps"] == 10 and card["notes"] == "kept"
    assert not set(ckpt.EVALUATION_KEYS) & set(card), "figures measured on the step-8 weights survived"


def _cli(*args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "vae_core.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


TRAIN_ARGS = ["--dataset", "dsprites", "--objective", "vae", "--steps", "40", "--batch-size", "8",
              "--checkpoint-every", "5", "--log-every", "5", "--latent-dim", "3", "--quiet"]


def test_sigkill_then_resume_gives_the_uninterrupted_weights(tmp_path):
    straight = _cli(*TRAIN_ARGS, "--out", str(tmp_path / "a"))
    killed = _cli(*TRAIN_ARGS, "--out", str(tmp_path / "b"))
    resume_file = tmp_path / "b" / ckpt.RESUME_FILE
    deadline = time.time() + 120
    while not resume_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere between checkpoints
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    ckpt.load_model(tmp_path / "b")  # what the kill left on disk is a loadable model
    resumed = _cli(*TRAIN_ARGS, "--out", str(tmp_path / "b"), "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    exp = tiny_config(steps=20, checkpoint_every=5)
    train(replace(exp, train=replace(exp.train, steps=5)), tmp_path / "m", progress=False)
    before = _weights(tmp_path / "m")
    import vae_core.train as train_module

    real = train_module.compute_loss

    def poisoned(outputs, x, model_config, train_config, step, dataset_size):
        terms = real(outputs, x, model_config, train_config, step, dataset_size)
        if step >= 8:
            terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(train_module, "compute_loss", poisoned)
    with pytest.raises(NonFiniteLoss, match="step 8"):
        train(exp, tmp_path / "m", resume=True, progress=False)
    after = _weights(tmp_path / "m")
    assert json.loads((tmp_path / "m" / ckpt.CARD_FILE).read_text())["steps"] == 5
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "celeba"], "valid datasets: dsprites"),
        (["--objective", "gan"], "invalid choice: 'gan'"),
        (["--likelihood", "poisson"], "invalid choice"),
        (["--latent-dim", "0"], "latent_dim"),
        (["--dataset", "mnist"], "--data-root"),
        (["--dataset", "dsprites", "--image-size", "32"], "dsprites images are 64px and are not resized"),
        (["--lr-from", "56000"], "is not STEP:RATE"),
        (["--lr-from", "5:2"], "lr_changes[].rate=2.0 is outside"),
        (["--lr-from", "5:1e-4", "--lr-from", "5:2e-4"], "two rates for step 5"),
    ],
)
def test_bad_command_lines_exit_nonzero_with_the_choices(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "m"), "--steps", "1", *args])
    assert exit_info.value.code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # refused before anything is written


def test_refuses_to_overwrite_a_model_without_asking(tiny_model_folder, capsys):
    folder, _ = tiny_model_folder
    with pytest.raises(SystemExit):
        main(["--out", str(folder), "--steps", "1"])
    assert "--resume" in capsys.readouterr().err


def test_torchrun_two_processes_on_the_cpu(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "vae_core.train", *TRAIN_ARGS[:-1],
           "--steps", "6", "--quiet", "--out", str(tmp_path / "ddp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    card = json.loads((tmp_path / "ddp" / ckpt.CARD_FILE).read_text())
    assert card["processes"] == 2 and card["steps"] == 6
    ckpt.load_model(tmp_path / "ddp")


def test_an_autoencoders_figures_use_its_code_not_its_untrained_variance():
    from vae_core.card_figures import reconstruction_and_kl
    from vae_core.models.vae import VAE

    model = VAE(tiny_config(objective="ae").model).eval()
    encode = model.encode
    model.encode = lambda x: (encode(x)[0], torch.full_like(encode(x)[1], 30.0))  # an untrained, huge log-variance
    sampled = reconstruction_and_kl(model, DSprites(), n=64)
    code = reconstruction_and_kl(model, DSprites(), n=64, deterministic=True)
    assert sampled["recon"] > 10 * code["recon"] and sampled["kl"] > 1e6  # what the card showed before
    assert code["recon"] == code["recon_at_mean"] and code["kl"] < 1e3 and "kl_note" in code


def test_every_training_field_has_an_option_of_its_name():
    """config_from_args fills the configs from the options by field name: a field without an option would stay
    at its default whatever the command line said."""
    from dataclasses import fields

    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.train import build_parser

    options = {a.dest for a in build_parser()._actions}
    from vae_core.kinds import KINDS

    set_by_hand = {"optimizer_resets", "lr_changes", "channels", "kind", "options", "conv_channels",
                   "hidden_dim"}  # from other options, the dataset or the architecture
    missing = [f.name for cls in (TrainConfig, ModelConfig) for f in fields(cls)
               if f.name not in options and f.name not in set_by_hand]
    missing += [f.name for k in KINDS.values() for f in k.command_options() if f.name not in options]
    assert missing == []


def test_the_help_groups_each_kinds_settings_apart():
    """`--help` reads by topic: a VQ-VAE's flags under its own heading, none of them left in the general list."""
    from vae_core.kinds import KINDS
    from vae_core.train import build_parser

    groups = {g.title: {a.dest for a in g._group_actions} for g in build_parser()._action_groups}
    own = [groups[k.name] for k in KINDS.values() if k.command_options()]  # each kind's own heading, in order
    assert own == [{"condition", "adversary"}, {"codebook_size", "code_dim", "vq_ema", "commitment", "revive_every"},
                   {"gan_weight", "feature_weight"}, {"tc_weight", "critic_width", "critic_layers", "critic_lr"}]
    assert groups["options"] == {"help"}  # every setting has its group


def test_a_fine_tune_counts_the_steps_of_the_weights_it_started_from(tmp_path):
    """faces-vae-gan's card said 1,000 steps where it saw 43,000 (42,000 of them as faces-vae)."""
    from vae_core import checkpoints as ckpt

    base = tiny_config(steps=3)
    train(base, tmp_path / "base", device="cpu", progress=False)
    tune = replace(base, train=replace(base.train, steps=2, init_from=str(tmp_path / "base")))
    card = train(tune, tmp_path / "tune", device="cpu", progress=False)
    assert (card["steps"], card["steps_before"], ckpt.steps_in_all(card)) == (2, 3, 5)
    longer = replace(tune, train=replace(tune.train, steps=4))
    card = train(longer, tmp_path / "tune", device="cpu", progress=False, resume=True)
    assert ckpt.steps_in_all(card) == 7 and ckpt.steps_in_all(train(base, tmp_path / "b2", device="cpu",
                                                                      progress=False)) == 3
    assert ckpt.steps_in_all({"steps": "many"}) is None and ckpt.steps_in_all({"steps": 5, "steps_before": True}) is None
