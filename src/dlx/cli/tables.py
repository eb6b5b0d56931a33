"""`dlx runs`: its Typer command (the table itself is dlx.runs.table)."""

from __future__ import annotations

import typer

from dlx.errors import UserError


def runs(
    directory: str = typer.Argument("outputs", metavar="DIR", help="Where runs live."),
    sort: str | None = typer.Option(
        None,
        "--sort",
        metavar="KEY",
        help="A metric or config key: test.acc, val.loss, opt.lr, wall_time_s. Accuracies "
        "sort high first, the rest low first; -KEY or --desc/--asc to choose.",
    ),
    desc: bool | None = typer.Option(
        None, "--desc/--asc", show_default=False, help="Sort high first / low first."
    ),
    filters: list[str] | None = typer.Option(
        None,
        "--filter",
        metavar="KEY=VALUE",
        help="Keep runs where it holds, e.g. opt=adam, opt=adam,sgd, opt.lr<0.01, "
        "status=completed, test.acc>=0.9. Several --filter: all must hold.",
        show_default=False,
    ),
    last: int | None = typer.Option(
        None, "--last", metavar="N", help="Only the N most recent runs (after --filter)."
    ),
    sweep: str | None = typer.Option(
        None,
        "--sweep",
        metavar="SWEEP_DIR",
        help="Only this sweep's trials, with a column per key the sweep varied.",
    ),
    fmt: str = typer.Option(
        "table", "--format", help="table | csv | json (csv/json: one row per run, flat keys)."
    ),
    columns: str | None = typer.Option(
        None,
        "--columns",
        metavar="A,B,...",
        help="The columns to show, in order: run, config, best, test, epochs, status, or any "
        "config key or metric (opt.lr, test.acc).",
    ),
    wide: bool = typer.Option(
        False, "--wide", help="Every column, even if the table is wider than the terminal."
    ),
) -> None:
    """A table of past runs: name, key choices, best val metric, test metric, epochs, status."""
    try:
        from dlx.runs.table import show_runs

        show_runs(
            directory,
            sort=sort,
            descending=desc,
            filters=list(filters or []),
            last=last,
            sweep=sweep,
            fmt=fmt,
            columns=[c.strip() for c in columns.split(",") if c.strip()] if columns else None,
            wide=wide,
        )
    except UserError as exc:
        from dlx.tracking.console import error

        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
