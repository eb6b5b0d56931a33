"""Sweeps: after a Hydra multirun, rank the trials, print the table, write summary.csv.

`SweepSummary` is a Hydra callback (conf/config.yaml: hydra.callbacks), so it runs in the
launching process around every sweeper and launcher (grid, Optuna, joblib), reading each
trial's own folder: whatever ran where, the folders are the record.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shlex
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

_LAST: dict[str, Any] = {}

OK_STATUSES = ("completed", "stopped_early")
CSV_FIELDS = [
    "rank",
    "trial",
    "overrides",
    "status",
    "monitor",
    "best_val",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "epochs",
    "error",
    "folder",
]


def objective_direction(monitor: str) -> str:
    """What a sweeper does with the objective (the monitored validation metric)."""
    return "maximize" if str(monitor).endswith("acc") else "minimize"


def short_override(override: str) -> str:
    """`reg.dropout=0.043564649850770354` -> `reg.dropout=0.04356`: for tables, not for reuse."""
    key, sep, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    if not sep or "." not in value and "e" not in value.lower() or len(value) <= 8:
        return override
    return f"{key}={number:.4g}"


def _status(m: dict[str, Any]) -> str:
    status = m.get("status")
    if status in OK_STATUSES or status == "failed":
        return status
    return f"failed ({status})"  # diverged, interrupted: the trial did not give a result


def collect(sweep_dir: Path, since: float | None = None) -> list[dict[str, Any]]:
    """One row per trial folder (one with .hydra/overrides.yaml), in trial order.

    `since`: skip folders whose overrides predate it (an earlier sweep into the same dir).
    """
    rows = []
    for trial in sorted(sweep_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
        overrides_file = trial / ".hydra" / "overrides.yaml"
        if not overrides_file.is_file():
            continue
        if since is not None and overrides_file.stat().st_mtime < since:
            continue
        overrides = [str(o) for o in OmegaConf.load(overrides_file)]
        metrics_file = trial / "metrics.json"
        try:
            m = json.loads(metrics_file.read_text())
        except (OSError, ValueError):
            m = {"status": "failed", "error": "the trial left no readable metrics.json"}
        ok = m.get("status") in OK_STATUSES
        val, test = (m.get("val") or {}) if ok else {}, (m.get("test") or {}) if ok else {}
        rows.append(
            {
                "trial": trial.name,
                "overrides": " ".join(overrides),
                "params": overrides,
                "status": _status(m),
                "monitor": m.get("monitor", ""),
                "best_val": m.get("best_value") if ok else None,
                "val_loss": val.get("loss"),
                "val_acc": val.get("acc"),
                "test_loss": test.get("loss"),
                "test_acc": test.get("acc"),
                "epochs": m.get("epochs_run"),
                "error": m.get("error") or "",
                "folder": str(trial),
            }
        )
    return rows


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Successful trials first, best monitored value first (loss: lower, acc: higher)."""

    def key(r: dict[str, Any]) -> tuple[int, float]:
        if (
            r["status"] not in OK_STATUSES
            or r["best_val"] is None
            or not math.isfinite(r["best_val"])
        ):
            return (1, 0.0)
        sign = -1 if objective_direction(r["monitor"]) == "maximize" else 1
        return (0, sign * r["best_val"])

    ranked = sorted(rows, key=key)
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    return ranked


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """summary.csv: one row per trial, ranked; a spreadsheet opens it as is."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def reproduce_command(params: list[str]) -> str:
    """The `dlx train` line that reruns a trial (the search preset itself is not needed)."""
    keep = [
        p for p in params if not p.lstrip("+~").startswith(("hparams_search=", "hydra/", "hydra."))
    ]
    return "dlx train " + " ".join(shlex.quote(p) for p in keep)


def print_table(rows: list[dict[str, Any]], sweep_dir: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    from dlx.tracking.console import console

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    # Show what differs between trials; what all of them share goes on one line below.
    common = (
        [p for p in rows[0]["params"] if all(p in r["params"] for r in rows)]
        if len(rows) > 1
        else []
    )
    monitor = next((r["monitor"] for r in rows if r["monitor"]), "val/loss")
    table = Table(title=f"sweep: {len(rows)} trials ranked by {monitor}", title_justify="left")
    test_col = "test acc" if any(r["test_acc"] is not None for r in rows) else "test loss"
    for col in ("#", "trial", "overrides", "best val", test_col, "epochs", "status"):
        right = col not in ("trial", "overrides", "status")
        if col == "overrides":  # wraps rather than lose its end to an ellipsis on a narrow terminal
            table.add_column(col, overflow="fold")
        else:
            table.add_column(col, justify="right" if right else "left", no_wrap=True)
    for r in rows:
        test = r["test_acc"] if r["test_acc"] is not None else r["test_loss"]
        shown = " ".join(short_override(p) for p in r["params"] if p not in common)
        ok = r["status"] in OK_STATUSES
        table.add_row(  # `reg=[l2,dropout]` is text, not rich markup
            str(r["rank"]),
            escape(r["trial"]),
            escape(shown),
            f(r["best_val"]),
            f(test),
            f(r["epochs"]),
            r["status"],
            style=None if ok else "red",
        )
    console.print(table)
    if common:
        console.print(f"every trial: {escape(' '.join(common))}", soft_wrap=True)
    for r in rows:
        if r["status"] not in OK_STATUSES and r["error"]:
            console.print(
                f"[red]trial {escape(r['trial'])} {r['status']}:[/] {escape(str(r['error']))}",
                soft_wrap=True,
            )
    best = next((r for r in rows if r["status"] in OK_STATUSES), None)
    if best:
        console.print(
            f"best trial: [bold]{escape(best['trial'])}[/] ({best['monitor']} = "
            f"{f(best['best_val'])}) in {escape(str(best['folder']))}",
            soft_wrap=True,
        )
        console.print(
            f"reproduce it: [bold]{escape(reproduce_command(best['params']))}[/]", soft_wrap=True
        )
    else:
        console.print("[red]no trial succeeded[/]")
    console.print(f"summary: {escape(str(sweep_dir / 'summary.csv'))}", soft_wrap=True)


class SweepSummary(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Runs before the sweeper is built: `direction: auto` follows early_stopping.monitor."""
        _LAST.clear()
        # Trials of an earlier sweep into the same folder are older than this one; the margin
        # covers coarse file times and the clocks of other machines (SLURM, Ray) writing there.
        _LAST["started"] = time.time() - 60.0
        logging.getLogger("alembic").setLevel(logging.WARNING)  # Optuna's import chatter
        sweeper = config.hydra.sweeper
        if "direction" in sweeper and sweeper.direction == "auto":
            with open_dict(config), read_write(config):
                sweeper.direction = objective_direction(config.early_stopping.monitor)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = rank(collect(sweep_dir, since=_LAST.get("started")))
        write_csv(rows, sweep_dir / "summary.csv")
        if rows:
            print_table(rows, sweep_dir)
        _LAST.update(rows=rows, dir=sweep_dir)


def exit_code() -> int:
    """0 when any trial succeeded, 1 otherwise."""
    rows = _LAST.get("rows") or []
    return 0 if any(r["status"] in OK_STATUSES for r in rows) else 1
