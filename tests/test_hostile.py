"""Hostile inputs and faults, one table: a run folder someone sent, a damaged one, a config that
asks for the impossible, a full disk, a second dlx on the same folder.

Every row runs `dlx ...` and asserts its exit code (README "Exit codes": 2 bad input, 1 a run
or the machine failed, 0 done), that the message names the key/file, that no traceback
reaches the user, and that every file in the test's folder (the copied run, the sentinel
files, the files outside the run) is byte-identical afterwards, except the ones the row says
may change. The attacks use sentinel files: one that a hostile target would delete, and one
it would create.

Speed: one finished tiny run (digits, epochs=1) per module, copied per row; most rows are
refused before anything is built and run in this process (`main()`, the console script's
own error boundary); the rows that start Hydra or need a fresh interpreter run `python -m dlx`.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import FAST, run_dlx

ROOT_ONLY = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounts need root"
)

# --------------------------------------------------------------------------- the folders


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One finished tiny run (digits, cnn, epochs=1)."""
    base = tmp_path_factory.mktemp("finished")
    run_dlx(["train", "epochs=1", *FAST, f"hydra.run.dir={base / 'run'}"], base, check=0)
    return base / "run"


USER_MODEL = """
from torch import nn


class Tiny(nn.Module):
    def __init__(self, in_shape, out_dim, activation="relu", dropout=0.0, batchnorm=False):
        super().__init__()
        n = 1
        for s in in_shape:
            n *= s
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n, out_dim))

    def forward(self, x):
        return self.net(x)


class NoArgs(nn.Module):
    def __init__(self):
        super().__init__()
"""


@pytest.fixture(scope="module")
def user_run(tmp_path_factory) -> Path:
    """A finished run of a user's own model (mymodels.Tiny from their --config-dir)."""
    base = tmp_path_factory.mktemp("user")
    (base / "mymodels.py").write_text(USER_MODEL)
    (base / "conf" / "model").mkdir(parents=True)
    (base / "conf" / "model" / "tiny.yaml").write_text("_target_: mymodels.Tiny\n")
    args = ["train", "--config-dir", "conf", "model=tiny", "epochs=1", *FAST]
    run_dlx([*args, f"hydra.run.dir={base / 'run'}"], base, check=0, env=_here(base))
    return base


def _here(folder: Path) -> dict[str, str]:
    """PYTHONPATH with `folder` first (a user's own module), then dlx's src."""
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


# --------------------------------------------------------------------------- the harness


@dataclass
class Ctx:
    tmp: Path
    run: Path  # a copy of the finished run
    sentinel: Path  # exists; a hostile target would delete it
    new: Path  # does not exist; a hostile target would create it
    outside: Path  # a file of the user's outside the run folder
    env: dict[str, str] = field(default_factory=dict)
    cleanup: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class Case:
    id: str
    args: Callable[[Ctx], list[str]]
    code: int
    says: tuple[str, ...] = ()  # in the output (str.format'ed with the Ctx's fields)
    setup: Callable[[Ctx], None] | None = None
    changes: tuple[str, ...] = ()  # globs (relative to tmp) of files that may change
    subprocess: bool = False  # a fresh interpreter (rows that start Hydra, or need env)
    check: Callable[[Ctx], None] | None = None
    marks: tuple = ()
    needs: str = "finished"  # finished | user | none


def snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.name == ".lock" or "__pycache__" in rel:
            continue
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_inprocess(args: list[str], cwd: Path, env: dict[str, str], capfd, monkeypatch):
    """`dlx ARGS` through `dlx.cli.app.main` (the console script's error boundary) in this
    process: (exit code, stdout + stderr)."""
    from dlx.cli import app as cli

    monkeypatch.chdir(cwd)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys, "argv", ["dlx", *args])
    capfd.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capfd.readouterr()
    return code, out.out + out.err


