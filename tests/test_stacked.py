"""Runs stepped together in one process (vae_core.stacked): the same weights as the single runs they stack, the
refusal of members that cannot share a step, a deadline's partial result, and the GPU job's command end to end
on the CPU with a tiny budget (archives included)."""

from __future__ import annotations

import json
import tarfile
from dataclasses import replace

import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core.stacked import (
    SAME_WEIGHTS_TOLERANCE,
    Member,
    Stack,
    StackError,
    check_stack,
    group,
    main,
    pack,
    plan,
    train_stacks,
)
from vae_core.train import train

from .helpers import tiny_config

pytestmark = pytest.mark.usefixtures("torch_threads_restored")


def _members(tmp_path, objective: str, seeds=(0, 1), **train_kw) -> list[Member]:
    return [Member(f"{objective}-{s}", tiny_config(objective=objective, seed=s, steps=12, **train_kw),
                   tmp_path / "stacked" / f"{objective}-{s}") for s in seeds]


@pytest.mark.parametrize("objective, extra", [("vae", {}), ("beta-vae", {"beta": 4.0, "free_bits": 0.1}),
                                              ("beta-tcvae", {"beta": 6.0}), ("ae", {})])
def test_a_stacked_run_has_the_weights_of_the_single_runs_it_stacks(tmp_path, objective, extra):
    torch.set_num_threads(1)
    members = _members(tmp_path, objective, **extra)
    summary = train_stacks([Stack(members, torch.device("cpu"))])
    assert summary["unfinished"] == [] and summary["model_steps"] == 24
    for m in members:
        train(m.exp, tmp_path / "single" / m.name, progress=False)
        single = ckpt.load_model(tmp_path / "single" / m.name).model.state_dict()
        stacked = ckpt.load_model(m.out).model.state_dict()
        worst = max(float((single[k] - stacked[k]).abs().max()) for k in single)
        assert worst <= SAME_WEIGHTS_TOLERANCE, f"{m.name}: weights differ by {worst:.3g}"
        assert any(float((single[k] - ckpt.load_model(members[0].out).model.state_dict()[k]).abs().max()) > 1e-3
                   for k in single) or m is members[0]  # the seeds really differ: not one run written twice
        rows = (m.out / ckpt.LOG_FILE).read_text().splitlines()
        assert rows[0].startswith("step,") and len(rows) == 1 + 12 // m.exp.train.log_every


@pytest.mark.parametrize("change, message", [
    ({"model": {"latent_dim": 6}}, "its network differs from vae-0's (latent_dim)"),
    ({"train": {"lr": 1e-3}}, "its training settings differ from vae-0's (lr)"),
    ({"train": {"dataset": "faces"}}, "its training settings differ"),
])
def test_members_that_cannot_share_a_step_are_refused_naming_the_member(tmp_path, change, message):
    a, b = _members(tmp_path, "vae")
    exp = b.exp
    if "model" in change:
        exp = replace(exp, model=replace(exp.model, **change["model"]))
    if "train" in change:
        exp = replace(exp, train=replace(exp.train, **change["train"]))
    with pytest.raises(StackError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_stack([a, Member("vae-1", exp, b.out)])


def test_other_kinds_and_shared_folders_are_refused(tmp_path):
    vq = Member("vq", tiny_config(objective="vq-vae", model={"kind": "vq-vae"}), tmp_path / "vq")
    with pytest.raises(StackError, match="vq: a vq-vae trains by its kind's own terms"):
        check_stack([vq])
    a, b = _members(tmp_path, "vae")
    with pytest.raises(StackError, match="write the same folder"):
        check_stack([a, Member("b", b.exp, a.out)])


def test_members_are_grouped_into_stacks_by_everything_but_their_seed(tmp_path):
    members = _members(tmp_path, "vae", seeds=(0, 1, 2)) + _members(tmp_path, "beta-vae", seeds=(0, 1), beta=4.0)
    assert [[m.name for m in g] for g in group(members)] == [["vae-0", "vae-1", "vae-2"], ["beta-vae-0", "beta-vae-1"]]


def test_a_deadline_keeps_every_member_and_names_the_unfinished(tmp_path):
    quick = _members(tmp_path, "vae")
    slow = [Member(m.name.replace("vae", "long"), replace(m.exp, train=replace(m.exp.train, steps=10**6)),
                   m.out.with_name(m.name.replace("vae", "long"))) for m in _members(tmp_path, "vae")]
    summary = train_stacks([Stack(quick, torch.device("cpu")), Stack(slow, torch.device("cpu"))], deadline_s=3.0)
    assert summary["stopped_at_deadline"] and sorted(summary["unfinished"]) == ["long-0", "long-1"]
    for m in quick:
        assert summary["members"][m.name]["finished"] and ckpt.read_card(m.out)["steps"] == 12
    for m in slow:
        card = ckpt.read_card(m.out)
        assert 12 <= card["steps"] < card["steps_planned"] == 10**6  # written where it stopped
        ckpt.load_model(m.out)


def test_the_plans_hold_the_zoo_entries_with_their_seeds_and_the_sweep():
    names = [n for n, _ in plan("all", steps=300_000, seeds=5, sweep_seeds=3)]
    assert len(names) == 3 * 5 + 5 * 3
    settings = dict(plan("zoo", steps=300_000, seeds=5, sweep_seeds=3))
    assert settings["dsprites-beta-tcvae-seed4"].endswith("--seed 4 --steps 300000")
    assert "--objective beta-tcvae --beta 6" in settings["dsprites-beta-tcvae-seed4"]
    assert "--beta 16" in dict(plan("sweep", 10, 1, 3))["beta-16-seed2"]


def test_the_gpu_job_runs_end_to_end_on_the_cpu_with_a_tiny_budget(tmp_path, capsys):
    """The job's command as the device runs it (there: --device cuda, --steps 300000, a deadline)."""
    torch.set_num_threads(1)
    out, archive = tmp_path / "job", tmp_path / "back"
    assert main(["zoo", "--out", str(out), "--steps", "3", "--seeds", "2", "--archive", str(archive)]) == 0
    summary = json.loads((out / "stacked.json").read_text())
    assert summary["unfinished"] == [] and summary["model_steps"] == 3 * 2 * 3 and summary["model_steps_per_s"] > 0
    assert "model-steps/s" in capsys.readouterr().out
    names = set()
    for path in sorted(archive.iterdir()):
        assert path.stat().st_size <= 16 * 2**20
        with tarfile.open(path) as tar:
            names |= {n.split("/")[0] for n in tar.getnames()}
    assert names == {f"{e}-seed{s}" for e in ("dsprites-vae", "dsprites-beta-vae", "dsprites-beta-tcvae")
                     for s in (0, 1)}
    loaded = ckpt.load_model(out / "dsprites-beta-tcvae-seed1")
    assert loaded.config.train.beta == 6.0 and loaded.card["steps"] == 3


def test_pack_never_splits_a_folder_and_refuses_one_too_large(tmp_path):
    folders = []
    for i in range(3):
        f = tmp_path / f"m{i}"
        f.mkdir()
        (f / "model.safetensors").write_bytes(bytes(range(256)) * 400)  # 100 KB
        folders.append(f)
    paths = pack(folders, tmp_path / "out", limit=250_000)
    assert len(paths) == 2
    with pytest.raises(ValueError, match="more than an archive may hold"):
        pack(folders, tmp_path / "out2", limit=50_000)
