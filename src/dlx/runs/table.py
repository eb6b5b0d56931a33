"""`dlx runs [DIR]`: the table of past runs (or csv/json rows for pandas), read from their
folders by `dlx.runs.load`: filtered, the last N, sorted."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from dlx.errors import UserError
from dlx.record import names
from dlx.record import status as st
from dlx.runs.load import Run, load_runs
from dlx.runs.query import (
    apply_filters,
    cell,
    is_number,
    lookup,
    parse_filter,
    printable,
    sort_runs,
)

# The group choices worth a column's space; the rest (device, hparams_search...) is noise here.
KEY_GROUPS = ("data", "model", "opt", "reg", "sched", "aug", "experiment")
FORMATS = ("table", "csv", "json")
RICH_ROWS = 150  # more rows than this: a plain aligned table (rich's layout is ~1 ms a row)
COLORS = {**dict.fromkeys(st.OK, "green"), st.RUNNING: "cyan"}
COLORS.update(dict.fromkeys((st.DIVERGED, st.FAILED, st.DAMAGED), "red"))
# What the table shows anyway: sorting by these adds no column.
_SHOWN = {"run", "status", "best_value", "epochs_run", "test.acc", "test.loss", "test.mse"}
# csv/json: these columns first, then whatever the runs have (metrics, choices, config).
_FIRST = ["run", "status", "problem", "task", "monitor", "best_value", "best_epoch",
          "epochs_run", "val.loss", "val.acc", "test.loss", "test.acc", "test.mse",
          "wall_time_s", *KEY_GROUPS, "overrides"]  # fmt: skip


def sweep_folder(sweep: str, directory: str) -> Path:
    path = Path(sweep)
    if not path.is_dir() and not path.is_absolute() and (Path(directory) / sweep).is_dir():
        path = Path(directory) / sweep
    if not path.is_dir():
        raise UserError(f"--sweep {sweep}: there is no such folder.", key="--sweep")
    if not (path / names.MULTIRUN).is_file() and not any(
        names.is_run_folder(p) for p in path.iterdir() if p.is_dir()
    ):
        raise UserError(
            f"--sweep {sweep}: not a sweep folder (no multirun.yaml, no trial folders). "
            "Sweeps land in outputs/multirun/DATE/TIME.",
            key="--sweep",
        )
    return path


def select(
    directory: str | Path,
    *,
    sort: str | None = None,
    descending: bool | None = None,
    filters: list[str] | None = None,
    last: int | None = None,
) -> tuple[list[Run], str | None, bool]:
    """The runs under `directory` that pass the filters, the `last` N of them, sorted."""
    root = Path(directory)
    if not root.is_dir():
        raise UserError(
            f"No folder {root.resolve()}. Runs land in ./outputs/ of the folder you "
            "trained from: dlx runs DIR names another one."
        )
    if last is not None and last < 1:
        raise UserError(f"--last {last}: give a number of runs, 1 or more.", key="--last")
    parsed = [parse_filter(f) for f in filters or []]
    runs = apply_filters(load_runs(root), parsed)
    if last is not None:
        runs = runs[-last:]  # the most recent N that match
    key = None
    if sort:
        runs, key, descending = sort_runs(runs, sort, descending)
    return runs, key, bool(descending)


def varying_keys(runs: list[Run]) -> list[str]:
    """The config keys (and group choices) whose value is not the same in every run."""
    from dlx.runs.compare import differing_runs

    return differing_runs(runs)[1]


def show_runs(
    directory: str | Path = "outputs",
    *,
    sort: str | None = None,
    descending: bool | None = None,
    filters: list[str] | None = None,
    last: int | None = None,
    sweep: str | None = None,
    fmt: str = "table",
) -> list[Run]:
    """Print the runs under `directory` (a table, csv or json); returns them."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: use one of {', '.join(FORMATS)}.", key="--format")
    root = sweep_folder(sweep, str(directory)) if sweep else Path(directory)
    runs, key, desc = select(root, sort=sort, descending=descending, filters=filters, last=last)
    if fmt == "json":
        sys.stdout.write(json.dumps([r.flat(with_config=True) for r in runs], default=str) + "\n")
    elif fmt == "csv":
        write_csv(runs)
    else:
        extra = varying_keys(runs) if sweep else []
        if key and key not in _SHOWN and key not in extra:
            extra.append(key)
        print_table(runs, root, extra, key, desc, filters or [])
    return runs


def write_csv(runs: list[Run]) -> None:
    rows = [r.flat(with_config=True) for r in runs]
    fields = [k for k in _FIRST if any(k in row for row in rows)]
    seen = set(fields) | {"path"}
    for row in rows:
        for k in row:
            if k not in seen:
                seen.add(k)
                fields.append(k)
    fields.append("path")
    w = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow(
            {
                k: ("" if v is None else json.dumps(v) if isinstance(v, (list, dict)) else v)
                for k, v in row.items()
            }
        )