def edit_config(ctx: Ctx, change: Callable[[dict], Any]) -> None:
    path = ctx.run / ".hydra" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    change(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def junk(where: str, node: Any) -> Callable[[Ctx], None]:
    """Put a hostile node at `where` (a dotted key) of the run's config."""

    def setup(ctx: Ctx) -> None:
        def change(cfg: dict) -> None:
            *parents, leaf = where.split(".")
            d = cfg
            for p in parents:
                d = d.setdefault(p, {})
            d[leaf] = node(ctx) if callable(node) else node

        edit_config(ctx, change)

    return setup


def unlink_sentinel(ctx: Ctx) -> dict:
    return {
        "_target_": "pathlib.Path.unlink",
        "self": {"_target_": "pathlib.Path", "_args_": [str(ctx.sentinel)]},
    }


def copy_sentinel(ctx: Ctx) -> dict:
    return {"_target_": "shutil.copy", "src": str(ctx.sentinel), "dst": str(ctx.new)}


def mkdtemp_new(ctx: Ctx) -> dict:
    return {"_target_": "tempfile.mkdtemp", "dir": str(ctx.tmp), "prefix": "NEW"}


def torch_save_new(ctx: Ctx) -> dict:
    return {"_target_": "torch.save", "obj": [1], "f": str(ctx.new)}


def browser_new(ctx: Ctx) -> list:
    ctx.env["BROWSER"] = f"touch {ctx.new}"  # webbrowser.open(url) would run `touch NEW`
    return [{"_target_": "webbrowser.open", "url": str(ctx.new)}]


class Evil:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def evil_pickle(ctx: Ctx) -> dict:
    evil = ctx.run / "evil.pt"
    evil.write_bytes(pickle.dumps(Evil(str(ctx.new))))
    return {"_target_": "torch.load", "f": str(evil), "weights_only": False}


def evil_module(ctx: Ctx) -> str:
    (ctx.tmp / "evilmod.py").write_text(
        f"from pathlib import Path\nPath({str(ctx.new)!r}).touch()\n\ndef load(*a, **k):\n"
        "    raise SystemExit(0)\n"
    )
    ctx.env["PYTHONPATH"] = os.pathsep.join([str(ctx.tmp), os.environ.get("PYTHONPATH", "")])
    return "evilmod.load"


def decoded(ctx: Ctx) -> str:
    """A target hidden in a string that OmegaConf's oc.decode turns into a node."""
    node = (
        "{_target_: pathlib.Path.unlink, self: {_target_: pathlib.Path, _args_: ["
        f"{ctx.sentinel}]}}}}"
    )
    return "${oc.decode:'" + node + "'}"


def link(name: str, to: Callable[[Ctx], Path]) -> Callable[[Ctx], None]:
    """Replace the run's `name` by a symlink to a file (or folder) outside the run."""

    def setup(ctx: Ctx) -> None:
        p = ctx.run / name
        target = to(ctx)
        if p.is_dir() and not p.is_symlink():
            shutil.copytree(p, target)
            shutil.rmtree(p)
        elif p.exists():
            if not target.exists():  # the same content, outside the run
                shutil.copy(p, target)
            p.unlink()
        p.symlink_to(target)

    return setup


def write(name: str, data: bytes | str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        p = ctx.run / name
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    return setup


def evil_checkpoint(ctx: Ctx) -> None:
    import torch

    torch.save(
        {"format": "dlx-checkpoint/1", "model": Evil(str(ctx.new))},
        ctx.run / "checkpoints" / "best.pt",
    )


def delete(name: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        p = ctx.run / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()

    return setup


def user_config_dir(kind: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        (ctx.tmp / "conf" / "model").mkdir(parents=True)
        if kind == "noimport":
            text = "_target_: nowhere_to_be_found.Net\n"
        else:
            (ctx.tmp / "mymodels.py").write_text(USER_MODEL)
            ctx.env.update(_here(ctx.tmp))
            text = "_target_: mymodels.NoArgs\n"
        (ctx.tmp / "conf" / "model" / "mine.yaml").write_text(text)

    return setup


def user_folder_with(*names: str) -> Callable[[Ctx], None]:
    """An existing folder of the user's (not a run) with files dlx would write there."""

    def setup(ctx: Ctx) -> None:
        mine = ctx.tmp / "mine"
        for name in names:
            (mine / name).parent.mkdir(parents=True, exist_ok=True)
            (mine / name).write_text(f"the user's own {name}\n")

    return setup


@contextlib.contextmanager
def _nothing():
    yield


def held_lock(ctx: Ctx) -> None:
    """Another dlx is running in `mine/` (this test holds its lock)."""
    import fcntl

    lock = ctx.tmp / "mine" / "checkpoints" / ".lock"
    lock.parent.mkdir(parents=True)
    f = open(lock, "a")  # noqa: SIM115 (held until the row ends)
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    ctx.cleanup.append(f.close)


def _mount_tmpfs(ctx: Ctx, name: str, size: str) -> Path:
    d = ctx.tmp / name
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)])
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    ctx.cleanup.append(lambda: subprocess.run(["umount", "-l", str(d)]))
    return d


def _fill(folder: Path, leave: int) -> None:
    """Fill the filesystem of `folder` until only about `leave` bytes are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
            f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def full_disk(ctx: Ctx) -> None:
    _fill(_mount_tmpfs(ctx, "full", "3m"), 0)


def nearly_full_disk(ctx: Ctx) -> None:
    _fill(_mount_tmpfs(ctx, "full", "3m"), 1_600_000)


def read_only_run(ctx: Ctx) -> None:
    r = subprocess.run(["mount", "--bind", str(ctx.run), str(ctx.run)])
    if r.returncode != 0:
        pytest.skip("cannot bind-mount here")
    ctx.cleanup.append(lambda: subprocess.run(["umount", "-l", str(ctx.run)]))
    r = subprocess.run(["mount", "-o", "remount,ro,bind", str(ctx.run)])
    if r.returncode != 0:
        pytest.skip("cannot remount read-only here")


ENOSPC_HOOK = """
import errno, os
if os.environ.get("DLX_TEST_ENOSPC_AT"):
    import dlx.training.checkpoint as c
    _calls, _at, _write = [0], int(os.environ["DLX_TEST_ENOSPC_AT"]), c.atomic_write
    def _full(f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as f.write raises it
    def atomic_write(path, write):
        if str(path).endswith(".pt"):
            _calls[0] += 1
            if _calls[0] >= _at:
                return _write(path, _full)
        return _write(path, write)
    c.atomic_write = atomic_write
"""


def enospc_during_run(ctx: Ctx) -> None:
    """The 3rd checkpoint write (last.pt after epoch 1) finds the disk full."""
    hook = ctx.tmp / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(ENOSPC_HOOK)
    ctx.env.update(
        {
            "DLX_TEST_ENOSPC_AT": "3",
            "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        }
    )


def failed_with_intact_checkpoint(folder: str) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        import torch

        run = ctx.tmp / folder
        m = json.loads((run / "metrics.json").read_text())
        assert m["status"] == "failed" and "No space left" in m["error"], m
        state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
        assert state["format"] == "dlx-checkpoint/1"

    return check


def no_folder(name: str) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        left = [str(p) for p in (ctx.tmp / name).rglob("*")] if (ctx.tmp / name).exists() else []
        assert not any(".hydra" in p for p in left), left

    return check


def user_tmp_files_kept(ctx: Ctx) -> None:
    mine = ctx.tmp / "mine"
    assert (mine / "notes.tmp").read_text() == "the user's own notes.tmp\n"
    assert (mine / "checkpoints" / ".x.tmp").read_text() == "the user's own checkpoints/.x.tmp\n"
    assert json.loads((mine / "metrics.json").read_text())["status"] == "completed"


def sentinel_gone(ctx: Ctx) -> None:
    assert not ctx.sentinel.exists(), "the control: with --trust-config the target runs"


# --------------------------------------------------------------------------- the table

R = lambda ctx: str(ctx.run)  # noqa: E731
EVAL = lambda *extra: lambda ctx: ["eval", str(ctx.run), *extra]  # noqa: E731
RESUME = lambda *extra: lambda ctx: ["train", "--resume", str(ctx.run), *extra]  # noqa: E731
TRAIN = lambda *extra: lambda ctx: ["train", "epochs=1", *FAST, *extra]  # noqa: E731
IN_MINE = lambda *extra: (
    lambda ctx: [  # noqa: E731
        "train",
        "epochs=1",
        *FAST,
        f"hydra.run.dir={ctx.tmp / 'mine'}",
        *extra,
    ]
)
EVAL_WRITES = ("run/eval.json", "run/eval_*.json", "run/eval_*.png", "run/events.out.tfevents.*")

ATTACKS: list[tuple[str, str, Callable[[Ctx], Any], str]] = [
    # (id, where, hostile node, the key the message names)
    ("unlink-in-model", "model.junk", unlink_sentinel, "model.junk"),
    ("copy-in-model", "model.junk", copy_sentinel, "model.junk._target_"),
    ("mkdtemp-in-opt", "opt.junk", mkdtemp_new, "opt.junk._target_"),
    ("torch.save-as-sched", "sched", torch_save_new, "sched._target_"),
    ("webbrowser-in-aug", "aug.transforms", browser_new, "aug.transforms[0]._target_"),
    ("torch.load-pickle", "model.junk", evil_pickle, "model.junk._target_"),
    ("data-arbitrary-module", "data._target_", evil_module, "data._target_"),
    (
        "chain-through-dlx",
        "model._target_",
        lambda c: "dlx.models.mlp.torch.save",
        "model._target_",
    ),
    ("oc.decode-hidden", "model.junk", decoded, "oc.decode"),  # refused as a resolver
    ("nested-in-lists", "model.junk", lambda c: [[copy_sentinel(c)]], "model.junk[0][0]._target_"),
    ("target-not-a-string", "model.junk", lambda c: {"_target_": ["os", "system"]}, "model.junk"),
    ("torch.load-as-opt", "opt._target_", lambda c: "torch.load", "opt._target_"),
]

# ---- image folders (data/imagefolder.py, i17) and `dlx runs` on damaged folders (runs.py)


def pets(kind: str) -> Callable[[Ctx], None]:
    """tmp/pets: two classes of small PNGs, plus one bad file of `kind` (or one class only)."""

    def setup(ctx: Ctx) -> None:
        from test_imagefolder import _png_header_only, write_folder

        classes = ("cats",) if kind == "one-class" else ("cats", "dogs")
        root = write_folder(ctx.tmp / "pets", per_class=6, classes=classes)
        good = (root / "cats" / "0.png").read_bytes()
        bad = root / "cats" / "bad.png"
        if kind == "truncated":
            bad.write_bytes(good[: len(good) // 2])
        elif kind == "empty":
            bad.write_bytes(b"")
        elif kind == "fake-jpg":
            (root / "cats" / "bad.jpg").write_text("this is a text file, not a JPEG\n")
        elif kind == "bomb":
            _png_header_only(bad, 20000, 20000)  # 400 M pixels: over twice PIL's limit

    return setup


PETS = lambda *extra: (
    lambda ctx: [  # noqa: E731
        "train",
        "data=imagefolder",
        f"data.root={ctx.tmp / 'pets'}",
        "data.image_size=16",
        "epochs=1",
        *FAST,
        f"hydra.run.dir={ctx.tmp / 'new'}",
        *extra,
    ]
)
CACHE = ("pets/.dlx-cache-*",)


def runs_with(metrics: str) -> Callable[[Ctx], None]:
    """tmp/outputs: the finished run, and a copy of it whose metrics.json is `metrics`."""

    def setup(ctx: Ctx) -> None:
        shutil.copytree(ctx.run, ctx.tmp / "outputs" / "good")
        shutil.copytree(ctx.run, ctx.tmp / "outputs" / "broken")
        (ctx.tmp / "outputs" / "broken" / "metrics.json").write_text(metrics)

    return setup


RUNS = lambda ctx: ["runs", str(ctx.tmp / "outputs")]  # noqa: E731


def sweep_folder(value: Callable[[Ctx], str]) -> Callable[[Ctx], None]:
    """tmp/sweep: a sweep folder whose multirun.yaml holds the override `value`."""

    def setup(ctx: Ctx) -> None:
        (ctx.tmp / "sweep").mkdir()
        saved = {
            "hydra": {
                "overrides": {"task": ["epochs=1", "opt.lr=0.1,0.01", value(ctx)], "hydra": []},
                "runtime": {"choices": {}, "config_sources": []},
            }
        }
        (ctx.tmp / "sweep" / "multirun.yaml").write_text(yaml.safe_dump(saved))

    return setup


def unlink_override(ctx: Ctx) -> str:
    return (
        "+model.junk={_target_:pathlib.Path.unlink,self:{_target_:pathlib.Path,"
        f"_args_:['{ctx.sentinel}']}}}}"
    )


def decoded_override(ctx: Ctx) -> str:
    """The target's name built by an interpolation: no `_target_` in the override's text."""
    return (
        "+model.junk={_tar${oc.env:DLX_HOSTILE_EMPTY,''}get_:pathlib.Path.unlink,"
        f"self:{{_target_:pathlib.Path,_args_:['{ctx.sentinel}']}}}}"
    )


SWEEP_RESUME = lambda ctx: ["sweep", "--resume", str(ctx.tmp / "sweep")]  # noqa: E731


CASES: list[Case] = []
for aid, where, node, key in ATTACKS:
    for cmd, args in (("eval", EVAL()), ("resume", RESUME())):
        CASES.append(Case(f"{aid}-{cmd}", args, 2, (key, "--trust-config"), junk(where, node)))

CASES += [
    Case(
        "control-trust-config-runs-it",
        EVAL("--trust-config"),
        2,
        ("model",),
        junk("model.kernel_size", unlink_sentinel),
        changes=("SENTINEL",),
        check=sentinel_gone,
    ),
    # ---- symlinks placed in a run folder
    Case(
        "metrics-link-resume",
        RESUME(),
        2,
        ("metrics.json", "symbolic link"),
        link("metrics.json", lambda c: c.outside),
    ),
    Case(
        "metrics-link-eval",
        EVAL(),
        2,
        ("metrics.json", "symbolic link"),
        link("metrics.json", lambda c: c.outside),
    ),
    Case(
        "eval.json-link",
        EVAL(),
        2,
        ("eval.json", "symbolic link"),
        link("eval.json", lambda c: c.outside),
    ),
    Case(
        "lock-link",
        RESUME(),
        2,
        (".lock", "symbolic link"),
        link("checkpoints/.lock", lambda c: c.outside),
    ),
    Case(
        "train.log-link",
        RESUME(),
        2,
        ("train.log", "symbolic link"),
        link("train.log", lambda c: c.outside),
    ),
    Case(
        "checkpoints-dir-link-eval",
        EVAL(),
        2,
        ("checkpoints", "symbolic link"),
        link("checkpoints", lambda c: c.tmp / "elsewhere"),
    ),
    Case(
        "checkpoints-dir-link-resume",
        RESUME(),
        2,
        ("checkpoints", "symbolic link"),
        link("checkpoints", lambda c: c.tmp / "elsewhere"),
    ),
    Case(
        "config-link-resume",
        RESUME("epochs=2"),
        2,
        ("config.yaml", "symbolic link"),
        link(".hydra/config.yaml", lambda c: c.tmp / "config-elsewhere.yaml"),
    ),
    # ---- a damaged run folder
    Case(
        "metrics-truncated-eval",
        EVAL(),
        0,
        ("metrics.json", "damaged"),
        write("metrics.json", '{"status": "compl'),
        changes=EVAL_WRITES,
    ),
    Case(
        "metrics-a-list-eval",
        EVAL(),
        0,
        ("metrics.json",),
        write("metrics.json", "[1, 2]"),
        changes=EVAL_WRITES,
    ),
    Case(
        "metrics-null-eval",
        EVAL(),
        0,
        ("metrics.json",),
        write("metrics.json", "null"),
        changes=EVAL_WRITES,
    ),
    Case("config-garbage", EVAL(), 2, ("config.yaml",), write(".hydra/config.yaml", "{[: :\n")),
    Case("config-a-list", EVAL(), 2, ("config.yaml",), write(".hydra/config.yaml", "- 1\n- 2\n")),
    Case("config-empty-resume", RESUME(), 2, ("config.yaml",), write(".hydra/config.yaml", "")),
    Case("config-missing", EVAL(), 2, ("config.yaml",), delete(".hydra/config.yaml")),
    Case(
        "unset-env-eval",
        EVAL(),
        2,
        ("opt.lr", "oc.env"),
        junk("opt.lr", "${oc.env:DLX_HOSTILE_UNSET}"),
    ),
    Case(
        "unset-env-resume",
        RESUME(),
        2,
        ("opt.lr", "oc.env"),
        junk("opt.lr", "${oc.env:DLX_HOSTILE_UNSET}"),
    ),
    Case("hydra-interpolation", EVAL(), 2, ("name",), junk("name", "${hydra:job.name}")),
    Case(
        "missing-group-eval",
        EVAL(),
        2,
        ("`model`",),
        lambda c: edit_config(c, lambda cfg: cfg.pop("model")),
    ),
    Case(
        "missing-group-resume",
        RESUME(),
        2,
        ("`opt`",),
        lambda c: edit_config(c, lambda cfg: cfg.pop("opt")),
    ),
    Case("bad-value-in-folder", EVAL(), 2, ("opt.lr",), junk("opt.lr", -1)),
    Case(
        "huge-model-in-folder",
        EVAL(),
        2,
        ("model.hidden", "memory"),
        junk("model.hidden", [100000000000, 84]),
    ),
    Case(
        "best.pt-truncated",
        EVAL("--checkpoint", "best"),
        2,
        ("best.pt",),
        lambda c: (c.run / "checkpoints" / "best.pt").write_bytes(
            (c.run / "checkpoints" / "best.pt").read_bytes()[:200]
        ),
    ),
    Case(
        "best.pt-code-pickle",
        EVAL("--checkpoint", "best"),
        2,
        ("best.pt", "weights_only"),
        evil_checkpoint,
    ),
    Case(
        "best.pt-missing",
        EVAL("--checkpoint", "best"),
        2,
        ("best.pt",),
        delete("checkpoints/best.pt"),
    ),
    Case("last.pt-missing-resume", RESUME(), 2, ("last.pt",), delete("checkpoints/last.pt")),
    Case(
        "last.pt-garbage-resume",
        RESUME(),
        2,
        ("last.pt",),
        write("checkpoints/last.pt", b"PK\x03\x04 not a zip"),
    ),
    Case("read-only-folder-eval", EVAL(), 0, ("read-only",), read_only_run, marks=(ROOT_ONLY,)),
    Case("eval-bad-checkpoint-flag", EVAL("--checkpoint", "worst"), 2, ("--checkpoint",)),
    Case("eval-bad-split", EVAL("--split", "train"), 2, ("--split",)),
    Case("eval-bad-device", EVAL("--device", "tpu"), 2, ("--device",)),
    Case("eval-no-such-folder", lambda c: ["eval", str(c.tmp / "nope")], 2, ("nope",)),
    Case("eval-a-file", lambda c: ["eval", str(c.outside)], 2, ("outside.txt",)),
    Case("eval-not-a-run", lambda c: ["eval", str(c.tmp)], 2, ("config.yaml",)),
    # ---- --resume asked to be another experiment
    Case("resume-empty", lambda c: ["train", "--resume", ""], 2, ("--resume",), needs="none"),
    Case(
        "resume-no-such-folder",
        lambda c: ["train", "--resume", str(c.tmp / "nope")],
        2,
        ("nope",),
        needs="none",
    ),
    Case("resume-seed", RESUME("seed=1"), 2, ("seed",)),
    Case("resume-val-split", RESUME("data.val_fraction=0.3"), 2, ("data.val_fraction",)),
    Case("resume-data-limit", RESUME("data.limit=100"), 2, ("data.limit",)),
    Case("resume-data-group", RESUME("data=mnist"), 2, ("data",)),
    Case("resume-model-key", RESUME("model.hidden=[10,10]"), 2, ("model.hidden",)),
    Case("resume-sweep", RESUME("epochs=2,3"), 2, ("sweep",)),
    Case("resume-delete-block", RESUME("~early_stopping"), 2, ("early_stopping",)),
    Case("resume-hydra-key", RESUME("hydra.run.dir=/tmp/x"), 2, ("hydra.run.dir",)),
    # ---- new runs that cannot be: refused before anything is built or written
    Case(
        "train-delete-early-stopping",
        TRAIN("~early_stopping"),
        2,
        ("early_stopping",),
        needs="none",
    ),
    Case("train-delete-model", TRAIN("~model"), 2, ("model",), needs="none"),
    Case(
        "train-huge-width",
        TRAIN("model=mlp", "model.width=100000000"),
        2,
        ("model.width", "memory"),
        needs="none",
    ),
    Case(
        "train-huge-image",
        TRAIN("data.image_size=100000"),
        2,
        ("data.image_size", "memory"),
        needs="none",
    ),
    Case(
        "train-huge-batch",
        TRAIN("model=alexnet", "batch_size=100000000"),
        2,
        ("batch_size", "memory"),
        needs="none",
    ),
    Case("train-seed-2**70", TRAIN(f"seed={2**70}"), 2, ("seed",), needs="none"),
    Case("train-negative-seed", TRAIN("seed=-1"), 2, ("seed",), needs="none"),
    Case("train-100000-threads", TRAIN("num_threads=100000"), 2, ("num_threads",), needs="none"),
    Case("train-unknown-group-option", TRAIN("model=nope"), 2, ("nope", "cnn"), needs="none"),
    Case("train-unknown-key", TRAIN("opt.lrr=0.1"), 2, ("opt.lrr", "opt.lr"), needs="none"),
    Case("train-bad-override", TRAIN("opt.lr=["), 2, ("opt.lr",), needs="none"),
    Case("train-markup-in-value", TRAIN("model=[/bold]x"), 2, ("[/bold]",), needs="none"),
    Case(
        "train-no-config-dir",
        lambda c: ["train", "--config-dir", str(c.tmp / "nope")],
        2,
        ("--config-dir",),
        needs="none",
    ),
    Case(
        "train-run-dir-a-file",
        IN_MINE(),
        2,
        ("hydra.run.dir",),
        lambda c: (c.tmp / "mine").write_text("a file\n"),
        needs="none",
    ),
    Case(
        "train-on-a-finished-run",
        lambda c: ["train", "epochs=1", f"hydra.run.dir={c.run}"],
        2,
        ("hydra.run.dir", "--resume"),
    ),
    Case(
        "train-on-users-best.pt",
        IN_MINE(),
        2,
        ("best.pt",),
        user_folder_with("checkpoints/best.pt"),
        needs="none",
    ),
    Case(
        "train-on-users-train.log",
        IN_MINE(),
        2,
        ("train.log",),
        user_folder_with("train.log"),
        needs="none",
    ),
    Case(
        "train-while-another-runs",
        IN_MINE(),
        2,
        ("in use",),
        held_lock,
        needs="none",
        check=no_folder("mine"),
    ),
    Case(
        "train-plus-model-key",
        TRAIN("+model.foo=1", "hydra.run.dir=new"),
        2,
        ("model.foo",),
        needs="none",
        subprocess=True,
        check=no_folder("new"),
    ),
    Case(
        "config-dir-model-not-importable",
        lambda c: [*TRAIN("--config-dir", "conf", "model=mine", "hydra.run.dir=new")(c)],
        2,
        ("model._target_", "nowhere_to_be_found"),
        user_config_dir("noimport"),
        needs="none",
        subprocess=True,
        check=no_folder("new"),
    ),
    Case(
        "config-dir-model-wrong-constructor",
        lambda c: [*TRAIN("--config-dir", "conf", "model=mine", "hydra.run.dir=new")(c)],
        2,
        ("model._target_", "NoArgs"),
        user_config_dir("wrong"),
        needs="none",
        subprocess=True,
        check=no_folder("new"),
    ),
    Case(
        "train-keeps-users-tmp-files",
        IN_MINE(),
        0,
        (),
        user_folder_with("notes.tmp", "checkpoints/.x.tmp"),
        needs="none",
        subprocess=True,
        changes=("mine/*", "mine/.hydra/*", "mine/checkpoints/*"),
        check=user_tmp_files_kept,
    ),
    # ---- a full disk
    Case(
        "disk-full-at-start",
        lambda c: [*TRAIN(f"hydra.run.dir={c.tmp / 'full' / 'run'}")(c)],
        1,
        ("full", "free"),
        full_disk,
        needs="none",
        marks=(ROOT_ONLY,),
        check=no_folder("full/run"),
    ),
    Case(
        "disk-full-during-run",
        IN_MINE("epochs=3", "early_stopping.enabled=false"),
        1,
        ("No space left", "last.pt"),
        enospc_during_run,
        needs="none",
        subprocess=True,
        changes=(
            "mine",
            "mine/*",
            "mine/.hydra",
            "mine/.hydra/*",
            "mine/checkpoints",
            "mine/checkpoints/*",
            "hook/*",
        ),
        check=failed_with_intact_checkpoint("mine"),
    ),
    Case(
        "disk-full-during-run-tmpfs",
        lambda c: [
            *TRAIN(
                "epochs=5",
                "early_stopping.enabled=false",
                "model=mlp",
                "model.width=200",
                f"hydra.run.dir={c.tmp / 'full' / 'run'}",
            )(c)
        ],
        1,
        ("No space left", "free"),
        nearly_full_disk,
        needs="none",
        subprocess=True,
        marks=(ROOT_ONLY,),
        changes=(
            "full/run",
            "full/run/*",
            "full/run/.hydra",
            "full/run/.hydra/*",
            "full/run/checkpoints",
            "full/run/checkpoints/*",
        ),
        check=failed_with_intact_checkpoint("full/run"),
    ),
]

CASES += [
    Case(
        f"imagefolder-{kind}-refused",
        PETS("data.bad_files=refuse"),
        2,
        ("{tmp}/pets/cats/bad", "data.bad_files"),
        pets(kind),
        needs="none",
        subprocess=True,
        changes=CACHE,
        check=no_folder("new"),
    )
    for kind in ("truncated", "empty", "fake-jpg", "bomb")
] + [
    Case(
        "imagefolder-one-class",
        PETS(),
        2,
        ("one class folder (cats)", "data.root"),
        pets("one-class"),
        needs="none",
        subprocess=True,
        changes=CACHE,
        check=no_folder("new"),
    ),
    Case(
        "sweep-one-trial-too-big",
        lambda c: ["sweep", "model=mlp", "model.width=8,100000000", "epochs=1"],
        2,
        ("model.width=100000000", "memory"),
        needs="none",
    ),
    Case(
        "sweep-resume-target-in-a-value",
        SWEEP_RESUME,
        2,
        ("model.junk", "multirun.yaml"),
        sweep_folder(unlink_override),
        needs="none",
    ),
    Case(
        "sweep-resume-target-by-interpolation",
        SWEEP_RESUME,
        2,
        ("multirun.yaml",),
        sweep_folder(decoded_override),
        needs="none",
    ),
    Case("runs-metrics-a-list", RUNS, 0, ("broken", "good", "damaged"), runs_with("[1, 2]")),
    Case("runs-metrics-null", RUNS, 0, ("broken", "good", "damaged"), runs_with("null")),
    Case("runs-metrics-a-string", RUNS, 0, ("broken", "good", "damaged"), runs_with('"done"')),
    Case(
        "runs-metrics-truncated",
        RUNS,
        0,
        ("broken", "good", "damaged"),
        runs_with('{"status": "comp'),
    ),
    Case(
        "runs-status-with-markup",
        RUNS,
        0,
        ("broken", "good", "[/bold]"),
        runs_with('{"status": "[/bold][red]done", "epochs_run": 1}'),
    ),
]

# --------------------------------------------------------------------------- issue 24 rows


def sweep_with(
    task: Callable[[Ctx], list[str]],
    hydra: Callable[[Ctx], list[str]] | list[str] = (),
    journal: Callable[[Ctx], list[str]] | None = None,
    name: str = "sweep",
) -> Callable[[Ctx], None]:
    """tmp/NAME: a sweep folder (Optuna) whose multirun.yaml has `task` and `hydra`
    overrides, and, with `journal`, a study whose one unfinished trial has those overrides."""

    def setup(ctx: Ctx) -> None:
        folder = ctx.tmp / name
        folder.mkdir()
        extra = list(hydra(ctx) if callable(hydra) else hydra)
        saved = {
            "hydra": {
                "overrides": {"task": task(ctx), "hydra": extra},
                "runtime": {"choices": {"hydra/sweeper": "optuna"}, "config_sources": []},
            }
        }
        (folder / "multirun.yaml").write_text(yaml.safe_dump(saved))
        if journal is not None:
            import optuna
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            store = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
            study = optuna.create_study(study_name="dlx", storage=store)
            trial = study.ask()
            trial.set_user_attr("job", 0)
            trial.set_user_attr("overrides", journal(ctx))
            trial.set_user_attr("sweep_dir", str(folder.resolve()))

    return setup


def write_file(ctx: Ctx) -> str:
    """Finding 1's payload: a transform that writes NEW (a .pth in a venv runs at start)."""
    return (
        "{_target_:pathlib.Path.write_text,self:{_target_:pathlib.Path,"
        f"_args_:['{ctx.new}']}},data:'any'}}"
    )


JRN = "optuna.journal"
SEARCH = ["hparams_search=optuna", "opt.lr=interval(0.001,0.01)"]
SWEEP_OUT = ("sweep/.dlx-sweep.lock",)


def bomb(levels: int = 8) -> str:
    """A ~300-byte YAML alias bomb: 9**levels strings when expanded."""
    rows = ["- &a [x,x,x,x,x,x,x,x,x]"]
    for i in range(1, levels + 1):
        prev = chr(96 + i)
        rows.append(f"- &{chr(97 + i)} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(rows) + "\n"


def doubling(levels: int = 40) -> str:
    """Interpolations that double at every level: 2**40 characters resolved."""
    rows = ["x0: ab"] + [f"x{i}: ${{x{i - 1}}}${{x{i - 1}}}" for i in range(1, levels + 1)]
    return "\n".join(rows) + "\n"


def with_config_text(extra: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        path = ctx.run / ".hydra" / "config.yaml"
        path.write_text(path.read_text() + extra)

    return setup


def made_with_config_dir(ctx: Ctx) -> None:
    """hydra.yaml says --config-dir, and points the path at a folder of the sender's."""
    path = ctx.run / ".hydra" / "hydra.yaml"
    saved = yaml.safe_load(path.read_text())
    saved["hydra"]["runtime"]["config_sources"].append(
        {"path": f"file://{ctx.tmp}/evilconf", "schema": "file", "provider": "command-line"}
    )
    path.write_text(yaml.safe_dump(saved))
    junk("model._target_", "evilconf.Net")(ctx)


def journal_tail(data: bytes) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        with open(ctx.tmp / "sweep" / "optuna.journal", "ab") as f:
            f.write(data)

    return setup


def both(*setups: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        for s in setups:
            s(ctx)

    return setup


def hold_sweep_lock(ctx: Ctx) -> None:
    """Another dlx is running this sweep (the test holds its lock)."""
    import fcntl

    f = open(ctx.tmp / "sweep" / ".dlx-sweep.lock", "a")  # noqa: SIM115 (held for the row)
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    ctx.cleanup.append(f.close)


def journal_cut_back(ctx: Ctx) -> None:
    """The partial line is gone, every whole line kept, and Optuna reads the study again."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    text = (ctx.tmp / "sweep" / "optuna.journal").read_bytes()
    assert text.endswith(b"\n") and b'{"op_code": 5, "tri' not in text
    store = JournalStorage(JournalFileBackend(str(ctx.tmp / "sweep" / "optuna.journal")))
    assert len(optuna.load_study(study_name="dlx", storage=store).trials) == 1


def not_resolved(ctx: Ctx) -> None:
    assert os.environ.get("DLX_SECRET") not in (ctx.run / "metrics.json").read_text()


SECRET = {"DLX_SECRET": "hunter2-secret"}
TRIAL = lambda ctx: ["opt.lr=0.005", "aug.transforms=[" + write_file(ctx) + "]"]  # noqa: E731

TRUST_CASES = [
    Case(
        "train-group-choice-climbs-out",
        TRAIN("model=../opt/adam"),
        2,
        ("model", "../opt/adam"),
        needs="none",
    ),
    Case(
        "sweep-target-in-a-choice-beside-an-interval",
        SWEEP_RESUME,
        2,
        ("aug.transforms", "multirun.yaml"),
        sweep_with(lambda c: [*SEARCH, f"aug.transforms=choice([],[{write_file(c)}])"]),
        needs="none",
    ),
    Case(
        "sweep-target-past-the-first-64-grid-combinations",
        SWEEP_RESUME,
        2,
        ("model.junk",),
        sweep_with(
            lambda c: [
                "epochs=1,2,3,4,5,6,7,8,9",
                "seed=1,2,3,4,5,6,7,8,9",
                f"+model.junk=1,2,{write_file(c)}",
            ]
        ),
        needs="none",
    ),
    Case(
        "sweep-target-in-the-search-space-params",
        SWEEP_RESUME,
        2,
        ("aug.transforms",),
        sweep_with(
            lambda c: SEARCH,
            hydra=["hydra.sweeper.params.aug.transforms=choice([],[{_target_:os.system}])"],
        ),
        needs="none",
    ),
    Case(
        "sweep-target-in-a-journal-trial",
        SWEEP_RESUME,
        2,
        ("aug.transforms", "optuna.journal"),
        sweep_with(lambda c: [*SEARCH, "aug.transforms=choice([],[])"], journal=TRIAL),
        needs="none",
        changes=SWEEP_OUT,
    ),
    Case(
        "sweep-journal-trial-with-a-key-the-sweep-has-not",
        SWEEP_RESUME,
        2,
        ("hydra.run.dir",),
        sweep_with(lambda c: SEARCH, journal=lambda c: [f"hydra.run.dir={c.tmp}/x"]),
        needs="none",
        changes=SWEEP_OUT,
    ),
    Case(
        "sweep-journal-trial-without-hparams_search",
        SWEEP_RESUME,
        2,
        ("hparams_search", "optuna.journal"),
        sweep_with(lambda c: SEARCH, journal=lambda c: ["opt.lr=0.005"]),
        needs="none",
        changes=SWEEP_OUT,
    ),
    Case(
        "sweep-hydra-subdir-moves-trials-out",
        SWEEP_RESUME,
        2,
        ("hydra.sweep.subdir",),
        sweep_with(lambda c: SEARCH, hydra=["hydra.sweep.subdir=../x"]),
        needs="none",
    ),
    Case(
        "sweep-hydra-key-among-the-task-overrides",
        SWEEP_RESUME,
        2,
        ("hydra.run.dir",),
        sweep_with(lambda c: [*SEARCH, f"hydra.run.dir={c.tmp}/x"]),
        needs="none",
    ),
    Case(
        "sweep-storage-path-from-the-folder",
        SWEEP_RESUME,
        2,
        ("hydra.sweeper.storage",),
        sweep_with(lambda c: SEARCH, hydra=lambda c: [f"hydra.sweeper.storage={c.outside}"]),
        needs="none",
    ),
    Case(
        "sweep-launcher-setup-lines",
        SWEEP_RESUME,
        2,
        ("hydra.launcher.setup",),
        sweep_with(lambda c: SEARCH, hydra=lambda c: [f"hydra.launcher.setup=[touch {c.new}]"]),
        needs="none",
    ),
    Case(
        "sweep-group-choice-climbs-out",
        SWEEP_RESUME,
        2,
        ("model", "../opt/adam"),
        sweep_with(lambda c: [*SEARCH, "model=../opt/adam"]),
        needs="none",
    ),
    Case(
        "sweep-resolver-reads-the-environment",
        SWEEP_RESUME,
        2,
        ("name", "resolver"),
        sweep_with(lambda c: [*SEARCH, "name=${oc.env:DLX_SECRET}"]),
        needs="none",
    ),
    Case(
        "sweep-multirun-alias-bomb",
        SWEEP_RESUME,
        2,
        ("multirun.yaml", "alias"),
        lambda c: (
            (c.tmp / "sweep").mkdir()
            or (c.tmp / "sweep" / "multirun.yaml").write_text(
                "hydra:\n  x:\n" + "".join("  " + r + "\n" for r in bomb().splitlines())
            )
        ),
        needs="none",
    ),
    Case(
        "sweep-journal-not-a-journal",
        SWEEP_RESUME,
        2,
        ("optuna.journal", "line 1"),
        both(sweep_with(lambda c: SEARCH), lambda c: c.outside.replace(c.tmp / "sweep" / JRN)),
        needs="none",
        changes=(*SWEEP_OUT, "outside.txt"),
    ),
    Case(
        "sweep-journal-damaged-in-the-middle",
        SWEEP_RESUME,
        2,
        ("optuna.journal", "line 2"),
        both(
            sweep_with(lambda c: SEARCH),
            lambda c: (c.tmp / "sweep" / JRN).write_text('{"op_code": 0}\n{]\n{"op_code": 1}\n'),
        ),
        needs="none",
        changes=SWEEP_OUT,
    ),
    Case(
        "sweep-second-resume-is-refused",
        SWEEP_RESUME,
        2,
        ("in use by another dlx sweep",),
        both(sweep_with(lambda c: SEARCH), hold_sweep_lock),
        needs="none",
    ),
    Case(
        "sweep-lock-file-is-a-link",
        SWEEP_RESUME,
        2,
        ("link",),
        both(
            sweep_with(lambda c: SEARCH),
            lambda c: (c.tmp / "sweep" / ".dlx-sweep.lock").symlink_to(c.outside),
        ),
        needs="none",
    ),
    Case(
        "config-dir-hint-names-no-path-from-the-folder",
        EVAL(),
        2,
        ("model._target_", "configs of its own"),
        made_with_config_dir,
    ),
    Case(
        "secret-by-oc.env-eval",
        EVAL(),
        2,
        ("name", "oc.env"),
        junk("name", "${oc.env:DLX_SECRET}"),
        check=not_resolved,
    ),
    Case(
        "secret-by-oc.env-resume",
        RESUME(),
        2,
        ("name", "oc.env"),
        junk("name", "${oc.env:DLX_SECRET}"),
        check=not_resolved,
    ),
    Case(
        "config-alias-bomb",
        EVAL(),
        2,
        ("config.yaml", "alias"),
        with_config_text("bomb:\n" + "".join("  " + r + "\n" for r in bomb().splitlines())),
    ),
    Case(
        "config-interpolations-that-double",
        EVAL(),
        2,
        ("config.yaml", "expands"),
        with_config_text(doubling()),
    ),
    Case(
        "config-nested-10000-deep",
        EVAL(),
        2,
        ("config.yaml", "YAML"),
        with_config_text("deep: " + "[" * 10000 + "]" * 10000 + "\n"),
    ),
    Case(
        "runs-overrides-alias-bomb",
        RUNS,
        0,
        ("good", "broken", "damaged"),
        both(
            runs_with("{}"),
            lambda c: (c.tmp / "outputs" / "broken" / ".hydra" / "overrides.yaml").write_text(
                bomb()
            ),
        ),
    ),
]

RESUME_WRITES = (
    "run/metrics.json",
    "run/train.log",
    "run/events.out.tfevents.*",
    "run/checkpoints/*",
)
USER_CASES = [
    Case(
        "user-target-resume-with-its-config-dir",
        lambda c: ["train", "--resume", "run", "--config-dir", "conf", "epochs=2"],
        0,
        ("resuming from epoch 1",),
        needs="user",
        changes=(*RESUME_WRITES, "run/.hydra/config.yaml"),
    ),
    Case(
        "user-target-without-its-config-dir",
        lambda c: ["eval", "run"],
        2,
        ("model._target_", "mymodels.Tiny", "--config-dir"),
        needs="user",
    ),
    Case(
        "user-target-with-its-config-dir",
        lambda c: ["eval", "run", "--config-dir", "conf"],
        0,
        (),
        needs="user",
        changes=EVAL_WRITES,
    ),
    Case(
        "user-target-with-trust-config",
        lambda c: ["eval", "run", "--trust-config"],
        0,
        (),
        needs="user",
        changes=EVAL_WRITES,
    ),
    Case(
        "user-target-resume-without-config-dir",
        lambda c: ["train", "--resume", "run"],
        2,
        ("model._target_", "mymodels.Tiny"),
        needs="user",
    ),
]


def test_the_table_is_big_enough():
    assert len(CASES) + len(USER_CASES) + len(TRUST_CASES) >= 80


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES + USER_CASES + TRUST_CASES]
)
def test_hostile(case: Case, tmp_path, request, capfd, monkeypatch):
    tmp = tmp_path
    if case.needs == "user":
        shutil.copytree(request.getfixturevalue("user_run"), tmp, dirs_exist_ok=True)
        run = tmp / "run"
    else:
        run = tmp / "run"
        if case.needs == "finished":
            shutil.copytree(request.getfixturevalue("finished"), run, symlinks=True)
    ctx = Ctx(tmp, run, tmp / "SENTINEL", tmp / "NEW", tmp / "outside.txt")
    ctx.env.update(SECRET)
    ctx.sentinel.write_text("keep me\n")
    ctx.outside.write_text("the user's own file\n")
    if case.needs == "user":
        ctx.env.update(_here(tmp))
    try:
        if case.setup:
            case.setup(ctx)
        before = snapshot(tmp)
        args = case.args(ctx)
        if case.subprocess:
            proc = run_dlx(args, tmp, env=ctx.env, timeout=240)
            code, out = proc.returncode, proc.stdout + proc.stderr
        else:
            if case.needs == "user":
                monkeypatch.syspath_prepend(str(tmp))
            code, out = run_inprocess(args, tmp, ctx.env, capfd, monkeypatch)
        after = snapshot(tmp)
        if case.check:
            case.check(ctx)
    finally:
        for undo in reversed(ctx.cleanup):
            undo()
    said = f"dlx {' '.join(args)} -> exit {code}\n{out[-3000:]}"
    assert code == case.code, said
    assert "Traceback" not in out, said
    for s in case.says:
        assert s.format(**vars(ctx)) in out, f"expected {s!r} in the message\n{said}"
    allowed = lambda rel: any(fnmatch.fnmatch(rel, g) for g in case.changes)  # noqa: E731
    changed = sorted(k for k in before if before[k] != after.get(k) and not allowed(k))
    added = sorted(k for k in after if k not in before and not allowed(k))
    assert not changed, f"changed or deleted: {changed}\n{said}"
    assert not added, f"written: {added}\n{said}"
    assert not ctx.new.exists() or allowed("NEW")


def test_a_second_ctrl_c_during_shutdown_still_says_interrupted(tmp_path):
    """Ctrl-C, then Ctrl-C again at once: the run is still recorded as interrupted."""
    import signal
    import time

    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlx",
            "train",
            "epochs=200",
            "early_stopping.enabled=false",
            *FAST,
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "best.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "interrupted", m


def test_no_weights_only_false_anywhere():
    """No code path of dlx may unpickle code: no file turns torch.load's weights_only off."""
    root = Path(__file__).resolve().parent.parent
    bad = "weights_only" + "=False"
    hits = [
        str(p)
        for folder in ("src", "tests")
        for p in (root / folder).rglob("*.py")
        if bad in p.read_text().replace(" ", "")
    ]
    assert not hits, hits


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=mlp"],
        ["model=cnn"],
        ["model=alexnet"],
        ["model=resnet"],
        ["data=function", "model=shallow"],
        ["data=cifar10", "model=resnet", "data.root=x"],
    ],
)
def test_the_memory_estimate_sizes_shipped_models_and_lets_them_run(overrides):
    """The refusal above is for sizes nobody can allocate, not for dlx's own models: each is
    sized (no download; a big one on the meta device) and fits this machine."""
    import torch

    from dlx.config.compose import compose
    from dlx.launch.capacity import check_capacity, estimate

    cfg = compose(overrides)
    est = estimate(cfg)
    assert est is not None and est["parameters"] > 0 and est["activation_bytes"] > 0
    check_capacity(cfg, torch.device("cpu"))


# --------------------------------------------------------------------------- issue 24, units


def test_a_partial_last_journal_line_is_cut_back_before_anything_is_appended(tmp_path):
    """A full disk leaves half a line: appending after it would break the study for good
    (control: Optuna cannot read that file); the repair cuts it, says so, and keeps the rest."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from dlx.sweeps.journal import repair

    path = tmp_path / "optuna.journal"
    store = lambda: JournalStorage(JournalFileBackend(str(path)))  # noqa: E731
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="dlx", storage=store())
    study.tell(study.ask(), 1.0)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code": 5, "trial_id": 0, "val')
    broken = tmp_path / "control.journal"
    broken.write_bytes(path.read_bytes() + b'\n{"op_code": 4}\n')
    with pytest.raises(Exception):  # noqa: B017 - the control: the attack is real
        _ = optuna.load_study(
            study_name="dlx", storage=JournalStorage(JournalFileBackend(str(broken)))
        ).trials
    notes: list[str] = []
    repair(path, notes.append)
    assert path.read_bytes() == whole and "cut off" in notes[0]
    again = optuna.load_study(study_name="dlx", storage=store())
    again.tell(again.ask(), 2.0)
    assert len(optuna.load_study(study_name="dlx", storage=store()).trials) == 2


def test_the_config_dir_hint_never_names_a_path_from_the_folder(finished, tmp_path, capfd):
    from dlx.cli import app as cli  # noqa: F401 (the console's set-up)
    from dlx.config.trust import load_run_config
    from dlx.errors import UserError

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    made_with_config_dir(Ctx(tmp_path, run, tmp_path / "S", tmp_path / "N", tmp_path / "o"))
    with pytest.raises(UserError) as err:
        load_run_config(run)
    assert "configs of its own" in str(err.value)
    assert "evilconf" not in str(err.value).replace("evilconf.Net", "")


def test_control_the_unguarded_primitives_do_what_the_rows_refuse(tmp_path, monkeypatch):
    """The attacks are real without the checks: Hydra builds finding 1's payload, OmegaConf
    resolves a secret, PyYAML expands an alias bomb."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    ctx = Ctx(tmp_path, tmp_path, tmp_path / "S", tmp_path / "NEW", tmp_path / "o")
    (o,) = OverridesParser.create().parse_overrides(
        [f"aug.transforms=choice([],[{write_file(ctx)}])"]
    )
    from hydra.core.override_parser.types import Override

    instantiate(OmegaConf.create({"t": Override._convert_value(o.value().list[1])}))
    assert ctx.new.read_text() == "any"
    monkeypatch.setenv("DLX_SECRET", "hunter2")
    assert OmegaConf.create({"name": "${oc.env:DLX_SECRET}"}).name == "hunter2"
    loaded = yaml.safe_load(bomb(3))
    assert len(str(loaded)) > 9**3


def test_a_folder_name_ending_in_a_backslash_is_quoted_for_hydra():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from dlx.launch.runfolders import quote

    for value in ("/tmp/sweep\\", "it's", "a,b[c]", "x\\'y", "\\\\"):
        (o,) = OverridesParser.create().parse_overrides([f"hydra.sweep.dir={quote(value)}"])
        assert o.value() == value


# ---- image folders: links, shapes, the cache's description, names from disk


EVIL_CLASS = "\x1b]0;x\x07[red]cat"


def _imagefolder_cfg(root: Path, **extra: Any):
    from dlx.config.compose import compose

    over = [f"{k}={v}" for k, v in extra.items()]
    return compose(["data=imagefolder", f"data.root={root}", "data.image_size=16", *over]).data


def test_link_loops_end_and_every_image_is_taken_once(tmp_path):
    """`ln -s . cats/loop` twice and a link into the other class: the scan ends, each file
    once (control: os.walk(followlinks=True) repeats every image through the loops)."""
    from dlx.data.imagefolder import scan
    from test_imagefolder import write_folder

    root = write_folder(tmp_path / "pets", per_class=4)
    (root / "cats" / "loop").symlink_to(".")
    (root / "cats" / "loop2").symlink_to("..")
    (root / "dogs" / "leak").symlink_to(root / "cats")
    seen = 0
    for _, _, files in os.walk(root / "cats", followlinks=True):
        seen += len(files)
        if seen > 100:
            break
    assert seen > 100  # the control: the unguarded walk goes on and on
    classes, files = scan(root)
    assert classes == ["cats", "dogs"] and len(files) == 8
    assert sorted(label for _, label, *_ in files) == [0] * 4 + [1] * 4


def test_a_sigterm_during_the_scan_stops_it(tmp_path):
    from dlx.data.imagefolder import scan
    from dlx.training import signals
    from test_imagefolder import write_folder

    root = write_folder(tmp_path / "pets", per_class=2)
    with signals.StopRequested() as stop:
        stop.requested = True  # what the first SIGTERM sets
        with pytest.raises(KeyboardInterrupt):
            scan(root)


def test_a_2_kb_image_of_2000000_by_1_pixels_is_a_bad_file_not_gigabytes(tmp_path):
    import resource

    from dlx.data.cache import decode, header_problem
    from test_imagefolder import _png_header_only, write_folder

    root = write_folder(tmp_path / "pets", per_class=4)
    wide = root / "cats" / "wide.png"
    _png_header_only(wide, 2_000_000, 1)
    assert wide.stat().st_size < 2048
    w, h, size = 2_000_000, 1, 16
    assert (size * w // h) * size * 3 > 1 << 30  # the control: the resize it would have made
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert "aspect ratio" in header_problem(str(wide))
    with pytest.raises(ValueError, match="aspect ratio"):
        decode(str(wide), 16)
    from dlx.data.imagefolder import load

    data = load(_imagefolder_cfg(root), 0)
    assert any("wide.png" in n and "aspect ratio" in n for n in data.notes)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 300


def test_an_edited_cache_description_is_not_trusted_and_killed_builds_are_cleaned(tmp_path):
    """Editing `kept` would relabel every image: the cache is checked against the files and
    built again; a killed build's temp files go, a user's own *.tmp stays."""
    from dlx.data.imagefolder import load
    from test_imagefolder import write_folder

    root = write_folder(tmp_path / "pets", per_class=6)
    first = load(_imagefolder_cfg(root), 0)
    (meta,) = root.glob(".dlx-cache-*.json")
    saved = json.loads(meta.read_text())
    saved["kept"] = saved["kept"][1:] + [len(saved["kept"])]  # shifted by one: relabelled
    saved["bad"], saved["files"] = [], len(saved["kept"]) + 1
    meta.write_text(json.dumps(saved))
    stale = root / f"{meta.stem}.u8.abc123.tmp"
    stale.write_bytes(b"half")
    mine = root / "notes.tmp"
    mine.write_text("the user's own\n")
    again = load(_imagefolder_cfg(root), 0)
    assert json.loads(meta.read_text())["kept"] == list(range(12))
    assert not stale.exists() and mine.exists()
    x1, y1 = first.test.batch(slice(0, 4)) if hasattr(first.test, "batch") else (None, None)
    x2, y2 = again.test.batch(slice(0, 4)) if hasattr(again.test, "batch") else (None, None)
    assert (x1 is None) or (torch_equal(x1, x2) and torch_equal(y1, y2))


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_eval_reads_a_folder_named_root_but_never_writes_there(tmp_path, monkeypatch):
    """A run config's data.root: read for the eval, but the decode cache goes to the user's
    cache dir (and nothing old is pruned in the named folder)."""
    from dlx.data.imagefolder import load
    from dlx.data.roots import resolve_data_root
    from dlx.errors import UserError
    from test_imagefolder import write_folder

    root = write_folder(tmp_path / "theirs", per_class=4)
    (root / ".dlx-cache-s16-old.u8").write_bytes(b"not ours to delete")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cachehome"))
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"data": OmegaConf.to_container(_imagefolder_cfg(root))})
    before = snapshot(root)
    resolve_data_root(cfg)
    load(cfg.data, 0)
    assert snapshot(root) == before
    assert list((tmp_path / "cachehome" / "dlx").glob("imagefolder-theirs-*.u8"))
    cfg.data.root = str(tmp_path / "moved")
    with pytest.raises(UserError, match="--data-root"):
        resolve_data_root(cfg)
    resolve_data_root(cfg, str(root))
    assert cfg.data.root == str(root)


def test_a_class_folder_with_escape_codes_is_shown_escaped_on_a_terminal(tmp_path):
    """`dlx train` and `dlx eval` on a folder whose class is named ESC]0;x BEL[red]cat: the
    screen (pyte) gets no title change and no colour from it; the name shows escaped."""
    pyte = pytest.importorskip("pyte")
    pytest.importorskip("pexpect")
    from test_imagefolder import write_folder
    from test_terminal import dlx

    root = write_folder(tmp_path / "evil", per_class=8, classes=(EVIL_CLASS, "dog"))
    (root / "dog" / "bad\x1b[2J.png").write_bytes(b"")
    run = tmp_path / "run"
    args = ["data=imagefolder", f"data.root={root}", "data.image_size=16", "epochs=1"]
    for argv in (["train", *args, f"hydra.run.dir={run}"], ["eval", str(run)]):
        term = dlx(*argv, cwd=tmp_path)
        titles: list[str] = []
        term.screen.set_title = titles.append  # an OSC 0 would call this
        assert term.wait() == 0, term.text()
        assert not titles, titles
        shown = term.text()
        assert "\\x1b" in shown
        reds = [
            ch
            for line in term.screen.buffer.values()
            for ch in line.values()
            if ch.fg == "red" and ch.data.strip()
        ]
        assert "cat" not in "".join(reds)
    assert "\\x1b]0;x\\x07[red]cat" in shown  # the eval's per-class table
    control = pyte.Screen(40, 3)  # the control: the raw name does retitle a terminal
    seen: list[str] = []
    control.set_title = seen.append
    pyte.ByteStream(control).feed(EVIL_CLASS.encode())
    assert seen == ["x"]


# ---- dlx board: Host header (DNS rebinding), --host


def test_board_host_check_refuses_foreign_host_names():
    from dlx.cli.board import HostCheck

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"runs"]

    said: list[str] = []
    guard = HostCheck(app)
    for host, ok in [
        ("127.0.0.1:6006", True),
        ("localhost:6006", True),
        ("[::1]:6006", True),
        ("localhost", True),
        ("evil.example:6006", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example:6006", False),
        ("", False),
    ]:
        said.clear()
        body = guard({"HTTP_HOST": host}, lambda status, headers: said.append(status))
        assert (body == [b"runs"]) is ok, host
        assert said[0].startswith("200" if ok else "403"), host
    assert app({}, lambda *a: None) == [b"runs"]  # the control: TensorBoard answers anyone


def test_board_on_loopback_answers_local_host_names_only(tmp_path, finished):
    import urllib.error
    import urllib.request

    from conftest import DLX

    with socket_free() as port:
        pass
    out = tmp_path / "board.out"
    with open(out, "w") as f:
        proc = subprocess.Popen(
            [*DLX, "board", str(finished.parent), "--port", str(port)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        url = f"http://127.0.0.1:{port}/data/runs"
        import time

        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, out.read_text()
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                assert time.time() < deadline, out.read_text()
                time.sleep(0.5)
        rebound = urllib.request.Request(url, headers={"Host": f"attacker.example:{port}"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(rebound, timeout=5)
        assert err.value.code == 403
    finally:
        proc.send_signal(2)
        proc.wait(timeout=30)


@contextlib.contextmanager
def socket_free():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


def test_board_host_must_be_an_address(tmp_path, capfd, monkeypatch):
    (tmp_path / "outputs").mkdir()
    code, out = run_inprocess(
        ["board", "outputs", "--host", "$(touch x)"], tmp_path, {}, capfd, monkeypatch
    )
    assert code == 2 and "--host" in out and "Traceback" not in out
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", ["runs", "compare"])
def test_names_from_metrics_json_reach_the_terminal_escaped(
    command, finished, tmp_path, capfd, monkeypatch
):
    """`monitor` (dlx runs) and a config key (dlx compare) holding an OSC title sequence and
    rich markup: shown escaped, never sent raw, never crashing a table."""
    for name in ("a", "b"):
        shutil.copytree(finished, tmp_path / "outputs" / name)
    path = tmp_path / "outputs" / "b" / "metrics.json"
    m = json.loads(path.read_text())
    m["monitor"] = "val/\x1b]0;pwned\x07[/bold][link=http://x]loss"
    m.setdefault("config", {})["\x1b[2Jkey[/bold]"] = 1
    path.write_text(json.dumps(m, indent=2))
    args = ["runs", "outputs", "--columns", "run,monitor,status"] if command == "runs" else []
    if command == "compare":
        args = ["compare", "outputs/a", "outputs/b"]
    code, out = run_inprocess(args, tmp_path, {}, capfd, monkeypatch)
    assert code == 0, out
    assert "\x1b]0;" not in out and "\x1b[2J" not in out and "Traceback" not in out
    assert "\\x1b" in out


def test_sweep_files_are_never_written_through_a_planted_link(tmp_path):
    """summary.csv and optimization_results.yaml of a sweep folder from elsewhere: a link
    planted there is refused, the file it points at stays byte-identical (control: a plain
    open() would have written through it)."""
    from dlx.errors import UserError
    from dlx.sweeps.summary import write_csv

    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own\n")
    (tmp_path / "sweep").mkdir()
    link = tmp_path / "sweep" / "summary.csv"
    link.symlink_to(victim)
    with pytest.raises(UserError, match="symbolic link"):
        write_csv([], link)
    assert victim.read_text() == "the user's own\n"
    with open(link, "w") as f:  # the control
        f.write("overwritten")
    assert victim.read_text() == "overwritten"


# ---- property-style: generated payloads at every position of a run and a sweep folder

_CALLS = [
    "os.system",
    "builtins.exec",
    "pathlib.Path.write_text",
    "shutil.rmtree",
    "subprocess.run",
    "torch.save",
    "webbrowser.open",
    "dlx.data.digits.torch.save",
]


def _payload(rng, ctx: Ctx, depth: int = 0) -> Any:
    """A random hostile value: a target (maybe nested in lists/dicts) or a resolver call."""
    kind = rng.choice(["target", "target", "resolver", "nested"] if depth < 2 else ["target"])
    if kind == "resolver":
        name = rng.choice(["oc.env", "oc.decode", "oc.create", "oc.select", "now", "hydra"])
        arg = rng.choice(["DLX_SECRET", "'{_target_: os.system}'", "HOME", "x"])
        text = "${" + f"{name}:{arg}" + "}"
        return rng.choice([text, f"pre{text}post", "${" + "a" * rng.randint(1, 9) + "}" + text])
    if kind == "nested":
        inner = _payload(rng, ctx, depth + 1)
        return rng.choice([[inner], {"k" + str(rng.randint(0, 99)): inner}, [1, [inner]]])
    node = {"_target_": rng.choice(_CALLS)}
    if rng.random() < 0.5:
        node["_args_"] = [str(ctx.new)]
    if rng.random() < 0.5:
        node["self"] = {"_target_": "pathlib.Path", "_args_": [str(ctx.sentinel)]}
    return node


def _positions(tree: Any, path: tuple = ()) -> list[tuple]:
    out = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.append((*path, k))
            out.extend(_positions(v, (*path, k)))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out.append((*path, i))
            out.extend(_positions(v, (*path, i)))
    return out


def _put(tree: Any, where: tuple, value: Any) -> None:
    for step in where[:-1]:
        tree = tree[step]
    tree[where[-1]] = value


def test_generated_payloads_anywhere_in_a_run_config_are_refused(finished, tmp_path):
    """Every key and list position of a finished run's config.yaml, each with a seeded random
    payload: refused (UserError, exit 2) before anything is built; the sentinels byte-identical."""
    import random

    from dlx.config.trust import load_run_config
    from dlx.errors import UserError

    rng = random.Random(24)
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    ctx = Ctx(tmp_path, run, tmp_path / "SENTINEL", tmp_path / "NEW", tmp_path / "o")
    ctx.sentinel.write_text("keep me\n")
    path = run / ".hydra" / "config.yaml"
    original = yaml.safe_load(path.read_text())
    positions = _positions(original)
    assert len(positions) > 50
    before = snapshot(tmp_path / "run" / "checkpoints")
    for where in positions:
        cfg = json.loads(json.dumps(original))
        payload = _payload(rng, ctx)
        _put(cfg, where, payload)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        with pytest.raises(UserError):
            load_run_config(run)
        assert ctx.sentinel.read_text() == "keep me\n" and not ctx.new.exists(), (where, payload)
    assert snapshot(tmp_path / "run" / "checkpoints") == before


def _override_text(v: Any) -> str:
    from dlx.config.sweepcheck import _as_override

    return _as_override(v)


def test_generated_payloads_anywhere_in_a_sweep_folder_are_refused(tmp_path, capfd, monkeypatch):
    """Each override of a sweep folder (task and search space), each as a fixed value, one
    choice among harmless ones, or one value of a grid: a seeded random payload there is
    refused (exit 2) before Hydra starts; the sentinels byte-identical."""
    import random

    import dlx.launch.hydra_app as hydra_app

    monkeypatch.setattr(hydra_app, "run_hydra", lambda *a, **k: pytest.fail("accepted: ran"))
    rng = random.Random(2424)
    task = ["epochs=1", "opt.lr=0.1,0.01", "seed=1,2,3", "+model.extra=1"]
    params = ["hydra.sweeper.params.batch_size=choice(32,64)"]
    ctx = Ctx(tmp_path, tmp_path, tmp_path / "SENTINEL", tmp_path / "NEW", tmp_path / "o")
    ctx.sentinel.write_text("keep me\n")
    cases = 0
    for i in range(len(task) + len(params)):
        for form in ("fixed", "choice", "grid"):
            hostile = _override_text(_payload(rng, ctx))
            value = {
                "fixed": hostile,
                "choice": f"choice(1,{hostile},2)",
                "grid": f"1,2,{hostile}",
            }[form]
            t, h = list(task), list(params)
            if i < len(t):
                t[i] = t[i].split("=")[0] + "=" + value
            else:
                h[0] = h[0].split("=")[0] + "=" + value
            folder = tmp_path / f"s{i}{form}"
            folder.mkdir()
            saved = {
                "hydra": {
                    "overrides": {"task": ["hparams_search=optuna", *t], "hydra": h},
                    "runtime": {"choices": {"hydra/sweeper": "optuna"}, "config_sources": []},
                }
            }
            (folder / "multirun.yaml").write_text(yaml.safe_dump(saved))
            before = snapshot(folder)
            code, out = run_inprocess(
                ["sweep", "--resume", str(folder)], tmp_path, {}, capfd, monkeypatch
            )
            assert code == 2, f"{value}\n{out}"
            assert "Traceback" not in out and "multirun.yaml" in out, out
            assert snapshot(folder) == before
            assert ctx.sentinel.read_text() == "keep me\n" and not ctx.new.exists()
            cases += 1
    assert cases == 15


def test_dlx_runs_lists_an_alias_bomb_as_damaged_quickly_and_small(finished, tmp_path):
    """The acceptance bound: a 500-byte alias bomb in a run folder; `dlx runs` reads the tree
    in < 2 s and < 1 GB, the bad folder a damaged row (control: PyYAML alone expands it)."""
    import resource
    import time

    from dlx.runs.load import load_runs

    for name in ("good", "bomb"):
        shutil.copytree(finished, tmp_path / "outputs" / name)
    text = bomb(9)
    assert len(text) < 600
    (tmp_path / "outputs" / "bomb" / ".hydra" / "overrides.yaml").write_text(text)
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    runs = {r.name: r for r in load_runs(tmp_path / "outputs")}
    took = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert took < 2 and grown < 1024
    assert runs["bomb"].status == "damaged" and "alias" in runs["bomb"].problem
    assert runs["good"].status != "damaged"
    loaded = yaml.load(text, Loader=yaml.SafeLoader)  # the control: 9**10 leaves, shared
    node, depth = loaded[-1], 0
    while isinstance(node, list):
        node, depth = node[0], depth + 1
    assert node == "x" and depth >= 9  # str(loaded) would be billions of characters
