"""The `dlx` command. Each command hands its overrides to Hydra (or reads a run folder),
and maps what happened to an exit code: 0 ok, 1 run failed, 2 bad input, 130 Ctrl-C.
Nothing heavy is imported at module level: `dlx --help` must answer without torch.
"""

from __future__ import annotations

import typer

from dlx.cli import advise, use
from dlx.cli.boundary import run_exit_code
from dlx.cli.compare import compare
from dlx.cli.completion import Group
from dlx.cli.help import GroupsHelp, refuse_flags, show_config, show_version
from dlx.cli.options import (
    OVERRIDES_HELP,
    TRUST_FLAG,
    TRUST_HELP,
    cfg_opt,
    config_dir_opt,
    info_opt,
    overrides_arg,
    package_opt,
    resolve_opt,
)
from dlx.cli.tables import runs
from dlx.errors import EXIT_INTERRUPTED, EXIT_OK, UserError

app = typer.Typer(
    name="dlx",
    help="Deep-learning experiments from the command line: train, sweep, evaluate, look.\n\n"
    "Examples:  dlx train model=cnn opt=adam  |  dlx sweep opt=adam,sgd opt.lr=0.1,0.01  |  "
    "dlx board",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, ...)
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    cls=Group,  # dlx's completion scripts: whole words, no space after `opt.lr=`
)

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


# help texts are rich markup: a bracket that is text is written \[
def _fail(exc: UserError) -> None:
    from dlx.tracking.console import error

    error(str(exc))
    raise typer.Exit(exc.exit_code)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=show_version,
        help="Show dlx's version (and Hydra's, torch's) and exit.",
    ),
) -> None:
    pass


def _run_sweep(overrides: list[str], config_dir: str | None, repeat: int | None = None) -> int:
    from dlx.launch.entry import sweep_once
    from dlx.sweeps.repeats import with_repeats
    from dlx.sweeps.summary import exit_code

    try:
        return exit_code(sweep_once(with_repeats(overrides, repeat), config_dir))
    except KeyboardInterrupt:
        from dlx.sweeps.lines import resume_hint

        resume_hint()
        raise


@app.command(context_settings=PASS_THROUGH, cls=GroupsHelp)
def train(
    ctx: typer.Context,
    overrides: list[str] | None = overrides_arg(),
    multirun: bool = typer.Option(
        False, "--multirun", "-m", help="Run a sweep (same as `dlx sweep`)."
    ),
    resume: str | None = typer.Option(
        None,
        "--resume",
        metavar="RUN_DIR",
        help="Continue an interrupted run from its checkpoints/last.pt.",
    ),
    config_dir: str | None = typer.Option(
        None,
        "--config-dir",
        metavar="DIR",
        help="Add your own config groups (Hydra search path). With --resume: the run's own "
        "--config-dir, whose targets may then be built again.",
    ),
    trust_config: bool = typer.Option(False, TRUST_FLAG, help="With --resume: " + TRUST_HELP),
    cfg: str | None = cfg_opt(),
    resolve: bool = resolve_opt(),
    package: str | None = package_opt(),
    info: str | None = info_opt(),
) -> None:
    """Train one run (outputs/DATE/TIME/): progress, checkpoints, metrics.json, TensorBoard."""
    overrides = list(overrides or [])
    try:
        refuse_flags(ctx, overrides)
        if cfg or resolve or package or info:
            raise typer.Exit(
                show_config(overrides, multirun, config_dir, cfg, resolve, package, info)
            )
        if resume is not None:  # `--resume ""` is an error, not a new run
            from dlx.launch.resume import resume as resume_run

            metrics = resume_run(resume, overrides, config_dir, trust_config)
            raise typer.Exit(run_exit_code(metrics))
        from dlx.sweeps.repeats import cv_folds

        if multirun or cv_folds(overrides):  # cv.folds=K: K runs, one a validation fold
            raise typer.Exit(_run_sweep(overrides, config_dir))
        from dlx.launch.entry import train_once

        metrics = train_once(overrides, config_dir)
        raise typer.Exit(run_exit_code(metrics))
    except UserError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


REPEAT_HELP = "Train each configuration N times (seeds BASE+0..N-1, one split): mean ± std."


