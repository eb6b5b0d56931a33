"""`dlx predict` and `dlx export`: using what a run trained (the work is in `dlx.infer`).

Registered in `cli/app.py`; nothing heavy at module level (`dlx --help` needs no torch).
"""

from __future__ import annotations

import typer

from dlx.cli.options import TRUST_FLAG, TRUST_HELP
from dlx.errors import RunFailed, UserError

RUN_ARG = typer.Argument(..., metavar="RUN_DIR", help="A run folder (outputs/DATE/TIME).")


def _fail(exc: UserError | RunFailed) -> None:
    from dlx.tracking.console import error

    error(str(exc))
    raise typer.Exit(exc.exit_code)


def _config_dir():
    return typer.Option(
        None,
        "--config-dir",
        metavar="DIR",
        help="The --config-dir the run was trained with: its targets may be built again.",
    )


def _checkpoint():
    return typer.Option("best", "--checkpoint", help="best | last")


def _device():
    return typer.Option("auto", "--device", help="auto | cpu | cuda | mps")


def predict(
    run_dir: str = RUN_ARG,
    inputs: list[str] = typer.Argument(
        ...,
        metavar="INPUT...",
        help="Image files, folders (searched recursively), globs; .npy/.csv rows; numbers "
        "(data=function runs; `--` before a negative one).",
        show_default=False,
    ),
    checkpoint: str = _checkpoint(),
    top_k: int = typer.Option(1, "--top-k", metavar="K", help="Classes shown per input."),
    out: str | None = typer.Option(
        None, "--out", metavar="FILE", help="Write one row per input: FILE.csv or FILE.json."
    ),
    device: str = _device(),
    batch_size: int = typer.Option(256, "--batch-size", metavar="N", help="Inputs per batch."),
    config_dir: str | None = _config_dir(),
    trust_config: bool = typer.Option(False, TRUST_FLAG, help=TRUST_HELP),
) -> None:
    """Classify new images (or predict new values) with a run's model and its own preprocessing."""
    try:
        from dlx.infer.predict import run_predict

        run_predict(
            run_dir,
            inputs,
            checkpoint=checkpoint,
            top_k=top_k,
            out=out,
            device=device,
            batch_size=batch_size,
            config_dir=config_dir,
            trust_config=trust_config,
        )
    except UserError as exc:
        _fail(exc)


def export(
    run_dir: str = RUN_ARG,
    fmt: str = typer.Option(..., "--format", help="torchscript | onnx (onnx: the export extra)"),
    checkpoint: str = _checkpoint(),
    out: str | None = typer.Option(
        None,
        "--out",
        metavar="PATH",
        help="Where to write it (default RUN_DIR/export/CHECKPOINT.onnx|.torchscript.pt); "
        "the metadata goes next to it as .json.",
    ),
    config_dir: str | None = _config_dir(),
    trust_config: bool = typer.Option(False, TRUST_FLAG, help=TRUST_HELP),
) -> None:
    """Export a run's model (TorchScript or ONNX) with its preprocessing metadata, checked
    against PyTorch on the run's own test inputs."""
    try:
        from dlx.infer.export import run_export

        run_export(run_dir, fmt, checkpoint, out, config_dir, trust_config)
    except (UserError, RunFailed) as exc:
        _fail(exc)


def eval_(
    run_dir: str = RUN_ARG,
    checkpoint: str | None = typer.Option(
        None, "--checkpoint", show_default=False, help="best | last (default: what its test used)"
    ),
    split: str | None = typer.Option(
        None,
        "--split",
        show_default=False,
        help="test | val (default test); with --data-root also all (the default there)",
    ),
    device: str | None = typer.Option(
        None,
        "--device",
        show_default=False,
        help="auto | cpu | cuda | mps (default: the run's own device)",
    ),
    data_root: str | None = typer.Option(
        None,
        "--data-root",
        metavar="DIR",
        help="Evaluate on another image folder with the same classes (a new test set, or "
        "the training folder moved).",
    ),
    config_dir: str | None = _config_dir(),
    trust_config: bool = typer.Option(False, TRUST_FLAG, help=TRUST_HELP),
) -> None:
    """Reload a run's own config and checkpoint; print metrics and what the model gets wrong
    (per class, confused pairs, top losses, Grad-CAM: PNGs in the run folder), write eval.json."""
    try:
        from dlx.runs.evaluate import run_eval

        run_eval(
            run_dir,
            checkpoint=checkpoint,
            split=split,
            device=device,
            config_dir=config_dir,
            trust_config=trust_config,
            data_root=data_root,
        )
    except UserError as exc:
        _fail(exc)


def register(app: typer.Typer) -> None:
    app.command()(predict)
    app.command()(export)
