"""`dlx compare RUN_A RUN_B [...]`: what differs between runs, how each went, and a figure
of their validation curves overlaid.

"What differs" is the config keys (and group choices) whose value is not the same in every
run. A key that only differs because its group differs (`opt=adam` vs `opt=sgd` bring
their own `opt.betas`, `opt.momentum`...) is left to the group's row, unless it was typed
on a command line (`opt.lr=0.1`): so two trials of a sweep differ in exactly the swept keys.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dlx.errors import UserError
from dlx.record import names
from dlx.record.lock import held_locks
from dlx.runs.fit import Column, side_by_side
from dlx.runs.load import Run, _read_bytes, load_run
from dlx.runs.query import cell, is_number, printable, text

_MISSING = "-"
METRICS = [
    ("status", "status"),
    ("epochs_run", "epochs"),
    ("best_epoch", "best epoch"),
    ("val.loss", "val loss (best epoch)"),
    ("val.acc", "val acc (best epoch)"),
    ("test.loss", "test loss"),
    ("test.acc", "test acc"),
    ("test.mse", "test mse"),
    ("wall_time_s", "wall time (s)"),
]


def _typed_keys(overrides: list[str]) -> set[str]:
    return {o.lstrip("+~").partition("=")[0].strip() for o in overrides}


def setup(run: Run) -> dict[str, Any]:
    """What the run was: its flat config, then its group choices (`opt`: `adam`)."""
    return {**run.config(), **run.choices}


def differing(
    setups: list[dict[str, Any]], overrides: list[list[str]], groups: set[str] = frozenset()
) -> list[str]:
    """The keys whose value is not the same in every setup, the differing group choices
    (`groups`: `opt`, `model`...) first; a group's own keys only when typed."""
    keys: dict[str, None] = {}
    for s in setups:
        keys.update(dict.fromkeys(s))
    diff = [k for k in keys if len({text(s.get(k, _MISSING)) for s in setups}) > 1]
    typed = set().union(*(_typed_keys(o) for o in overrides)) if overrides else set()
    changed = {k for k in diff if k in groups}
    kept = [k for k in diff if k in typed or k.split(".", 1)[0] not in changed or k in changed]
    return [k for k in kept if k in changed] + [k for k in kept if k not in changed]


def differing_runs(runs: list[Run]) -> tuple[list[dict[str, Any]], list[str]]:
    """(each run's setup, the keys that differ across them)."""
    setups = [setup(r) for r in runs]
    groups = {k for r in runs for k in r.choices}
    return setups, differing(setups, [r.overrides for r in runs], groups)


def _history(run: Run) -> list[dict[str, Any]]:
    if run.problem:
        return []
    try:
        data = json.loads(_read_bytes(os.path.join(run.path, names.METRICS), 1 << 26)[0])
    except (OSError, ValueError, RecursionError):
        return []
    hist = data.get("history") if isinstance(data, dict) else None
    return [h for h in hist if isinstance(h, dict)] if isinstance(hist, list) else []


def _load(arg: str, held: set[int] | None) -> Run:
    path = Path(arg)
    if not names.is_run_folder(path):
        raise UserError(
            f"{arg}: not a dlx run folder (no .hydra/config.yaml). Give run folders, e.g. "
            "outputs/DATE/TIME or a sweep's trial outputs/multirun/DATE/TIME/0.",
            key="RUN",
        )
    run = load_run(path, path.parent, held)
    run.name = arg.rstrip("/") or arg
    return run


