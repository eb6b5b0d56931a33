"""Sweeps: after a Hydra multirun, rank the trials, print the table, write summary.csv.

`SweepSummary` is a Hydra callback (conf/config.yaml: hydra.callbacks), so it runs in the
launching process around every sweeper and launcher (grid, Optuna, joblib), reading each
trial's own folder: whatever ran where, the folders are the record.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from dlx.record import names
from dlx.record import status as st
from dlx.record.atomic import atomic_path
from dlx.record.metrics import read_metrics
from dlx.sweeps.groups import objective_direction, short_override

CSV_FIELDS = [
    "rank",
    "trial",
    "overrides",
    "status",
    "stopped_at",
    "task",
    "monitor",
    "best_val",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "test_mse",
    "epochs",
    "error",
    "folder",
]


def _status(m: dict[str, Any]) -> str:
    status = m.get("status")
    if status in st.FINAL or status == st.FAILED:
        return status
    return f"failed ({status})"  # diverged, interrupted: the trial did not give a result


def read_trial_metrics(folder: Path) -> dict[str, Any] | None:
    """A trial's metrics.json as a dict, or None (missing, half written, not an object)."""
    return read_metrics(folder)


def folder_state(folder: Path) -> str:
    """finished (a final metrics.json), resumable (a last.pt to continue from) or new."""
    m = read_trial_metrics(folder)
    if m is not None and m.get("status") not in (None, st.INTERRUPTED):
        return "finished"
    if names.last(folder).is_file():
        return "resumable"
    return "new"


