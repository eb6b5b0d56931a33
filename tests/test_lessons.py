"""Each lecture preset shows its lesson, on every one of 3 seeds (short runs: the lesson shows
in the first epochs; the presets' own epochs are for looking at the curves)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from conftest import FAST

SEEDS = (0, 1, 2)


def best_val(run_dir: Path, *overrides: str) -> dict:
    """`dlx train OVERRIDES` in this process: its metrics, with `best` the lowest val loss."""
    import dlx

    with contextlib.redirect_stdout(io.StringIO()):
        m = dlx.train([*overrides, f"hydra.run.dir={run_dir}", *FAST])
    losses = [h["val"]["loss"] for h in m.get("history") or []]
    m["best"] = min(losses) if losses else float("inf")
    return m


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_regularized_beats_overfitting_on_val_loss(tmp_path, seed):
    over = best_val(tmp_path / "o", "experiment=overfitting", f"seed={seed}")
    reg = best_val(tmp_path / "r", "experiment=regularized", f"seed={seed}")
    assert reg["best"] < over["best"], (reg["best"], over["best"])


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_lr_too_high_bounces_or_diverges_and_lr_too_low_crawls(tmp_path, seed):
    high = best_val(tmp_path / "h", "experiment=lr_too_high", "epochs=4", f"seed={seed}")
    d = high["diagnosis"]
    assert high["status"] == "diverged" or d["cause"] == "lr too large", d["evidence"]
    low = best_val(tmp_path / "l", "experiment=lr_too_low", "epochs=4", f"seed={seed}")
    n = low["diagnosis"]["numbers"]
    assert n["falling_share"] == 1 and n["progress"] < 0.5, "falls every epoch, slowly"
    sensible = best_val(
        tmp_path / "s", "experiment=lr_too_low", "epochs=4", "opt.lr=0.1", f"seed={seed}"
    )
    assert sensible["best"] < 0.5 * low["best"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_naive_init_is_worse_than_the_same_net_with_he(tmp_path, seed):
    naive = best_val(tmp_path / "n", "experiment=naive_init", "epochs=3", f"seed={seed}")
    he = best_val(
        tmp_path / "h", "experiment=naive_init", "epochs=3", "model.init=he", f"seed={seed}"
    )
    assert he["best"] < naive["best"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_underfitting_gains_from_capacity(tmp_path, seed):
    small = best_val(tmp_path / "s", "experiment=underfitting", "epochs=10", f"seed={seed}")
    wide = best_val(
        tmp_path / "w", "experiment=underfitting", "epochs=10", "model.width=64", f"seed={seed}"
    )
    assert wide["best"] < 0.5 * small["best"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_universal_approximation_reaches_mse_1e_3(tmp_path, seed):
    m = best_val(tmp_path / "u", "experiment=universal_approximation", "epochs=120", f"seed={seed}")
    assert m["best"] <= 1e-3, m["best"]
