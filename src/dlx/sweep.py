"""Sweeps: after a Hydra multirun, rank the trials, print the table, write summary.csv.

`SweepSummary` is a Hydra callback (conf/config.yaml: hydra.callbacks), so it runs in the
launching process after every sweeper and launcher, reading each trial's own folder.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

_LAST: dict[str, Any] = {}

OK_STATUSES = ("completed", "stopped_early")


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per trial folder (a folder with .hydra/overrides.yaml)."""
    rows = []
    for trial in sorted(sweep_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
        overrides_file = trial / ".hydra" / "overrides.yaml"
        if not overrides_file.is_file():
            continue
        overrides = [str(o) for o in OmegaConf.load(overrides_file)]
        metrics_file = trial / "metrics.json"
        m = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {"status": "failed",
                                                                                "error": "no metrics.json"}
        ok = m.get("status") in OK_STATUSES
        rows.append({
            "trial": trial.name,
            "overrides": " ".join(overrides),
            "status": m.get("status") if ok else f"failed ({m.get('status')})" if m.get("status") != "failed"
            else "failed",
            "monitor": m.get("monitor", ""),
            "best_val": m.get("best_value") if ok else None,
            "val_loss": (m.get("val") or {}).get("loss") if ok else None,
            "val_acc": (m.get("val") or {}).get("acc") if ok else None,
            "test_loss": (m.get("test") or {}).get("loss") if ok else None,
            "test_acc": (m.get("test") or {}).get("acc") if ok else None,
            "epochs": m.get("epochs_run"),
            "error": m.get("error") or "",
            "folder": str(trial),
        })
    return rows


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Successful trials first, best monitored value first (loss: lower, acc: higher)."""
    def key(r):
        if r["best_val"] is None or not math.isfinite(r["best_val"]):
            return (1, 0.0)
        sign = -1 if str(r["monitor"]).endswith("acc") else 1
        return (0, sign * r["best_val"])

    ranked = sorted(rows, key=key)
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    return ranked


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    fields = ["rank", "trial", "overrides", "status", "monitor", "best_val", "val_loss", "val_acc",
              "test_loss", "test_acc", "epochs", "error", "folder"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def print_table(rows: list[dict[str, Any]], sweep_dir: Path) -> None:
    from rich.table import Table

    from dlx.tracking.console import console

    def f(v):
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    table = Table(title=f"sweep: {len(rows)} trials ranked by {rows[0]['monitor'] if rows else ''}",
                  title_justify="left")
    for col in ("rank", "trial", "overrides", "best val", "test", "epochs", "status"):
        table.add_column(col, justify="right" if col in ("rank", "best val", "test", "epochs") else "left")
    for r in rows:
        test = r["test_acc"] if r["test_acc"] is not None else r["test_loss"]
        style = None if r["status"] in OK_STATUSES else "red"
        table.add_row(str(r["rank"]), r["trial"], r["overrides"], f(r["best_val"]), f(test), f(r["epochs"]),
                      r["status"], style=style)
    console.print(table)
    best = next((r for r in rows if r["status"] in OK_STATUSES), None)
    if best:
        console.print(f"best trial: [bold]{best['trial']}[/]  overrides: [bold]{best['overrides']}[/]")
        console.print(f"reproduce it: dlx train {best['overrides']}")
    console.print(f"summary: {sweep_dir / 'summary.csv'}")


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = rank(collect(sweep_dir))
        write_csv(rows, sweep_dir / "summary.csv")
        print_table(rows, sweep_dir)
        _LAST.update(rows=rows, dir=sweep_dir)


def exit_code() -> int:
    """0 when any trial succeeded, 1 otherwise."""
    rows = _LAST.get("rows") or []
    return 0 if any(r["status"] in OK_STATUSES for r in rows) else 1