def collect(sweep_dir: Path, since: float | None = None) -> list[dict[str, Any]]:
    """One row per trial folder (one with .hydra/overrides.yaml), in trial order.

    `since`: skip folders whose overrides predate it (an earlier sweep into the same dir).
    """
    rows = []
    for trial in sorted(sweep_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
        overrides_file = names.overrides(trial)
        if not overrides_file.is_file():
            continue
        if since is not None and overrides_file.stat().st_mtime < since:
            continue
        overrides = [str(o) for o in OmegaConf.load(overrides_file)]
        m = read_trial_metrics(trial)
        if m is None:
            m = {"status": st.FAILED, "error": "the trial left no readable metrics.json"}
        ok = m.get("status") in st.FINAL
        val, test = (m.get("val") or {}) if ok else {}, (m.get("test") or {}) if ok else {}
        stopped = m.get("status") in st.STOPPED
        rows.append(
            {
                "trial": trial.name,
                "overrides": " ".join(overrides),
                "params": overrides,
                "status": _status(m),
                "stopped_at": m.get("epochs_run") if stopped else None,
                "task": m.get("task") or _task_of(m),
                "monitor": m.get("monitor", ""),
                "best_val": m.get("best_value") if ok else None,
                "val_loss": val.get("loss"),
                "val_acc": val.get("acc"),
                "test_loss": test.get("loss"),
                "test_acc": test.get("acc"),
                "test_mse": test.get("mse"),
                "epochs": m.get("epochs_run"),
                "error": m.get("error") or "",
                "folder": str(trial),
            }
        )
    return rows


def _task_of(m: dict[str, Any]) -> str:
    """A metrics.json without `task` (older runs): classification when it has accuracies."""
    for part in (m.get("val"), m.get("test")):
        if isinstance(part, dict) and "acc" in part:
            return "classification"
        if isinstance(part, dict) and "mse" in part:
            return "regression"
    return ""


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Within each task (a sweep may mix classification and regression trials): successful
    trials first, best monitored value first (loss: lower, acc: higher), then pruned trials
    the same way, then failed ones. `rank` counts within the task."""

    def key(r: dict[str, Any]) -> tuple[str, int, float]:
        value = r["best_val"]
        if r["status"] not in st.FINAL or value is None or not math.isfinite(value):
            return (r["task"], 2, 0.0)
        sign = -1 if objective_direction(r["monitor"]) == "maximize" else 1
        return (r["task"], 0 if r["status"] in st.OK else 1, sign * value)

    known = list(dict.fromkeys(r["task"] for r in rows if r["task"]))

    def group(r: dict[str, Any]) -> int:  # a trial that crashed before saying its task
        return known.index(r["task"]) if r["task"] in known else 0

    ranked = sorted(rows, key=lambda r: (group(r), key(r)[1:]))
    counts: dict[int, int] = {}
    for r in ranked:
        counts[group(r)] = counts.get(group(r), 0) + 1
        r["rank"] = counts[group(r)]
    return ranked


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """summary.csv: one row per trial, ranked; a spreadsheet opens it as is."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:  # never via a link
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def write_groups(rows: list[dict[str, Any]], sweep_dir: Path) -> None:
    """groups.csv, when some configuration ran more than once (repeats, seeds, cv folds)."""
    from dlx.sweeps.groups import group, has_repeats, write_groups_csv

    if rows and has_repeats(rows):
        test_key = _test_column(rows)[1]
        write_groups_csv(group(rows, st.OK, test_key), test_key, sweep_dir / names.GROUPS_CSV)


def _status_cell(r: dict[str, Any]) -> str:
    if r["status"] == st.PRUNED and r["stopped_at"]:
        return f"pruned at epoch {r['stopped_at']}"
    return r["status"]


def _test_column(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """The test metric a table of one task shows: accuracy, or MSE for regression."""
    if any(r["test_acc"] is not None for r in rows):
        return "test acc", "test_acc"
    if any(r["test_mse"] is not None for r in rows):
        return "test mse", "test_mse"
    return "test loss", "test_loss"


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _shown(params: list[str]) -> list[str]:
    """What a table shows of a trial's overrides: not Hydra's internal ones."""
    return [p for p in params if not p.lstrip("+~").startswith(("hydra.", "hydra/"))]


def _trial_tables(rows: list[dict[str, Any]], common: list[str]) -> list:
    """One ranked table of trials per task; returns [(task label, best trial)]."""
    from rich.table import Table

    from dlx.record.text import safe_text as escape  # from disk: markup, control chars
    from dlx.tracking.console import console

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:  # rank() put each task's trials together, failures of unknown task first's
        groups.setdefault(r["task"] or next(iter(groups), ""), []).append(r)
    bests = []
    for task, members in groups.items():
        monitor = next((r["monitor"] for r in members if r["monitor"]), "val/loss")
        what = f"{len(members)} {task} trials" if len(groups) > 1 else f"{len(rows)} trials"
        table = Table(title=f"sweep: {what} ranked by {escape(monitor)}", title_justify="left")
        test_col, test_key = _test_column(members)
        for col in ("#", "trial", "overrides", "best val", test_col, "epochs", "status"):
            right = col not in ("trial", "overrides", "status")
            if col == "overrides":  # wraps rather than lose its end on a narrow terminal
                table.add_column(col, overflow="fold")
            else:
                table.add_column(col, justify="right" if right else "left", no_wrap=True)
        for r in members:
            shown = " ".join(short_override(p) for p in _shown(r["params"]) if p not in common)
            style = "red" if r["status"] not in st.FINAL else None
            style = "yellow" if r["status"] == st.PRUNED else style
            table.add_row(  # `reg=[l2,dropout]` is text, not rich markup
                str(r["rank"]),
                escape(r["trial"]),
                escape(shown),
                _f(r["best_val"]),
                _f(r[test_key]),
                _f(r["epochs"]),
                _status_cell(r),
                style=style,
            )
        console.print(table)
        best = next((r for r in members if r["status"] in st.OK), None)
        if best:
            bests.append((task if len(groups) > 1 else "", best))
    return bests


def _best_lines(bests: list) -> None:
    from dlx.record.text import safe_text as escape  # from disk: markup, control chars
    from dlx.sweeps.groups import print_reproduce
    from dlx.tracking.console import console

    for task, best in bests:
        label = f"best {task} trial" if task else "best trial"
        console.print(
            f"{label}: [bold]{escape(best['trial'])}[/] ({escape(best['monitor'])} = "
            f"{_f(best['best_val'])}) in {escape(str(best['folder']))}",
            soft_wrap=True,
        )
        print_reproduce(best["params"])


def print_table(rows: list[dict[str, Any]], sweep_dir: Path, notes: list[str] = ()) -> None:
    """One ranked table per task (classification and regression trials are not comparable):
    of configurations (mean ± std) when some ran more than once, else of trials; then the
    failures, the best and how to rerun it."""
    from dlx.record.text import safe_text as escape  # from disk: markup, control chars
    from dlx.sweeps.groups import has_repeats, print_best, print_groups
    from dlx.tracking.console import console

    # Show what differs between trials; what all of them share goes on one line below.
    shown = [_shown(r["params"]) for r in rows]
    common = [p for p in shown[0] if all(p in s for s in shown)] if len(rows) > 1 else []
    grouped = has_repeats(rows)
    if grouped:
        bests = print_groups(rows, common, _test_column(rows))
    else:
        bests = _trial_tables(rows, common)
    if common:
        console.print(f"every trial: {escape(' '.join(common))}", soft_wrap=not console.is_terminal)
    for r in rows:
        if r["status"] not in st.FINAL and r["error"]:
            console.print(
                f"[red]trial {escape(r['trial'])} {r['status']}:[/] {escape(str(r['error']))}",
                soft_wrap=True,
            )
    if grouped:
        print_best(bests)
    else:
        _best_lines(bests)
    if not bests:
        console.print("[red]no trial succeeded[/]")
    for note in notes:
        console.print(escape(note), soft_wrap=True)
    console.print(f"summary: {escape(str(sweep_dir / names.SUMMARY_CSV))}", soft_wrap=True)
    if grouped:
        console.print(f"groups: {escape(str(sweep_dir / names.GROUPS_CSV))}", soft_wrap=True)


class SweepSummary(Callback):
    """At the sweep's end: the ranked table and summary.csv (which `dlx sweep` reads back for
    its exit code: `read_rows`)."""

    def __init__(self) -> None:
        self.started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Runs before the sweeper is built: `direction: auto` follows early_stopping.monitor."""
        from dlx.sweeps.journal import hold_sweep_lock
        from dlx.sweeps.lines import remember_sweep

        remember_sweep(config.hydra.sweep.dir)  # for the Ctrl-C hint
        hold_sweep_lock(config.hydra.sweep.dir)  # one dlx per sweep folder (grid sweeps too)
        # Trials of an earlier sweep into the same folder are older than this one; the margin
        # covers coarse file times and the clocks of other machines (SLURM, Ray) writing there.
        # A resumed sweep's earlier trials are its own: all of them count.
        resumed = bool(OmegaConf.select(config, "hydra.sweeper.resume", default=False))
        self.started = None if resumed else time.time() - 60.0
        logging.getLogger("alembic").setLevel(logging.WARNING)  # Optuna's import chatter
        sweeper = config.hydra.sweeper
        if "direction" in sweeper and getattr(sweeper.direction, "name", sweeper.direction) == (
            "auto"
        ):
            with open_dict(config), read_write(config):
                sweeper.direction = objective_direction(config.early_stopping.monitor)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from dlx.sweeps.journal import release_sweep_lock

        sweep_dir = Path(config.hydra.sweep.dir)
        release_sweep_lock(sweep_dir)  # the trials are done (this process may go on)
        if not sweep_dir.is_dir():
            return
        rows = rank(collect(sweep_dir, since=self.started))
        write_csv(rows, sweep_dir / names.SUMMARY_CSV)
        write_groups(rows, sweep_dir)
        notes: list[str] = []
        if rows and _has_study(config):
            from dlx.sweeps.report import study_report

            notes = study_report(config, sweep_dir)
        if rows:
            print_table(rows, sweep_dir, notes)


def _has_study(config: DictConfig) -> bool:
    """dlx's sweeper kept an Optuna study for this sweep (Optuna search, or a pruned grid)."""
    sweeper = config.hydra.sweeper
    target = str(sweeper.get("_target_", ""))
    if not target.startswith("hydra_plugins.dlx_sweeper."):
        return False
    pruner = getattr(sweeper.get("pruner"), "name", sweeper.get("pruner"))
    return not sweeper.get("grid") or pruner not in (None, "none")


def read_rows(sweep_dir: Path) -> list[dict[str, str]]:
    """The ranked rows the sweep's end wrote to SWEEP_DIR/summary.csv ([]: none written)."""
    try:
        with open(Path(sweep_dir) / names.SUMMARY_CSV, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def exit_code(rows: list[dict[str, Any]]) -> int:
    """0 when any trial succeeded, 1 otherwise."""
    return 0 if any(r.get("status") in st.OK for r in rows) else 1
