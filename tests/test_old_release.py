"""Folders made by the previous release (commit 4db7e1e, before the code moved into packages)
still open: a run evaluates and resumes, a sweep resumes. Their configs name targets by the
paths saved configs use (`dlx.data.*`, `dlx.models.*`) and the sweep's multirun.yaml names
the old callback `dlx.sweep.SweepSummary`; nothing in them is rewritten by hand.

The fixtures were made with that commit's own code (`PYTHONPATH=<4db7e1e>/src`):
    dlx train model=mlp model.width=16 model.depth=1 epochs=1
    dlx sweep model=mlp model.width=8,16 model.depth=1 epochs=1
(the sweep kept as if killed after trial 0: trial 1 never started; trial 0's checkpoints and
events dropped, a finished trial needs neither).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import read_metrics, run_dlx

OLD = Path(__file__).parent / "data" / "release_4db7e1e"


@pytest.fixture
def old(tmp_path: Path) -> Path:
    """A copy of the old folders (the tests write into them)."""
    shutil.copytree(OLD, tmp_path / "old")
    return tmp_path / "old"


def test_the_fixture_is_the_old_layout():
    multirun = (OLD / "sweep" / "multirun.yaml").read_text()
    assert "dlx.sweep.SweepSummary" in multirun  # the module path before the move
    assert read_metrics(OLD / "run")["status"] == "completed"
    assert sum(p.stat().st_size for p in OLD.rglob("*") if p.is_file()) < 300_000


def test_a_run_of_the_previous_release_evaluates_to_its_own_test_metric(old):
    run = old / "run"
    run_dlx(["eval", str(run)], cwd=old, check=0)
    test = read_metrics(run)["test"]
    result = json.loads((run / "eval.json").read_text())
    assert result["checkpoint"] == test["checkpoint"] == "best"
    assert result["metrics"]["loss"] == pytest.approx(test["loss"], abs=1e-6)
    assert result["metrics"]["acc"] == pytest.approx(test["acc"], abs=1e-6)
    assert result["run_test"]["max_abs_diff"] <= 1e-6


def test_a_run_of_the_previous_release_resumes_for_more_epochs(old):
    run = old / "run"
    proc = run_dlx(["train", "--resume", str(run), "epochs=2"], cwd=old, check=0)
    m = read_metrics(run)
    assert m["status"] == "completed" and m["epochs_run"] == 2, proc.stdout[-2000:]
    assert [h["epoch"] for h in m["history"]] == [1, 2]  # epoch 1 kept, epoch 2 trained
    assert OmegaConf.load(run / ".hydra" / "config.yaml").epochs == 2


def test_a_sweep_of_the_previous_release_resumes_and_ranks_every_trial(old):
    sweep = old / "sweep"
    before = (sweep / "0" / "metrics.json").read_bytes()
    proc = run_dlx(["sweep", "--resume", str(sweep)], cwd=old, check=0)
    assert (sweep / "0" / "metrics.json").read_bytes() == before  # finished: kept as it was
    assert read_metrics(sweep / "1")["status"] == "completed", proc.stdout[-2000:]
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and "model.width=8" in "".join(rows) and "model.width=16" in "".join(rows)
