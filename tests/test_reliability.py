"""Reliability and security, proved by injecting the faults: Ctrl-C, SIGTERM, kill -9 at
random moments (during checkpoint writes too), a diverging loss, a checkpoint that carries
code. Nothing saved is lost, a resumed run is the run that was never stopped, and a
checkpoint never runs code.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import DLX, FAST, all_tags, read_metrics, scalar_tags

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# One torch thread: the runs stay small and exactly repeatable, and a busy machine's
# oversubscribed thread pools do not multiply their cost.
FAST = [*FAST, "num_threads=1"]


def _start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*DLX, *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env
        )


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120, poll: float = 0.01) -> bool:
    """Poll `cond()` until true; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return bool(cond())
        time.sleep(poll)
    proc.kill()
    raise AssertionError("timed out waiting for the run")


_seen: dict[Path, tuple[int, int]] = {}


def _saved_epoch(run: Path) -> int:
    """The epoch in checkpoints/last.pt (-1 while there is none); loads it as `--resume` would
    (again only when the file changed, so polling costs the run next to no CPU)."""
    from dlx.training import checkpoint

    last = run / "checkpoints" / "last.pt"
    try:
        stamp = last.stat().st_mtime_ns
    except FileNotFoundError:
        return -1
    if last not in _seen or _seen[last][0] != stamp:
        _seen[last] = (stamp, checkpoint.load(last)["run"]["epoch"])
    return _seen[last][1]


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


def _weights(run: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    from dlx.training import checkpoint

    return checkpoint.load(run / "checkpoints" / name)["model"]


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ Ctrl-C and resume

# One config for the unbroken and the interrupted run; batch_size=16 makes epochs long
# enough (~80 steps) that the Ctrl-C sent once epoch 3 is saved lands before the end.
# Dropout draws from torch's RNG and the cosine schedule has state: both must resume exactly.
EQUIV = [
    *FAST,
    "epochs=6",
    "batch_size=16",
    "reg=dropout",
    "sched=cosine",
    "log.grad_norm_every=1",
    "early_stopping.patience=10",
]


# Every training knob on, with state to carry over: the EMA, warmup (interrupted halfway),
# the MixUp/CutMix draws (torch's RNG), plus clipping, accumulation and label smoothing.
EQUIV_KNOBS = [
    *FAST,
    "model=mlp",
    "epochs=6",
    "batch_size=16",
    "sched=cosine",
    "sched.warmup_epochs=4",
    "grad_clip=0.5",
    "grad_accum=2",
    "label_smoothing=0.1",
    "ema.decay=0.9",
    "aug.mixup=0.2",
    "aug.cutmix=1.0",
    "deterministic=true",
    "early_stopping.patience=10",
]


def _interrupt_after_epoch_3(root: Path, args: list[str]) -> tuple[Path, int, str]:
    root.mkdir(parents=True, exist_ok=True)
    run, out = root / "run", root / "out.txt"
    proc = _start(["train", *args, f"hydra.run.dir={run}"], root, out)
    assert _wait_for(lambda: _saved_epoch(run) >= 3, proc), out.read_text()[-3000:]
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=300)
    return run, code, out.read_text()


@pytest.fixture(scope="module")
def ctrl_c_run(tmp_path_factory):
    """A run of EQUIV stopped by a real SIGINT once epoch 3 is saved (a user's Ctrl-C)."""
    return _interrupt_after_epoch_3(tmp_path_factory.mktemp("ctrl_c"), EQUIV)


def test_ctrl_c_mid_run_exits_130_saves_and_writes_interrupted(ctrl_c_run):
    run, code, out = ctrl_c_run
    assert code == 130, out[-3000:]
    m = read_metrics(run)
    assert m["status"] == "interrupted"
    assert 3 <= m["epochs_run"] < 6, "the run was still going when Ctrl-C came"
    assert _saved_epoch(run) == m["epochs_run"], "last.pt loads and holds the last full epoch"
    assert "--resume" in out and "Traceback" not in out
    # TensorBoard was flushed: every completed epoch is on disk.
    assert [s for s, _ in scalar_tags(run)["loss/train"]] == list(range(1, m["epochs_run"] + 1))


