"""Training faults: a run SIGKILLed at random moments, several times, and resumed ends with exactly the weights of
an uninterrupted run, and after every kill the files on disk are whole (the folder loads, the resume file parses,
the log is not torn).

To keep this fast, one launcher process imports torch and renders the data once, then forks a training process
per attempt; the test kills those children. Checkpointing every step makes most of a run's time file writes, so
a kill a random few milliseconds after a checkpoint lands in the middle of the next one's writes as often as not.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from vae_core import checkpoints as ckpt
from vae_core.train import train

ROOT = Path(__file__).resolve().parent.parent
STEPS = 40
KILLS = 4

LAUNCHER = textwrap.dedent(f"""
    import json, os, signal, sys, time, traceback
    from safetensors import safe_open
    from pathlib import Path
    import torch
    torch.set_num_threads(1)  # no OpenMP pool before fork
    from vae_core.data import DSprites
    from vae_core.train import train
    from tests.helpers import tiny_config
    exp = tiny_config(steps={STEPS}, checkpoint_every=1, log_every=2, objective="beta-tcvae", beta=6.0)
    dataset = DSprites()
    print("ready", flush=True)
    for line in sys.stdin:
        out, resume, target, delay = line.split()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                train(exp, Path(out), resume=resume == "1", progress=False, dataset=dataset)
            except BaseException:
                traceback.print_exc()
                code = 1
            os._exit(code)
        while int(target) >= 0 and os.waitpid(pid, os.WNOHANG) == (0, 0):  # it kills only its own child
            try:
                with safe_open(str(Path(out) / "resume.safetensors"), framework="pt") as f:
                    step = json.loads(f.metadata()["step"])
            except Exception:
                step = 0
            if step >= int(target):
                time.sleep(float(delay))  # a random moment after that checkpoint: often in the next one's writes
                if os.waitpid(pid, os.WNOHANG) == (0, 0):
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        _, status = os.waitpid(pid, 0)
        print("exit", status, flush=True)
