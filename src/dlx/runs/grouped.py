"""`dlx compare --group KEY SWEEP_DIR [...]`: runs grouped by one config key, each group's
mean ± std of the monitored metric and the test metric, and whether its difference from the
best group is within noise. The statistics are the sweep table's (`dlx.sweeps.groups`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlx.errors import UserError
from dlx.runs.load import Run, load_runs
from dlx.runs.query import text
from dlx.sweeps.groups import (
    ALPHA,
    OK_STATUSES,
    TIE_NOTE,
    describe,
    mean_std,
    objective_direction,
    verdict_cell,
    welch_p,
)


def _runs(paths: list[str]) -> list[Run]:
    """Each argument: a run folder, or a folder of runs (a sweep) read whole."""
    runs: list[Run] = []
    for arg in paths:
        if not Path(arg).is_dir():
            raise UserError(f"{arg}: there is no such folder.", key="RUN")
        found = load_runs(Path(arg))
        if not found:
            raise UserError(
                f"{arg}: no dlx runs in it (a run folder has .hydra/config.yaml). Give a "
                "sweep folder (outputs/multirun/DATE/TIME) or run folders.",
                key="RUN",
            )
        runs += found
    return runs


def _value(run: Run, key: str) -> str | None:
    setup = {**run.config(), **run.choices}
    return text(setup[key]) if key in setup else None


def compare_groups(key: str, paths: list[str]) -> list[dict[str, Any]]:
    """Print the groups of `key` ranked by mean; return them (one dict a group)."""
    from rich.markup import escape
    from rich.table import Table

    from dlx.tracking.console import console

    runs = _runs(paths)
    by: dict[str, list[Run]] = {}
    for run in runs:
        value = _value(run, key)
        if value is not None:
            by.setdefault(value, []).append(run)
    if not by:
        raise UserError(
            f"`--group {key}`: no run has that config key. Give a key from the runs' config "
            "(e.g. opt.lr, model, batch_size; `dlx compare RUN_A RUN_B` lists what differs).",
            key="--group",
        )
    monitor = next((str(r.summary.get("monitor")) for r in runs if r.summary.get("monitor")), "")
    sign = -1 if objective_direction(monitor or "val/loss") == "maximize" else 1
    test_key = "test.acc" if any(r.flat().get("test.acc") is not None for r in runs) else None
    test_key = test_key or ("test.mse" if any(r.flat().get("test.mse") for r in runs) else "")
    test_key = test_key or "test.loss"
    groups = []
    for value, members in by.items():
        done = [r for r in members if r.status in OK_STATUSES]
        values = [float(v) for r in done if _num(v := r.summary.get("best_value"))]
        tests = [float(v) for r in done if _num(v := r.flat().get(test_key))]
        mean, std = mean_std(values)
        groups.append({"value": value, "runs": len(members), "values": values, "tests": tests})
        groups[-1].update(mean=mean, std=std)
    groups.sort(key=lambda g: (g["mean"] is None, sign * (g["mean"] or 0.0)))
    best = groups[0] if groups[0]["mean"] is not None else None
    table = Table(
        title=f"{len(runs)} runs grouped by {key}, ranked by mean {monitor or 'best value'}",
        title_justify="left",
    )
    for col in (key, "n", f"best val ({monitor})", test_key.replace(".", " "), "vs best"):
        table.add_column(escape(col), justify="left" if col in (key, "vs best") else "right")
    for g in groups:
        g["p"] = None if best is None or g is best else welch_p(best["values"], g["values"])
        g["tied"] = g["p"] is not None and g["p"] >= ALPHA
        g["best"] = g is best
        n = f"{len(g['values'])}" + (f" of {g['runs']}" if len(g["values"]) < g["runs"] else "")
        table.add_row(
            escape(g["value"]), n, describe(g["values"]), describe(g["tests"]), verdict_cell(g)
        )
    console.print(table)
    console.print(TIE_NOTE, soft_wrap=True)
    return groups


def _num(v: Any) -> bool:
    import math

    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
