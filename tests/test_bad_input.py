"""Bad input: every mistake a user can make ends in one clear message that names the key
(or option), exit 2, no traceback, and nothing already saved is lost.

The table runs `dlx` in-process (typer's CliRunner: one torch import for all cases); one
test runs a few of the cases as real processes, as a user meets them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from conftest import FAST, read_metrics, run_dlx

TINY = [
    *FAST,
    "num_threads=1",
    "model=mlp",
    "model.width=16",
    "model.depth=1",
    "data.limit=64",
    "epochs=1",
]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """One finished tiny run: the folder the `--resume` cases copy and damage."""
    import dlx

    run = tmp_path_factory.mktemp("good") / "run"
    m = dlx.train([*TINY, f"hydra.run.dir={run}"])
    assert m["status"] == "completed"
    return run


def _copy(good_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(good_run, run, ignore=shutil.ignore_patterns(".lock"))
    return run


def _truncate(run: Path) -> None:
    last = run / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])


def _foreign(run: Path) -> None:
    (run / "checkpoints" / "last.pt").write_bytes(
        b"PK\x03\x04 not really a zip" + bytes(range(256))
    )


def _plain_torch_dict(run: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(3)}}, run / "checkpoints" / "last.pt")


def _no_checkpoint(run: Path) -> None:
    (run / "checkpoints" / "last.pt").unlink()


def _no_hydra(run: Path) -> None:
    shutil.rmtree(run / ".hydra")


# (id, args, words the message must contain, how to damage a copy of a good run or None)
# "{run}" in args is that copy; "{tmp}" is the test's tmp folder.
CASES = [
    ("unknown-group-option", ["model=nosuch"], ["model", "cnn", "mlp"], None),
    ("unknown-option-in-list", ["reg=[l2,nosuch]"], ["reg", "nosuch", "dropout"], None),
    ("unknown-key", ["nokey=1"], ["nokey"], None),
    ("unknown-nested-key", ["opt.nokey=1"], ["opt.nokey"], None),
    ("typo-in-a-key", ["opt.lrr=0.1"], ["`opt.lrr`", "Did you mean `opt.lr`", "betas"], None),
    (
        "added-key-the-optimizer-does-not-take",
        ["+opt.lrr=0.1", "data.limit=64", "epochs=1"],
        ["`opt.lrr`", "Adam", "eps"],
        None,
    ),
    ("config-dir-missing", ["--config-dir", "{tmp}/nowhere"], ["--config-dir", "nowhere"], None),
    ("bad-override-syntax", ["epochs=[1"], ["epochs"], None),
    ("override-without-value", ["++epochs"], ["epochs"], None),
    ("negative-lr", ["opt.lr=-1"], ["opt.lr", "> 0"], None),
    ("lr-not-a-number", ["opt.lr=fast"], ["opt.lr"], None),
    ("dropout-1.0", ["reg.dropout=1.0"], ["reg.dropout", "[0, 1)"], None),
    ("epochs-0", ["epochs=0"], ["epochs", ">= 1"], None),
    ("batch-size-negative", ["batch_size=-1"], ["batch_size"], None),
    ("string-for-int", ["epochs=ten"], ["epochs", "'ten'"], None),
    ("float-for-int", ["batch_size=6.5"], ["batch_size"], None),
    ("bad-activation", ["model.activation=swish"], ["model.activation", "relu"], None),
    ("bad-init", ["model.init=zeros"], ["model.init", "xavier"], None),
    ("bad-precision", ["precision=fp8"], ["precision", "bf16"], None),
    ("bad-monitor", ["early_stopping.monitor=val/f1"], ["early_stopping.monitor", "val/acc"], None),
    ("patience-0", ["early_stopping.patience=0"], ["early_stopping.patience"], None),
    ("divergence-factor-below-1", ["divergence_factor=0.5"], ["divergence_factor"], None),
    ("val-fraction-1.5", ["data.val_fraction=1.5"], ["data.val_fraction"], None),
    (
        "no-room-for-training",
        ["data.val_fraction=0.5", "data.test_fraction=0.45"],
        ["data.val_fraction"],
        None,
    ),
    ("momentum-1", ["opt=momentum", "opt.momentum=1.0"], ["opt.momentum"], None),
    ("betas-one-number", ["opt.betas=[0.9]"], ["opt.betas"], None),
    ("sched-gamma-0", ["sched=step", "sched.gamma=0"], ["sched.gamma"], None),
    ("name-with-slash", ["name=../../elsewhere"], ["name"], None),
    ("fp16-on-cpu", ["device=cpu", "precision=fp16"], ["precision", "bf16"], None),
    ("cuda-without-gpu", ["device=cuda"], ["device", "cpu"], None),
    (
        "conv-net-on-1d-data",
        ["data=function", "model=cnn"],
        ["model", "mlp"],
        None,
    ),
    (
        "image-folder-missing",
        ["data=imagefolder", "data.root={tmp}/no_images"],
        ["data.root"],
        None,
    ),
    ("run-dir-under-a-file", ["hydra.run.dir={tmp}/a_file/run"], ["hydra.run.dir", "a_file"], None),
    ("run-dir-read-only", ["hydra.run.dir={tmp}/read_only/run"], ["hydra.run.dir"], None),
    ("run-dir-holds-a-run", ["hydra.run.dir={run}"], ["hydra.run.dir", "--resume"], "copy"),
    ("resume-missing-folder", ["--resume", "{tmp}/nothere"], ["--resume", "nothere"], None),
    ("resume-not-a-run", ["--resume", "{run}"], ["--resume", ".hydra"], _no_hydra),
    ("resume-no-checkpoint", ["--resume", "{run}"], ["--resume", "last.pt"], _no_checkpoint),
    ("resume-truncated-checkpoint", ["--resume", "{run}"], ["last.pt", "corrupt"], _truncate),
    ("resume-foreign-file", ["--resume", "{run}"], ["last.pt"], _foreign),
    ("resume-not-a-dlx-checkpoint", ["--resume", "{run}"], ["last.pt", "dlx"], _plain_torch_dict),
    ("resume-other-model-config", ["--resume", "{run}", "model.width=32"], ["model"], "copy"),
    ("resume-unknown-key", ["--resume", "{run}", "nokey=1"], ["nokey"], "copy"),
    ("resume-changes-a-group", ["--resume", "{run}", "model=cnn"], ["model"], "copy"),
    ("resume-bad-value", ["--resume", "{run}", "epochs=0"], ["epochs"], "copy"),
    ("resume-bad-syntax", ["--resume", "{run}", "epochs=[1"], ["epochs"], "copy"),
]


@pytest.mark.parametrize("args, words, damage", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_message_naming_the_key(
    args, words, damage, good_run, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from dlx.cli.app import app

    if "device=cuda" in args and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present here")
    (tmp_path / "a_file").write_text("a file, not a folder")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if any("read_only" in a for a in args) and os.access(read_only, os.W_OK):
        pytest.skip("running as root: a read-only folder is still writable")
    run = None
    saved: dict[str, bytes] = {}
    if damage is not None:
        run = _copy(good_run, tmp_path)
        if callable(damage):
            damage(run)
        saved = {
            str(p): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"
        }
    args = [a.format(tmp=tmp_path, run=run) for a in args]
    if args[0] != "--resume":
        args = [*FAST, *args]
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(app, ["train", *args])

    out = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}\n{out}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in out
    for word in words:
        assert word in out, f"{word!r} not in the message:\n{out}"
    assert not (tmp_path / "outputs").exists(), "bad input creates no run folder"
    if saved:  # nothing already saved is lost or changed
        now = {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
        assert now == saved


def test_the_table_has_20_plus_cases():
    assert len(CASES) >= 20


def test_bad_input_as_a_real_process_prints_no_traceback(good_run, tmp_path):
    """The same answers from `python -m dlx`, stderr included (what a user sees)."""
    (tmp_path / "a_file").write_text("x")
    run = _copy(good_run, tmp_path)
    _truncate(run)
    cases = [
        (["train", "hydra.run.dir=a_file/run"], "hydra.run.dir"),
        (["train", "--resume", str(run)], "last.pt"),
    ]
    for args, word in cases:
        proc = run_dlx(args, cwd=tmp_path, check=2)
        out = proc.stdout + proc.stderr
        assert word in out and "Traceback" not in out, out
    assert not (tmp_path / "outputs").exists()


def test_a_failing_run_never_overwrites_another_runs_results(good_run, tmp_path):
    """A diverging run pointed at a finished run's folder is refused before it starts."""
    from typer.testing import CliRunner

    from dlx.cli.app import app

    run = _copy(good_run, tmp_path)
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    result = CliRunner().invoke(app, ["train", *TINY, "opt.lr=1e6", f"hydra.run.dir={run}"])
    assert result.exit_code == 2, result.output
    assert "already holds a run" in result.output
    after = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before
    assert read_metrics(run)["status"] == "completed"