def test_resume_after_ctrl_c_gives_the_same_weights_and_metrics_as_an_unbroken_run(
    ctrl_c_run, tmp_path
):
    _assert_resume_equals_unbroken(EQUIV, ctrl_c_run[0], tmp_path)


def test_resume_with_every_training_knob_on_equals_the_unbroken_run(tmp_path):
    run, code, out = _interrupt_after_epoch_3(tmp_path / "first", EQUIV_KNOBS)
    assert code == 130, out[-3000:]
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert saved["warmup"]["done"] < saved["warmup"]["steps"], "stopped halfway through warmup"
    straight = _assert_resume_equals_unbroken(EQUIV_KNOBS, run, tmp_path)
    ema = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)["ema"]["model"]
    assert not _same_weights(ema, _weights(straight)), "the EMA is its own set of weights"


def _assert_resume_equals_unbroken(args: list[str], interrupted: Path, tmp_path: Path) -> Path:
    from typer.testing import CliRunner

    import dlx
    from dlx.cli.app import app

    straight = tmp_path / "straight"
    assert dlx.train([*args, f"hydra.run.dir={straight}"])["status"] == "completed"
    broken = tmp_path / "broken"
    shutil.copytree(interrupted, broken)

    result = CliRunner().invoke(app, ["train", "--resume", str(broken)])
    assert result.exit_code == 0, result.output
    assert "resuming from epoch" in result.output

    a, b = read_metrics(straight), read_metrics(broken)
    for timing in ("wall_time_s", "perf"):  # clocks, not results
        a.pop(timing), b.pop(timing)
    assert b["status"] == "completed" and b["epochs_run"] == 6
    assert a == b, "metrics differ between the unbroken and the resumed run"
    assert _same_weights(_weights(straight), _weights(broken)), "final weights differ"
    assert _same_weights(_weights(straight, "best.pt"), _weights(broken, "best.pt"))

    # The same TensorBoard run: one folder, each epoch once, and the steps the interrupted
    # run logged after its last checkpoint are hidden (purged) rather than doubled.
    tags_a, tags_b = scalar_tags(straight), scalar_tags(broken)
    assert [s for s, _ in tags_b["loss/train"]] == [1, 2, 3, 4, 5, 6]
    assert tags_b["loss/train"] == tags_a["loss/train"] and tags_b["loss/val"] == tags_a["loss/val"]
    grad_tags = [t for t in tags_b if t.startswith("grad_norm/")]
    assert grad_tags
    for tag in grad_tags:
        assert tags_b[tag] == tags_a[tag], f"{tag}: steps lost or logged twice after resume"
    for tag in ("lr", *(t for t in tags_a if t.startswith("grad_clip/"))):
        assert tags_b[tag] == tags_a[tag], f"{tag} differs after resume"
    return straight


def test_sigterm_mid_run_stops_cleanly_with_130(tmp_path):
    """SIGTERM (what `kill` and schedulers send) is a Ctrl-C too. Sent to this very process
    by a helper thread once epoch 1 is saved: a real signal through the real handler."""
    from typer.testing import CliRunner

    from dlx.cli.app import app

    run = tmp_path / "run"
    done = threading.Event()

    def send() -> None:
        while not done.is_set() and _saved_epoch(run) < 1:
            time.sleep(0.01)
        if not done.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, lambda *a: None)  # a late one must not end pytest
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        result = CliRunner().invoke(
            app, ["train", *FAST, "epochs=300", "batch_size=16", f"hydra.run.dir={run}"]
        )
    finally:
        done.set()
        sender.join()
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 130, result.output
    m = read_metrics(run)
    assert m["status"] == "interrupted" and 1 <= m["epochs_run"] < 300
    assert _saved_epoch(run) == m["epochs_run"]


# ------------------------------------------------------------------ kill -9

# A model whose checkpoint (weights + Adam state, ~38 MB) takes long enough to write that
# kills land inside writes; one step per epoch keeps the run short.
KILL = [
    *FAST,
    "model=mlp",
    "model.width=1024",
    "model.depth=4",
    "data.limit=64",
    "epochs=10",
    "early_stopping.enabled=false",
]