@app.command(context_settings=PASS_THROUGH, cls=GroupsHelp)
def sweep(
    ctx: typer.Context,
    overrides: list[str] | None = overrides_arg(OVERRIDES_HELP + "; a,b,c sweeps a key."),
    config_dir: str | None = config_dir_opt(),
    cfg: str | None = cfg_opt(),
    resolve: bool = resolve_opt(),
    package: str | None = package_opt(),
    info: str | None = info_opt(),
    resume: str | None = typer.Option(
        None,
        "--resume",
        metavar="SWEEP_DIR",
        help="Continue a killed or interrupted sweep: finished trials kept, interrupted ones "
        "resumed from their last.pt, the rest run.",
    ),
    repeat: int | None = typer.Option(None, "--repeat", metavar="N", help=REPEAT_HELP),
) -> None:
    """A Hydra multirun: grid by default, hparams_search=optuna for TPE, hydra/launcher=joblib
    for parallel trials. Ends with a ranked table and summary.csv."""
    overrides = list(overrides or [])
    try:
        refuse_flags(ctx, overrides)
        if resume:
            if overrides:
                raise UserError(
                    f"`dlx sweep --resume {resume}` takes no overrides ({' '.join(overrides)}): "
                    "the sweep continues as it was started.",
                    key="--resume",
                )
            from dlx.sweeps.resume import resume_sweep
            from dlx.sweeps.summary import exit_code

            raise typer.Exit(exit_code(resume_sweep(resume, config_dir)))
        if cfg or resolve or package or info:
            raise typer.Exit(show_config(overrides, True, config_dir, cfg, resolve, package, info))
        raise typer.Exit(_run_sweep(overrides, config_dir, repeat))
    except UserError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


app.command("eval")(use.eval_)  # in cli/use.py with predict and export


@app.command()
def board(
    logdir: str = typer.Argument("outputs", metavar="LOGDIR", help="Folder of runs."),
    port: int = typer.Option(6006, "--port", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address (default: this machine only)."),
) -> None:
    """Start TensorBoard on 127.0.0.1 (Ctrl-C stops it)."""
    try:
        from dlx.cli.board import serve

        serve(logdir, port, host)
    except UserError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_OK) from None


@app.command("lr-find", context_settings=PASS_THROUGH, cls=GroupsHelp)
def lr_find(
    ctx: typer.Context,
    overrides: list[str] | None = overrides_arg(),
) -> None:
    """Learning-rate range test: loss vs lr, and a suggested opt.lr."""
    try:
        refuse_flags(ctx, list(overrides or []))
        from dlx.launch.lrfind import run_lr_find

        run_lr_find(list(overrides or []))
    except UserError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


app.command()(runs)  # cli/tables.py: `dlx runs`


app.command()(compare)  # dlx.cli.compare: runs side by side, or grouped (--group KEY)


@app.command(context_settings=PASS_THROUGH, cls=GroupsHelp)
def config(
    ctx: typer.Context,
    overrides: list[str] | None = overrides_arg(),
    config_dir: str | None = config_dir_opt(),
) -> None:
    """Print the composed config without running."""
    try:
        refuse_flags(ctx, list(overrides or []))
        from omegaconf import OmegaConf

        from dlx.config.compose import compose
        from dlx.config.rules import validate

        cfg = compose(list(overrides or []), config_dir)
        validate(cfg)
        typer.echo(OmegaConf.to_yaml(cfg))
    except UserError as exc:
        _fail(exc)


use.register(app)  # dlx predict, dlx export
app.command("advise")(advise.advise_command)


def main() -> None:
    """`dlx` for a Python caller: runs the command and raises SystemExit with its exit code."""
    try:
        app(prog_name="dlx")  # not "python -m dlx": the usage line, and _DLX_COMPLETE
    except Exception as exc:  # noqa: BLE001 (the one error boundary: no traceback reaches a user)
        from dlx.cli.boundary import boundary

        raise SystemExit(boundary(exc)) from None


def entry() -> None:
    """The `dlx` console script and `python -m dlx`: `main`, then the quick exit."""
    from dlx.cli.boundary import exit_fast, no_colour_in_logs

    no_colour_in_logs()
    try:
        main()
    except SystemExit as exc:
        exit_fast(exc.code)


if __name__ == "__main__":
    entry()
