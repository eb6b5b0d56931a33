"""`dlx runs [DIR]`: a table of past runs, read from their folders (nothing else is kept).

A run folder is one with `.hydra/config.yaml`: what it was (Hydra's group choices and the
command-line overrides, from `.hydra/`) and how it went (`metrics.json`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from dlx.errors import UserError
from dlx.sweep import short_override

# The group choices worth a column's space; the rest (device, hparams_search...) is noise here.
KEY_GROUPS = ("data", "model", "opt", "reg", "sched", "aug", "experiment")


def find_runs(directory: Path) -> list[Path]:
    """Every run folder under `directory` (itself included), oldest first (Hydra writes
    .hydra/config.yaml as a run starts; sweep trials interleave with single runs by time)."""
    found = {p.parent.parent for p in directory.rglob(".hydra/config.yaml")}
    return sorted(found, key=lambda p: ((p / ".hydra" / "config.yaml").stat().st_mtime, p.parts))


def _choices(run: Path, metrics: dict[str, Any]) -> dict[str, str]:
    hydra_yaml = run / ".hydra" / "hydra.yaml"
    if hydra_yaml.is_file():
        try:
            choices = OmegaConf.select(
                OmegaConf.load(hydra_yaml), "hydra.runtime.choices", default=None
            )
            if choices:
                return {k: str(v) for k, v in choices.items()}
        except Exception:  # an unreadable hydra.yaml: fall back to metrics.json
            pass
    return {k: str(v) for k, v in (metrics.get("choices") or {}).items()}


def _overrides(run: Path) -> list[str]:
    path = run / ".hydra" / "overrides.yaml"
    try:
        return [str(o) for o in OmegaConf.load(path) if not str(o).startswith("hydra.")]
    except Exception:
        return []


def describe(run: Path, root: Path) -> dict[str, Any]:
    """One row: what the run was and how it went."""
    metrics_file = run / "metrics.json"
    try:
        m = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    except (OSError, ValueError):
        m = {"status": "unreadable metrics.json"}
    status = m.get("status")
    if status is None:
        status = "running or killed" if (run / "checkpoints").is_dir() else "no metrics"
    choices = _choices(run, m)
    test = m.get("test") or {}
    return {
        "run": str(run.relative_to(root)) if run != root else run.name,
        "choices": " ".join(
            f"{g}={choices[g]}" for g in KEY_GROUPS if choices.get(g) not in (None, "None", "none")
        ),
        "overrides": " ".join(short_override(o) for o in _overrides(run)),
        "monitor": m.get("monitor"),
        "best_val": m.get("best_value"),
        "test": test.get("acc", test.get("loss")),
        "test_name": "acc" if "acc" in test else "loss" if "loss" in test else None,
        "epochs": m.get("epochs_run"),
        "status": status,
    }


def show_runs(directory: str | Path = "outputs") -> list[dict[str, Any]]:
    """Print the table of runs under `directory`; returns its rows."""
    from rich.table import Table

    from dlx.tracking.console import console

    root = Path(directory)
    if not root.is_dir():
        raise UserError(
            f"No folder {root.resolve()}. Runs land in ./outputs/ of the folder you "
            "trained from: dlx runs DIR names another one."
        )
    rows = [describe(run, root) for run in find_runs(root)]
    if not rows:
        console.print(
            f"No runs under {root.resolve()} yet (a run folder holds .hydra/config.yaml)."
        )
        return rows

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    from rich.markup import escape

    table = Table(title=escape(f"{len(rows)} runs under {root}"), title_justify="left")
    table.add_column("run", overflow="fold")  # text wraps on a narrow terminal, never "…"
    table.add_column("config", overflow="fold")  # group choices, then command-line overrides
    for col in ("best val", "test", "epochs", "status"):
        table.add_column(col, justify="left" if col == "status" else "right", no_wrap=True)
    colors = {"completed": "green", "stopped_early": "green", "diverged": "red", "failed": "red"}
    for r in rows:
        metric = str(r["monitor"] or "val/loss").split("/")[-1]
        best = f"{metric} {f(r['best_val'])}" if r["best_val"] is not None else "-"
        test = f"{r['test_name']} {f(r['test'])}" if r["test"] is not None else "-"
        shown = r["choices"].split()
        shown += [o for o in r["overrides"].split() if o not in shown]  # opt=sgd once, not twice
        color = colors.get(r["status"], "yellow")
        table.add_row(  # `reg=[l2,dropout]` is text, not rich markup
            escape(r["run"]),
            escape(" ".join(shown)),
            best,
            test,
            f(r["epochs"]),
            f"[{color}]{r['status']}[/]",
        )
    console.print(table)
    return rows
