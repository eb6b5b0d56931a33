"""Shared test helpers: run `dlx` as a user would, in a temp folder, and read what it left."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

# One width for every console the tests make, in-process or in a child: rich fixes a console's
# width when it is made, and under pytest-xdist a worker's first console (80 columns when
# nothing says otherwise) would wrap longer temp paths and table rows than a serial run does.
os.environ["COLUMNS"] = "200"

DLX = [sys.executable, "-m", "dlx"]
# Tiny, fast runs: the tests check behaviour, not accuracy (except where they say so).
FAST = ["log.graph=false"]


def run_dlx(args, cwd, timeout=300, env=None, check=None):
    """Run `dlx ARGS` in `cwd`; returns the CompletedProcess (stdout+stderr as text)."""
    e = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        [*DLX, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=e
    )
    if check is not None and proc.returncode != check:
        raise AssertionError(
            f"dlx {' '.join(args)} exited {proc.returncode}, expected {check}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def run_folder(root: Path) -> Path:
    """The single run folder under `root` (the folder given as hydra.run.dir)."""
    return Path(root)


def read_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def scalar_tags(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars of a run, read back with tensorboard's own event reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def all_tags(run_dir: Path) -> dict[str, list[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    acc.Reload()
    return acc.Tags()


@pytest.fixture
def tmp_run(tmp_path):
    """A run folder path inside tmp and the override that puts the run there."""
    run_dir = tmp_path / "run"
    return run_dir, f"hydra.run.dir={run_dir}"


# The root and dlx loggers as pytest started: their handlers and levels.
_BASELINE = [
    (lg, list(lg.handlers), lg.level) for lg in (logging.getLogger(), logging.getLogger("dlx"))
]


def _logging_back_to_baseline() -> None:
    for lg, handlers, level in _BASELINE:
        for h in list(lg.handlers):
            if h not in handlers and not type(h).__module__.startswith("_pytest"):
                lg.removeHandler(h)
        lg.setLevel(level)


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """Each test starts and ends with the logging handlers pytest started with. A command run
    in-process (typer's CliRunner, cli.main; also in a module's fixture) gets Hydra's job
    logging: a handler on that command's stdout, which is closed once it returns. A user never
    meets it (one process a command); a later in-process test in the same pytest (or xdist
    worker) would log into the closed stream ('--- Logging error ---' in its output)."""
    _logging_back_to_baseline()
    yield
    _logging_back_to_baseline()
