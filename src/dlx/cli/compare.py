"""`dlx compare`: runs side by side, or (`--group KEY`) groups of runs with mean ± std and
whether their difference is within noise. Registered in `dlx.cli.app`."""

from __future__ import annotations

import typer

from dlx.errors import UserError


def compare(
    run_dirs: list[str] = typer.Argument(
        ..., metavar="RUN_A RUN_B [...]", help="Run folders (with --group: sweep folders too)."
    ),
    out: str = typer.Option(
        "compare.png", "--out", metavar="PNG", help="Where the figure of validation curves goes."
    ),
    figure: bool = typer.Option(True, "--figure/--no-figure", help="Write the figure."),
    group: str | None = typer.Option(
        None,
        "--group",
        metavar="KEY",
        help="Group the runs by a config key (e.g. opt.lr): mean ± std per group, and "
        "whether each is within noise of the best (Welch's t-test).",
    ),
) -> None:
    """The config keys that differ between runs, their metrics side by side, and their
    validation curves overlaid in one figure; or, with --group KEY, groups of runs."""
    try:
        if group:
            from dlx.runs.grouped import compare_groups

            compare_groups(group, run_dirs)
            return
        from dlx.runs.compare import compare as compare_runs

        compare_runs(run_dirs, out if figure else None)
    except UserError as exc:
        from dlx.tracking.console import error

        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