def test_kill_9_at_random_moments_never_breaks_last_pt_and_resume_completes(tmp_path):
    seed = int(os.environ.get("DLX_KILL_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    run = tmp_path / "run"
    ckpts = run / "checkpoints"
    out = tmp_path / "out.txt"
    kills, mid_write, epochs = 0, 0, []
    modes = ["random", "during-write", "random"]
    while modes:
        mode = modes.pop(0)
        first = kills == 0 and not run.exists()
        args = (
            ["train", *KILL, f"hydra.run.dir={run}"] if first else ["train", "--resume", str(run)]
        )
        resumes = out.read_text().count("resuming from epoch") if out.exists() else 0
        proc = _start(args, tmp_path, out)
        if first:
            started = _wait_for(lambda: (ckpts / "last.pt").exists(), proc)
        else:
            started = _wait_for(lambda n=resumes: out.read_text().count("resuming from") > n, proc)
        if mode == "random":
            # Somewhere in the next epoch or so, whatever this machine's speed: time the
            # first epoch this process saves, then sleep a random share of that.
            t0, before = time.monotonic(), _mtime(ckpts / "last.pt")
            _wait_for(lambda b=before: _mtime(ckpts / "last.pt") != b, proc, poll=0.002)
            time.sleep(rng.uniform(0, time.monotonic() - t0))
        else:  # a checkpoint write is in progress while its temp file exists
            _wait_for(lambda: any(ckpts.glob(".*.tmp")), proc, poll=0.001)
        if not started or proc.poll() is not None:
            break  # the run finished before this kill: nothing left to kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if any(ckpts.glob(".*.tmp")):  # the write was cut off before its rename
            mid_write += 1
        epochs.append(_saved_epoch(run))  # last.pt always loads
        if not modes and mid_write == 0 and kills < 6:
            modes.append("during-write")
    note = f"(DLX_KILL_SEED={seed}, kills={kills}, mid-write={mid_write}, epochs={epochs})"
    print(note)
    assert kills >= 3, note
    assert mid_write >= 1, f"no kill landed inside a checkpoint write {note}"
    assert epochs == sorted(epochs), f"a kill lost progress {note}"

    from typer.testing import CliRunner

    from dlx.cli.app import app

    result = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 0, f"{result.output}\n{note}"
    m = read_metrics(run)
    assert m["status"] == "completed", note
    assert [h["epoch"] for h in m["history"]] == list(range(1, 11)), note
    assert not list(ckpts.glob(".*.tmp")), "the killed writers' temp files are cleaned up"


# ------------------------------------------------------------------ divergence


def test_a_huge_learning_rate_diverges_exit_1_and_keeps_the_last_good_checkpoint(tmp_path):
    """Adam at lr=1e6 on the default cnn/digits: the loss goes finite but absurd (~1e36 within
    20 steps, first loss ~2.3), far past divergence_factor=1000 x the first loss."""
    from typer.testing import CliRunner

    from dlx.cli.app import app

    run = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", *FAST, "opt.lr=1e6", "epochs=3", f"hydra.run.dir={run}"]
    )
    assert result.exit_code == 1, result.output
    assert "diverged" in result.output and "Traceback" not in result.output
    m = read_metrics(run)
    assert m["status"] == "diverged"
    assert "divergence_factor" in m["error"] or "nan" in m["error"].lower()
    assert any(t.startswith("diverged") for t in all_tags(run)["tensors"]), "a TensorBoard text"
    weights = _weights(run)
    assert all(torch.isfinite(w).all() for w in weights.values()), "no exploded weights saved"
    assert _saved_epoch(run) == m["epochs_run"], "last.pt is the last good epoch"


def test_divergence_is_a_loss_that_stays_away_not_a_spike_it_comes_back_from():
    """Generated read-out sequences: `diverged` exactly when a read-out is NaN/Inf, past
    limit**2 x the first loss, or past limit x at SUSTAINED read-outs in a row. Adam at a large
    lr spikes past 1000x in its first steps and comes back (a shallow MLP at lr=0.03 ends at
    val loss 0.016); that spike alone must not stop the run."""
    import math
    import random

    from dlx.training.loop import SUSTAINED, Diverged, check_divergence
    from dlx.training.run import RunState

    rng = random.Random(0)
    limit = 1000.0
    for _ in range(500):
        first = 10 ** rng.uniform(-3, 1)
        kinds = rng.choices(["low", "high", "huge", "nan"], [70, 25, 2, 1], k=rng.randint(1, 12))
        scale = {"low": (0.0, 900.0), "high": (1001.0, 9e5), "huge": (1.1e6, 1e9)}
        values = [math.nan if k == "nan" else first * rng.uniform(*scale[k]) for k in kinds]
        expect, run_ = None, 0
        for i, k in enumerate(kinds):
            run_ = run_ + 1 if k in ("high", "huge") else 0
            if k in ("nan", "huge") or run_ >= SUSTAINED:
                expect = i
                break
        state, raised = RunState(initial_loss=first), None
        for i, v in enumerate(values):
            try:
                check_divergence(v, state, limit)
            except Diverged:
                raised = i
                break
        assert raised == expect, (kinds, raised, expect)


def test_an_epoch_that_ends_past_the_limit_is_not_saved_as_the_last_good_checkpoint(
    tmp_path, monkeypatch
):
    """The loss goes 5000x its first value in the last two read-outs of epoch 1 and stays
    there: the run stops as diverged in epoch 2 and last.pt is still the epoch-0 one (epoch 1
    ended mid-divergence); a huge divergence_factor (1e200) switches the check off, no crash."""
    from typer.testing import CliRunner

    import dlx.training.loop as loop
    from dlx.cli.app import app
    from dlx.training import checkpoint

    real, seen = loop.train_step, {}

    def step(s, xb, yb):
        out, loss = real(s, xb, yb)
        if seen["state"].global_step > seen["len"] - 2 * seen["every"]:
            loss = loss * 5000
        return out, loss

    epoch = loop.train_epoch

    def train_epoch(run, stop):
        seen.update(state=run.state, len=len(run.train_loader))
        seen["every"] = max(1, min(int(run.cfg.log.every_n_steps), len(run.train_loader) // 4))
        return epoch(run, stop)

    monkeypatch.setattr(loop, "train_step", step)
    monkeypatch.setattr(loop, "train_epoch", train_epoch)
    run = tmp_path / "run"
    args = ["train", "log.graph=false", "epochs=3", f"hydra.run.dir={run}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "3 read-outs in a row" in result.output, result.output
    assert checkpoint.load(run / "checkpoints" / "last.pt")["run"]["epoch"] == 0
    huge = CliRunner().invoke(app, [*args[:-1], "divergence_factor=1e200", f"hydra.run.dir={run}2"])
    assert huge.exit_code == 0 and read_metrics(tmp_path / "run2")["status"] == "completed"


def test_adams_first_step_spike_is_not_called_divergence(tmp_path):
    from typer.testing import CliRunner

    from dlx.cli.app import app

    run = tmp_path / "run"
    args = ["experiment=universal_approximation", "opt.lr=0.03", "epochs=3", "log.graph=false"]
    result = CliRunner().invoke(app, ["train", *args, f"hydra.run.dir={run}"])
    assert result.exit_code == 0, result.output
    m = read_metrics(run)
    assert m["status"] == "completed" and m["history"][-1]["val"]["loss"] < 1.0, m["history"]


# ------------------------------------------------------------------ code in a checkpoint


class _Payload:
    """Unpickling this calls open(path, "w"): it creates a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _evil_checkpoint(path: Path, marker: Path, how: str) -> None:
    from dlx.training.checkpoint import FORMAT

    payload = {"format": FORMAT, "model": {"w": torch.zeros(2)}, "extra": _Payload(str(marker))}
    if how == "zip":
        torch.save(payload, path)
    elif how == "legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        import pickle

        path.write_bytes(pickle.dumps(payload))


def test_the_payload_really_creates_a_file_when_unpickled_unsafely(tmp_path):
    """The control: unpickled without weights_only's guard, the same payload runs code
    (plain pickle: no dlx file, tests included, turns weights_only off)."""
    import pickle

    marker = tmp_path / "pwned"
    _evil_checkpoint(tmp_path / "evil.pt", marker, "raw-pickle")
    pickle.loads((tmp_path / "evil.pt").read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("how", ["zip", "legacy", "raw-pickle"])
def test_a_checkpoint_carrying_code_is_refused_and_never_runs(how, tmp_path):
    from dlx.errors import UserError
    from dlx.training import checkpoint

    marker = tmp_path / "pwned"
    _evil_checkpoint(tmp_path / "evil.pt", marker, how)
    with pytest.raises(UserError) as err:
        checkpoint.load(tmp_path / "evil.pt")
    assert "evil.pt" in str(err.value)
    assert not marker.exists()


def test_resume_from_a_checkpoint_carrying_code_exits_2_and_runs_nothing(tmp_path):
    from typer.testing import CliRunner

    import dlx
    from dlx.cli.app import app

    run = tmp_path / "run"
    dlx.train(
        [*FAST, "model=mlp", "model.width=16", "data.limit=64", "epochs=1", f"hydra.run.dir={run}"]
    )
    marker = tmp_path / "pwned"
    _evil_checkpoint(run / "checkpoints" / "last.pt", marker, "zip")
    result = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2, result.output
    assert "Refused to load" in result.output and "last.pt" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists()
    assert read_metrics(run)["status"] == "completed", "the run's metrics.json is untouched"


# ------------------------------------------------------------------ resume edge cases

TINY = [*FAST, "model=mlp", "model.width=16", "model.depth=1", "data.limit=64"]


def _resume(run: Path, *overrides: str):
    from typer.testing import CliRunner

    from dlx.cli.app import app

    return CliRunner().invoke(app, ["train", "--resume", str(run), *overrides])


def test_resume_with_more_epochs_extends_the_run_and_records_the_new_config(tmp_path):
    from omegaconf import OmegaConf

    import dlx

    run = tmp_path / "run"
    dlx.train([*TINY, "epochs=1", f"hydra.run.dir={run}"])
    result = _resume(run, "epochs=3")
    assert result.exit_code == 0, result.output
    m = read_metrics(run)
    assert m["status"] == "completed" and [h["epoch"] for h in m["history"]] == [1, 2, 3]
    assert OmegaConf.load(run / ".hydra" / "config.yaml").epochs == 3, "a later resume sees it"
    fewer = _resume(run, "epochs=2")  # nothing to train: said, not silently "completed"
    assert fewer.exit_code == 0 and "already at epoch 3 of epochs=2" in fewer.output
    assert [h["epoch"] for h in read_metrics(run)["history"]] == [1, 2, 3]


def test_resuming_a_run_that_stopped_early_trains_no_further(tmp_path):
    import dlx

    run = tmp_path / "run"
    args = ["epochs=20", "early_stopping.patience=1", "early_stopping.min_delta=100"]
    m = dlx.train([*TINY, *args, f"hydra.run.dir={run}"])
    assert m["status"] == "stopped_early" and m["epochs_run"] == 2
    result = _resume(run)
    assert result.exit_code == 0, result.output
    assert "early stopping fired at epoch 2: nothing is left to train" in result.output
    again = read_metrics(run)
    assert again["status"] == "stopped_early" and again["epochs_run"] == 2
    assert again["test"] == m["test"]


def test_a_run_folder_in_use_is_not_resumed_a_second_time(tmp_path):
    import dlx
    from dlx.record.lock import run_lock

    run = tmp_path / "run"
    dlx.train([*TINY, "epochs=1", f"hydra.run.dir={run}"])
    before = (run / "checkpoints" / "last.pt").read_bytes()
    with run_lock(run):  # as if another dlx process were still writing this run
        result = _resume(run, "epochs=2")
    assert result.exit_code == 2 and "in use" in result.output, result.output
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def _bad_checkpoints():
    """A dlx checkpoint with one part replaced by what a damaged or forged file may hold."""
    counters = [
        ("run", "epoch", "1"),
        ("run", "epoch", -3),
        ("run", "global_step", True),
        ("run", "initial_loss", "2.3"),
        ("run", "history", {"epoch": 1}),
        ("run", "history", [1, 2]),
        ("run", None, [1, 2, 3]),
        ("run", None, None),
        ("run", "history", [{}]),
        ("run", "history", [{"epoch": 1, "train": {"loss": "x"}, "val": {"loss": 1.0}}]),
        ("early_stopping", None, [1]),
        ("early_stopping", "bad_epochs", "2"),
        ("rng", None, {"loader": 1}),
        ("rng", "python", [1]),
    ]
    weights = [
        ("model", None, [1, 2]),
        ("model", None, {"net.0.weight": 1.0}),
        ("model", None, {1: "x"}),
        ("ema", None, [0.5]),
        ("ema", "model", "weights"),
    ]
    return counters, weights


def _corrupt(saved: dict, where: str, key, value) -> dict:
    if key is None:
        saved[where] = value
    else:
        saved[where] = {**saved[where], key: value}
    return saved


def test_a_damaged_checkpoint_is_one_message_for_resume_eval_and_predict(tmp_path):
    """Every part of a checkpoint is checked as it is read: counters and weights of the wrong
    type or shape give exit 2 and one message for `train --resume`, `eval` and `predict` (no
    traceback), and metrics.json stays as it was; a key a newer dlx added is left aside."""
    import dlx

    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (8, 8), 90).save(image)
    counters, weights = _bad_checkpoints()
    for knob in ("ema.decay=0.9", "ema.decay=null"):
        run = tmp_path / knob.replace("=", "_")
        dlx.train([*TINY, "epochs=1", knob, f"hydra.run.dir={run}"])
        # eval and predict read the EMA's weights when the run kept an EMA, else the model's
        read = "ema" if knob.endswith("0.9") else "model"
        # resume reads every part (the raw model's weights too); the EMA's only with an EMA
        cases = [c for c in counters + weights if c[0] != "ema" or read == "ema"]
        _refused_everywhere(run, cases, [c for c in weights if c[0] == read], image, tmp_path)


def _refused_everywhere(run, cases, read_by_eval, image, tmp_path) -> None:
    import shutil

    import torch
    from typer.testing import CliRunner

    from dlx.cli.app import app

    ckpts = {name: run / "checkpoints" / name for name in ("last.pt", "best.pt")}
    kept = {name: tmp_path / name for name in ckpts}
    for name in ckpts:
        shutil.copy(ckpts[name], kept[name])
    before = (run / "metrics.json").read_bytes()

    def corrupted(where, key, value) -> None:
        for name in ckpts:
            saved = _corrupt(torch.load(kept[name], weights_only=True), where, key, value)
            torch.save(saved, ckpts[name])

    for case in cases:
        corrupted(*case)
        commands = [["train", "--resume", str(run), "epochs=2"]]
        if case in read_by_eval:
            commands += [["eval", str(run)], ["predict", str(run), str(image)]]
        for args in commands:
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 2, (case, args, result.output)
            assert "Traceback" not in result.output and "Error" in result.output, result.output
            assert "checkpoint" in result.output or ".pt" in result.output, result.output
        assert (run / "metrics.json").read_bytes() == before
    corrupted("run", "from_a_newer_dlx", 7)
    result = _resume(run, "epochs=2")
    assert result.exit_code == 0, result.output
    assert [h["epoch"] for h in read_metrics(run)["history"]] == [1, 2]


def test_early_stoppings_saved_state_sets_only_its_own_fields():
    """A checkpoint's early-stopping state puts back the five counters it wrote and nothing
    else: `enabled`, `patience` or a method named in a forged file are left as configured."""
    from dlx.training.early_stopping import EarlyStopping

    es = EarlyStopping(True, "val/loss", 5, 0.0)
    state = {**es.state_dict(), "bad_epochs": 3, "best": 0.5, "best_epoch": 2}
    es.load_state_dict({**state, "enabled": False, "patience": 0, "update": "pwned"})
    assert (es.enabled, es.patience, es.bad_epochs, es.best) == (True, 5, 3, 0.5)
    assert callable(es.update)
    for bad in ({**state, "bad_epochs": "3"}, {**state, "fired": 1}, {"best": 0.5}, [state]):
        with pytest.raises(ValueError):
            es.load_state_dict(bad)