def short_override(override: str) -> str:
    """`reg.dropout=0.043564649850770354` -> `reg.dropout=0.04356` (dlx.sweeps.summary's rule; that
    module imports Hydra, 0.15 s that `dlx runs` does not need)."""
    key, sep, value = override.partition("=")
    if not sep or len(value) <= 8 or ("." not in value and "e" not in value.lower()):
        return override
    try:
        return f"{key}={float(value):.4g}"
    except ValueError:
        return override


def _config_text(r: Run) -> str:
    """The group choices that matter, then the command-line overrides not already said."""
    choices = r.choices
    shown = [
        f"{g}={choices[g]}" for g in KEY_GROUPS if choices.get(g) not in (None, "None", "none")
    ]
    shown += [o for o in (short_override(o) for o in r.overrides) if o not in shown]
    return " ".join(shown)


def print_table(
    runs: list[Run], root: Path, extra: list[str], key: str | None, desc: bool, filters: list[str]
) -> None:
    from rich.markup import escape
    from rich.table import Table

    from dlx.tracking.console import console

    if not runs:
        why = f" matching {' '.join(filters)}" if filters else ""
        console.print(
            escape(f"No runs{why} under {root.resolve()} (a run folder holds .hydra/config.yaml).")
        )
        return
    damaged = sum(r.status == st.DAMAGED for r in runs)
    title = f"{len(runs)} run{'s' * (len(runs) != 1)} under {root}"
    title += f" ({damaged} damaged)" if damaged else ""
    if key:
        title += f", by {key} ({'high' if desc else 'low'} first)"
    headers = ["run", "config", *extra, "best val", "test", "epochs", "status"]
    rows = [_cells(r, extra) for r in runs]
    if len(rows) > RICH_ROWS:
        _writeprintable(console, title, headers, rows)
        return
    table = Table(title=escape(title), title_justify="left")
    table.add_column("run", overflow="fold")  # text wraps on a narrow terminal, never "…"
    table.add_column("config", overflow="fold")  # group choices, then command-line overrides
    for col in extra:
        table.add_column(escape(col), justify="right", overflow="fold")
    for col in ("best val", "test", "epochs", "status"):
        right = col != "status"
        table.add_column(col, justify="right" if right else "left", no_wrap=right)
    for cells, status in rows:
        table.add_row(
            *(escape(c) for c in cells[:-1]),
            f"[{COLORS.get(status, 'yellow')}]{escape(cells[-1])}[/]",
        )
    console.print(table)


def _cells(r: Run, extra: list[str]) -> tuple[list[str], str]:
    """The row's cells as plain text (the status cell last), and its status."""
    s = r.summary if not r.problem else {}
    best = s.get("best_value")
    metric = str(s.get("monitor") or "val/loss").split("/")[-1]
    test = s.get("test") or {}
    # Each figure says what it is: a regression run's MSE never reads as an accuracy.
    name = next((n for n in ("acc", "mse", "loss") if is_number(test.get(n))), "")
    status = r.status if not r.problem else f"damaged: {r.problem}"
    cells = [
        printable(r.name),
        printable(_config_text(r)),
        *(cell(lookup(r, k)[0]) for k in extra),
        f"{metric} {cell(best)}" if is_number(best) else "-",
        f"{name} {cell(test[name])}" if name else "-",
        cell(s.get("epochs_run")),
        printable(status),
    ]
    return cells, r.status


def _writeprintable(console, title: str, headers: list[str], rows) -> None:
    """Many rows: aligned columns written in one go (rich lays out a table at ~1 ms a row,
    10 s for 10,000 runs); the status keeps its colour on a terminal."""
    widths = [max(len(h), *(len(c[i]) for c, _ in rows)) for i, h in enumerate(headers)]
    left = {0, 1, len(headers) - 1}
    ansi = {"green": "32", "red": "31", "cyan": "36", "yellow": "33"}
    color = console.is_terminal and not console.no_color and console.color_system is not None

    def line(cells: list[str], status: str | None = None) -> str:
        out = [
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        if color and status is not None:
            out[-1] = f"\x1b[{ansi[COLORS.get(status, 'yellow')]}m{out[-1].rstrip()}\x1b[0m"
        return "  ".join(out).rstrip()

    text = [title, line(headers), "  ".join("-" * w for w in widths)]
    text += [line(cells, status) for cells, status in rows]
    console.file.write("\n".join(text) + "\n")
    console.file.flush()
