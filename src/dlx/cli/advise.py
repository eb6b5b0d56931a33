"""`dlx advise RUN_DIR`: test the verdict's remedies as short probes (dlx.launch.advise)."""

from __future__ import annotations

import typer

from dlx.errors import EXIT_INTERRUPTED, UserError


def advise_command(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A finished run's folder."),
    epochs: int = typer.Option(5, "--epochs", min=1, help="Epochs per probe (at most)."),
    seconds: float = typer.Option(120.0, "--seconds", min=1.0, help="Time limit per probe."),
    candidates: int = typer.Option(4, "--candidates", min=1, help="Changes to try (at most)."),
    jobs: int | None = typer.Option(None, "--jobs", min=1, help="Probes at a time (cores)."),
) -> None:
    """Try the verdict's remedies as short probes from the run's seed; print those that
    helped, ranked, with their numbers (RUN_DIR/advice.json)."""
    from dlx.tracking.console import error

    try:
        from dlx.launch.advise import advise

        advise(run_dir, epochs=epochs, seconds=seconds, limit=candidates, jobs=jobs)
    except UserError as exc:
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
