"""`dlx runs [DIR]`: the table of past runs (or csv/json rows for pandas), read from their
folders by `dlx.runs.load`: filtered, the last N, sorted."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dlx.errors import UserError
from dlx.record import names
from dlx.record import status as st
from dlx.runs.fit import Column, fit, table_width
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
    columns: list[str] | None = None,
    wide: bool = False,
) -> list[Run]:
    """Print the runs under `directory` (a table, csv or json); returns them. The table fits
    the terminal (columns by priority, the rest named in a note) unless `wide`; `columns`
    names the columns to show, in order (a config key or metric makes a column of its own)."""
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
        view = View(extra, key, desc, filters or [], columns or [], wide)
        print_table(runs, root, view)
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


def _config_text(r: Run, skip: set[str] = frozenset()) -> str:
    """The group choices that matter, then the command-line overrides not already said
    (`skip`: keys that have a column of their own)."""
    choices = r.choices
    shown = [
        f"{g}={choices[g]}"
        for g in KEY_GROUPS
        if choices.get(g) not in (None, "None", "none") and g not in skip
    ]
    shown += [
        o
        for o in (short_override(o) for o in r.overrides)
        if o not in shown and o.lstrip("+~").partition("=")[0] not in {*skip, "name"}
    ]
    return " ".join(shown)


@dataclass
class View:
    """How the table is asked for: the extra key columns, the sort, what to show."""

    extra: list[str] = field(default_factory=list)
    key: str | None = None
    desc: bool = False
    filters: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    wide: bool = False


def print_table(runs: list[Run], root: Path, view: View) -> None:
    from rich.markup import escape
    from rich.table import Table

    from dlx.tracking.console import console

    if not runs:
        why = f" matching {' '.join(view.filters)}" if view.filters else ""
        console.print(
            escape(f"No runs{why} under {root.resolve()} (a run folder holds .hydra/config.yaml).")
        )
        return
    damaged = sum(r.status == st.DAMAGED for r in runs)
    title = f"{len(runs)} run{'s' * (len(runs) != 1)} under {root}"
    title += f" ({damaged} damaged)" if damaged else ""
    if view.key:
        title += f", by {view.key} ({'high' if view.desc else 'low'} first)"
    columns = _columns(runs, view)
    if len(runs) > RICH_ROWS:  # plain aligned rows: a cell never wraps, the config neither
        for c in columns:
            c.wrap = False
    cols, dropped = fit(columns, console.width, view.wide)
    statuses = [r.status for r in runs]
    if len(runs) > RICH_ROWS:
        _writeprintable(console, title, cols, statuses)
    else:
        table = Table(title=escape(title), title_justify="left")
        for c in cols:
            table.add_column(
                escape(c.header),
                justify=c.justify,  # type: ignore[arg-type]
                no_wrap=not c.wrap,
                overflow="fold",
                min_width=c.words() if c.wrap else None,
            )
        for i, status in enumerate(statuses):
            row = [escape(c.shown[i]) for c in cols]
            if cols[-1].header == "status":
                row[-1] = f"[{COLORS.get(status, 'yellow')}]{row[-1]}[/]"
            table.add_row(*row)
        if view.wide:  # as wide as it is: the terminal wraps it, as was asked
            from rich.console import Console

            natural = table_width([c.natural() for c in cols])
            Console(
                file=console.file,
                width=max(console.width, natural),
                force_terminal=console.is_terminal,
                color_system=console.color_system,  # type: ignore[arg-type]
                no_color=console.no_color,
                highlight=False,
            ).print(table)
        else:
            console.print(table)
    if dropped:
        console.print(
            escape(
                f"(left out to fit {console.width} columns: {', '.join(dropped)}; "
                "--wide shows all, --columns picks)"
            ),
            style="dim",
        )


# The table's own columns (`--columns` names them; any other name is a key or a metric).
_NAMES = {"run": "run", "config": "config", "best": "best val", "bestval": "best val",
          "test": "test", "epochs": "epochs", "status": "status"}  # fmt: skip


def _columns(runs: list[Run], view: View) -> list[Column]:
    """Every column, by priority: status, the swept keys, the metric, the run (shortened
    from the left), test, epochs, then the config (choices and overrides: it wraps)."""
    extra = view.extra
    wanted = [_NAMES.get(c.replace(" ", "").replace("_", "").lower(), c) for c in view.columns]
    if wanted:  # asked for by name, in that order
        extra = [c for c in wanted if c not in _NAMES.values()]
    cells = [_cells(r, extra) for r in runs]
    col = {n: [c[n] for c in cells] for n in ("run", "config", "best val", "test", "epochs")}
    col["status"] = [c["status"] for c in cells]
    out = {
        "run": Column("run", col["run"], 1, path=True),
        "config": Column("config", col["config"], 6, wrap=True),
        "best val": Column("best val", col["best val"], 2, justify="right"),
        "test": Column("test", col["test"], 3, justify="right"),
        "epochs": Column("epochs", col["epochs"], 5, justify="right"),
        "status": Column("status", col["status"], 0),
    }
    for i, k in enumerate(extra):
        out[k] = Column(k, [c["extra"][i] for c in cells], 1, justify="right")
    if wanted:  # what was asked for stays: shortened, never left out
        chosen = [out[c] for c in dict.fromkeys(wanted)]
        for c in chosen:
            c.priority = 0
        return chosen
    order = ["run", "config", *extra, "best val", "test", "epochs", "status"]
    return [out[k] for k in order]


def _cells(r: Run, extra: list[str]) -> dict:
    """The row's cells as plain text, by column."""
    s = r.summary if not r.problem else {}
    best = s.get("best_value")
    metric = str(s.get("monitor") or "val/loss").split("/")[-1]
    test = s.get("test") or {}
    # Each figure says what it is: a regression run's MSE never reads as an accuracy.
    name = next((n for n in ("acc", "mse", "loss") if is_number(test.get(n))), "")
    status = r.status if not r.problem else f"damaged: {r.problem}"
    return {
        "run": printable(r.name),
        "config": printable(_config_text(r, set(extra))),
        "extra": [cell(lookup(r, k)[0]) for k in extra],
        "best val": f"{metric} {cell(best)}" if is_number(best) else "-",
        "test": f"{name} {cell(test[name])}" if name else "-",
        "epochs": cell(s.get("epochs_run")),
        "status": printable(status),
    }


def _writeprintable(console, title: str, cols: list[Column], statuses: list[str]) -> None:
    """Many rows: aligned columns written in one go (rich lays out a table at ~1 ms a row,
    10 s for 10,000 runs); the status keeps its colour on a terminal."""
    widths = [c.natural() for c in cols]
    ansi = {"green": "32", "red": "31", "cyan": "36", "yellow": "33"}
    color = console.is_terminal and not console.no_color and console.color_system is not None

    def line(cells: list[str], status: str | None = None) -> str:
        out = [
            c.ljust(w) if col.justify == "left" else c.rjust(w)
            for c, w, col in zip(cells, widths, cols, strict=True)
        ]
        if color and status is not None and cols[-1].header == "status":
            out[-1] = f"\x1b[{ansi[COLORS.get(status, 'yellow')]}m{out[-1].rstrip()}\x1b[0m"
        return "  ".join(out).rstrip()

    text = [title, line([c.header for c in cols]), "  ".join("-" * w for w in widths)]
    text += [line([c.shown[i] for c in cols], s) for i, s in enumerate(statuses)]
    console.file.write("\n".join(text) + "\n")
    console.file.flush()