def compare(run_dirs: list[str], out: str | None = "compare.png") -> dict[str, Any]:
    """Print the differing keys and the metrics side by side; write the curves figure to
    `out` (None: no figure). Returns {"differ": keys, "figure": path or None}."""
    from rich.markup import escape

    from dlx.tracking.console import console

    if len(run_dirs) < 2:
        raise UserError("dlx compare needs two run folders or more.", key="RUN")
    held = held_locks()
    runs = [_load(a, held) for a in run_dirs]
    setups, keys = differing_runs(runs)
    labels = [printable(k) for k in keys]  # config keys from the folders' metrics.json
    cells = [[cell(s.get(k)) for k in keys] for s in setups]
    title = f"{len(keys)} config key{'s' * (len(keys) > 1)} differ"
    if not keys:
        title = "Same config in every run: they differ only in how they went"
    rows = [r.flat() for r in runs]
    for key, label in METRICS:
        if any(row.get(key) is not None for row in rows):
            labels.append(label)
            for row, column in zip(rows, cells, strict=True):
                column.append(cell(row.get(key)))
    for r in runs:
        if r.problem:
            console.print(escape(f"{r.name}: damaged, {r.problem}"), style="red")
    columns = [Column(printable(r.name), c) for r, c in zip(runs, cells, strict=True)]
    label_column = Column("", labels, wrap=True)
    label_column.shown = labels
    for table in side_by_side(title, label_column, columns, console.width, len(keys) or None):
        console.print(table)
    figure = None
    if out:
        histories = [_history(r) for r in runs]
        if any(histories):
            figure = write_figure(runs, histories, setups, keys, Path(out))
            console.print(escape(f"validation curves: {figure}"))
        else:
            console.print("No per-epoch history in these runs' metrics.json: no figure.")
    return {"differ": keys, "figure": figure}


def _label(name: str, setup: dict[str, Any], keys: list[str]) -> str:
    from dlx.tracking.figures import sig4

    said = ""
    for k in keys:  # what this run set, as far as a legend line holds (the run's name aside)
        value = setup.get(k, _MISSING)
        if k == "name" or value in (_MISSING, None):
            continue
        if len(said) > 60:
            said += " …"
            break
        said += f" {k}={sig4(value)}"
    return sig4(f"{name} {said}".strip())


def write_figure(
    runs: list[Run],
    histories: list[list[dict[str, Any]]],
    setups: list[dict[str, Any]],
    keys: list[str],
    out: Path,
) -> Path:
    """Validation loss (and accuracy, for classifiers) per epoch, one line per run; a dot at
    each run's best epoch. Written atomically: an existing figure is replaced whole."""
    from dlx.tracking.figures import pyplot

    plt = pyplot()

    def series(hist: list[dict[str, Any]], name: str) -> tuple[list[int], list[float]]:
        pts = [
            (h.get("epoch"), (h.get("val") or {}).get(name))
            for h in hist
            if isinstance(h.get("val"), dict)
        ]
        pts = [(e, v) for e, v in pts if is_number(e) and is_number(v)]
        return [e for e, _ in pts], [v for _, v in pts]

    from dlx.runs.fit import short_paths
    from dlx.tracking.figures import integer_epochs, legend_below

    panels = ["loss"] + (["acc"] if any(series(h, "acc")[0] for h in histories) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    names = short_paths([r.name for r in runs], 2)
    for ax, name in zip(axes[0], panels, strict=True):
        for run, hist, s, short in zip(runs, histories, setups, names, strict=True):
            xs, ys = series(hist, name)
            if not xs:
                continue
            (line,) = ax.plot(xs, ys, label=_label(short, s, keys), linewidth=1.6)
            best = run.summary.get("best_epoch") if not run.problem else None
            if best in xs:
                ax.plot([best], [ys[xs.index(best)]], "o", color=line.get_color())
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"val {name}")
        ax.set_title(f"validation {'loss' if name == 'loss' else 'accuracy'} (dot: best epoch)")
        ax.grid(alpha=0.3)
        integer_epochs(ax)
    fig.tight_layout()
    legend_below(fig, axes[0][0])  # below the panels: it covers no curve and no axis label
    out = out if out.suffix else out.with_suffix(".png")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png")
        os.replace(tmp, out)
    except (OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"--out {out}: cannot write the figure ({exc}).", key="--out") from None
    finally:
        plt.close(fig)
    return out