""")


def _check_whole(folder: Path) -> int | None:
    """Everything a kill left on disk is whole; returns the step the resume file holds (None: none yet)."""
    if not folder.exists():
        return None  # killed before its first write
    if (folder / ckpt.CONFIG_FILE).exists() and (folder / ckpt.WEIGHTS_FILE).exists():
        ckpt.load_model(folder)  # config, card and weights each parse and agree
    step = None
    if (folder / ckpt.RESUME_FILE).exists():
        with safe_open(str(folder / ckpt.RESUME_FILE), framework="pt") as f:
            step = json.loads(f.metadata()["step"])
        load_file(str(folder / ckpt.RESUME_FILE))  # every tensor readable
    if (folder / ckpt.LOG_FILE).exists():
        rows = list(csv.reader((folder / ckpt.LOG_FILE).open()))
        assert rows and all(len(r) == len(rows[0]) for r in rows), "a torn training.csv"
    for path in folder.iterdir():  # an interrupted write leaves only its temporary, never a torn real file
        assert path.name in (ckpt.CONFIG_FILE, ckpt.WEIGHTS_FILE, ckpt.CARD_FILE, ckpt.LOG_FILE, ckpt.RESUME_FILE) \
            or (path.name.startswith(".") and path.name.endswith(".tmp")), path.name
    return step


def test_repeated_sigkills_at_random_moments_then_resume_give_the_uninterrupted_weights(tmp_path):
    rng = random.Random(int(os.environ.get("KILL_SEED", "8")))
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert launcher.stdout.readline().strip() == "ready"

        def attempt(out: Path, resume: bool, kill_at: tuple[int, float] = (-1, 0.0)) -> int:
            """Train in `out`; SIGKILL the run `kill_at[1]` seconds after it checkpoints step `kill_at[0]`."""
            launcher.stdin.write(f"{out} {int(resume)} {kill_at[0]} {kill_at[1]}\n")
            launcher.stdin.flush()
            return int(launcher.stdout.readline().split()[1])

        started = time.perf_counter()
        assert attempt(tmp_path / "straight", False) == 0
        run_s = time.perf_counter() - started
        targets = sorted(rng.sample(range(1, STEPS - 1), KILLS))
        steps, statuses = [], []
        for k, target in enumerate(targets):
            statuses.append(attempt(tmp_path / "killed", k > 0, (target, rng.uniform(0.0, 0.05))))
            steps.append(_check_whole(tmp_path / "killed"))
        assert attempt(tmp_path / "killed", True) == 0
    finally:
        launcher.stdin.close()
        launcher.wait(timeout=60)
    assert all(os.WIFSIGNALED(s) for s in statuses), statuses  # every kill landed mid-run
    assert steps == sorted(steps) and len(set(steps)) == KILLS, (targets, steps)  # at different steps
    straight, resumed = load_file(str(tmp_path / "straight" / ckpt.WEIGHTS_FILE)), \
        load_file(str(tmp_path / "killed" / ckpt.WEIGHTS_FILE))
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    log_a, log_b = (list(csv.DictReader((tmp_path / name / ckpt.LOG_FILE).open())) for name in ("straight", "killed"))
    for row in (*log_a, *log_b):
        del row["elapsed_s"]
    assert log_a == log_b  # bar the clock column
    print(f"kill rounds: {KILLS}, resume steps after each kill: {steps} (targets {targets}), run {run_s:.1f} s")


def _train_command(out, *extra):
    return [sys.executable, "-m", "vae_core.train", "--out", str(out), "--dataset", "digits", "--latent-dim", "2",
            "--batch-size", "8", "--quiet", *extra]


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_writes(tmp_path):
    from vae_core.atomic import LOCK_FILE

    out = tmp_path / "busy"
    first = subprocess.Popen(_train_command(out, "--steps", "100000", "--checkpoint-every", "100000"),
                             cwd=ROOT, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not (out / ckpt.CONFIG_FILE).exists():  # the first run holds the folder from before it writes
            assert time.time() < deadline and first.poll() is None
            time.sleep(0.1)
        second = subprocess.run(_train_command(out, "--steps", "5", "--overwrite", "--seed", "3"), cwd=ROOT,
                                check=False, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "is being written by process" in second.stderr
        assert json.loads((out / ckpt.CONFIG_FILE).read_text())["train"]["seed"] == 0  # the first run's, untouched
    finally:
        first.kill()
        first.wait()
    assert (out / LOCK_FILE).exists()  # a killed holder leaves the file, but not the lock:
    (out / ".model.safetensors.abc.tmp").write_bytes(b"half a file")  # nor its temporary files, once resumed
    done = subprocess.run(_train_command(out, "--steps", "3", "--overwrite"), cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not list(out.glob(".*.tmp"))


def test_a_full_disk_ends_with_a_message_naming_what_is_safe(tmp_path, monkeypatch, capsys):
    import errno

    from vae_core import atomic
    from vae_core.train import main

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "_stage", full)
    code = main(["--out", str(tmp_path / "full"), "--dataset", "digits", "--steps", "3", "--batch-size", "8",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "last checkpoint there is intact" in err


def test_a_stale_temporary_left_by_a_kill_is_removed_by_the_next_run(tmp_path):
    from vae_core.train import main

    folder = tmp_path / "m"
    args = ["--out", str(folder), "--dataset", "digits", "--steps", "2", "--batch-size", "8", "--quiet"]
    assert main(args) == 0
    stale = folder / f".{ckpt.WEIGHTS_FILE}.k1ll3d.tmp"  # what a kill between staging and renaming leaves
    stale.write_bytes(b"half of a checkpoint")
    assert main([*args[:5], "4", *args[6:], "--resume"]) == 0
    assert not stale.exists() and not list(folder.glob(".*.tmp"))



@pytest.mark.parametrize("extra, message", [
    (["--out", ""], "--out is empty"),
    (["--device", "cuda:99"], "CUDA device"),
    (["--device", "cpu; rm -rf ~"], "cpu, cuda, cuda:N or mps"),
    (["--batch-size", "65536"], "at most 4096"),
])
def test_the_training_command_refuses_what_it_cannot_do_in_words(tmp_path, extra, message):
    """Hostile round 3: these gave tracebacks, trained into the current folder, or ran away with memory."""
    args = ["--out", str(tmp_path / "m"), "--steps", "1", *extra]
    run = subprocess.run([sys.executable, "-m", "vae_core.train", *args], capture_output=True, text=True,
                         cwd=tmp_path, check=False, timeout=120)
    assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr, run.stderr[-800:]
    assert not any(tmp_path.glob("*.safetensors"))  # nothing trained into the current folder


def test_a_pickle_folder_is_refused_for_init_from_and_resume_and_overwrite_leaves_nothing_old(tmp_path):
    import pickle

    from .helpers import tiny_config

    train(tiny_config(steps=2), tmp_path / "base", device="cpu", progress=False)
    (tmp_path / "base" / "extra.pt").write_bytes(pickle.dumps({"a": 1}))
    for args in (["--init-from", str(tmp_path / "base"), "--out", str(tmp_path / "new")],
                 ["--resume", "--out", str(tmp_path / "base")]):
        run = subprocess.run([sys.executable, "-m", "vae_core.train", "--steps", "3", *args], capture_output=True,
                             text=True, check=False, timeout=120)
        assert run.returncode != 0 and "a pickle file" in run.stderr and "Traceback" not in run.stderr
    (tmp_path / "base" / "extra.pt").unlink()
    (tmp_path / "base" / ckpt.PROJECTION_FILE).write_bytes(b"the old model's map")
    run = subprocess.run([sys.executable, "-m", "vae_core.train", "--out", str(tmp_path / "base"), "--overwrite",
                          "--steps", "1", "--batch-size", "4", "--quiet"], capture_output=True, text=True, check=False,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-800:]
    assert not (tmp_path / "base" / ckpt.PROJECTION_FILE).exists()  # the app showed the old model's map
