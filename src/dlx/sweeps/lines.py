"""A sweep that reads well in a terminal: one line per trial as it finishes.

Inside a sweep each trial's console output (the model table, the epoch lines, the summary
box and its advice) goes to the trial's own train.log only; when the trial ends it prints one
line: the trial, its swept values, its status, the monitored value, its time and the best so
far (read from the finished trial folders next to it, so it holds for trials in joblib
workers, Ray tasks or SLURM jobs too). No progress bar is drawn: parallel trials never draw
over each other. `hydra.verbose=true` keeps a trial's own output on the terminal.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any

from dlx.record import names
from dlx.record import status as st
from dlx.sweeps.groups import objective_direction, override_key, short_override


def _fixed(sweep_dir: Path) -> set[str]:
    """The keys the sweep gave one value (no sweep syntax): every trial has it, no column."""
    from dlx.record.read import load_yaml

    try:
        tree = load_yaml(sweep_dir / names.MULTIRUN, omegaconf=False)
        given = [str(o) for o in tree["hydra"]["overrides"]["task"]]
    except Exception:  # no multirun.yaml (yet): show every override
        return set()
    return {override_key(o) for o in given if not any(c in o.partition("=")[2] for c in ",()")}


def swept_values(overrides: list[str], sweep_dir: Path) -> str:
    """What sets this trial apart: its overrides without the fixed ones and dlx's own."""
    fixed = _fixed(sweep_dir)
    keep = [
        short_override(o)
        for o in overrides
        if override_key(o) not in fixed
        and override_key(o) != "data.seed"
        and not override_key(o).startswith(("hydra.", "hydra/"))
    ]
    return " ".join(keep) or "(base config)"


def _value(m: dict[str, Any]) -> float | None:
    v = m.get("best_value")
    try:
        return float(v) if v is not None and math.isfinite(float(v)) else None
    except (TypeError, ValueError):
        return None


def best_so_far(sweep_dir: Path) -> tuple[str, float, str] | None:
    """(trial, value, monitor) of the best finished trial in the sweep folder so far."""
    from dlx.record.metrics import read_metrics as read_trial_metrics

    best = None
    for folder in sweep_dir.iterdir() if sweep_dir.is_dir() else ():
        if not folder.name.isdigit():
            continue
        m = read_trial_metrics(folder) or {}
        value = _value(m)
        if m.get("status") not in st.OK or value is None:
            continue
        monitor = str(m.get("monitor") or "val/loss")
        sign = -1 if objective_direction(monitor) == "maximize" else 1
        if best is None or sign * value < sign * best[1]:
            best = (folder.name, value, monitor)
    return best


def trial_line(
    run_dir: Path, overrides: list[str], seconds: float, width: int | None = None
) -> str:
    """`trial 3  opt.lr=0.001  completed  val/loss 0.1234  12.3 s  | best so far 0.1100 (1)`;
    narrower than `width` where it can be (`| best 0.11 (#1)`), so a terminal does not wrap it."""
    from dlx.record.metrics import read_metrics as read_trial_metrics

    m = read_trial_metrics(run_dir) or {}
    status = str(m.get("status") or st.FAILED)
    if status == st.PRUNED and m.get("epochs_run"):
        status = f"pruned at epoch {m['epochs_run']}"
    value = _value(m)
    shown = f"{value:.4g}" if value is not None else "-"
    said = f"{m.get('monitor') or 'val/loss'} {shown}" if value is not None else "-"
    swept = swept_values(overrides, run_dir.parent)
    best = best_so_far(run_dir.parent)
    forms = [  # the whole line, then the compact one for a narrow terminal
        f"trial {run_dir.name}  {swept}  {status}  {said}  {seconds:.1f} s",
        f"#{run_dir.name} {swept} {status} {shown} {seconds:.1f}s",
    ]
    if best is not None:
        forms[0] += f"  | best so far {best[1]:.4g} (trial {best[0]})"
        forms[1] += f" | best {best[1]:.4g} (#{best[0]})"
    return next((f for f in forms if width is None or len(f) <= width), forms[-1])


@contextlib.contextmanager
def quiet_trial(run_dir: Path, overrides: list[str], verbose: bool = False):
    """Around one trial of a sweep: its console output to train.log only, then its line."""
    from rich.markup import escape

    from dlx.tracking.console import console

    if verbose:
        yield
        return
    saved, since = console.file, time.monotonic()
    console.file = open(os.devnull, "w")  # noqa: SIM115 (closed below)
    try:
        yield
    finally:
        console.file.close()
        console.file = saved
        try:
            width = console.width if console.is_terminal else None
            line = trial_line(Path(run_dir), overrides, time.monotonic() - since, width)
        except OSError:  # the folder went away: the summary will say so
            line = f"trial {Path(run_dir).name}  (no result)"
        console.print(escape(line), soft_wrap=not console.is_terminal, highlight=False)
        console.file.flush()


_SWEEP: list[str] = []  # the sweep this process runs (set as it starts)


def remember_sweep(sweep_dir: str) -> None:
    _SWEEP[:] = [str(sweep_dir)]


def resume_hint() -> None:
    """After Ctrl-C in a sweep: how to continue it (the whole sweep, not one trial)."""
    import shlex

    from rich.markup import escape

    from dlx.tracking.console import console

    if _SWEEP:
        where = shlex.quote(_SWEEP[-1])
        console.print(
            f"interrupted: continue the sweep with [bold]dlx sweep --resume {escape(where)}[/]",
            soft_wrap=True,
        )
