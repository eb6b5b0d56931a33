"""`dlx sweep --resume SWEEP_DIR`: continue a sweep that was killed or interrupted.

The sweep folder's multirun.yaml holds the overrides it was started with. They are given to
Hydra again, with the same folder and `hydra.sweeper.resume=true`, through dlx's sweeper (a
plain grid sweep goes through `hydra/sweeper=dlx_grid`, which runs the grid in the order
Hydra's own grid sweeper did, so trial N is folder N again). The sweeper keeps every trial
with a final metrics.json, continues the interrupted ones from their own checkpoints/last.pt
and runs those never started; the summary then covers them all.

multirun.yaml and the study journal are data (`config/sweepcheck.py`, `sweeps/journal.py`):
every value any trial could get is checked before the first trial starts, Hydra's own keys
are taken over only from a short allowlist (never a path: the folder is the one given on the
command line, the journal the one in it), and a sweep made with a `--config-dir` needs that
folder given again. A second resume of a running sweep is refused (the sweep lock).
"""

from __future__ import annotations

import re
from pathlib import Path

from dlx.errors import UserError
from dlx.record import names

# Hydra overrides a resumed sweep takes over from multirun.yaml (anything else is refused).
_HYDRA_KEPT = re.compile(
    r"hydra\.sweeper\.(n_trials|n_jobs|direction|pruner|study_name|max_failure_rate|grid|repeat"
    r"|pruning\.\w+|sampler\.(seed|n_startup_trials))"
    r"|hydra/launcher|hydra/sweeper|hydra/sweeper/sampler"
    r"|hydra\.launcher\.(n_jobs|timeout_min|cpus_per_task|gpus_per_node|tasks_per_node|mem_gb"
    r"|nodes|partition|qos|account|backend|prefer|verbose)"
)
_HYDRA_DROPPED = re.compile(
    r"hydra\.(sweep\.dir|mode|sweeper\.resume|verbose|sweeper\.max_batch_size|sweeper\.storage)"
)
_PARAMS = "hydra.sweeper.params."
_SWEEPERS = ("basic", "optuna", "dlx_grid")


def _read(saved: Path, where: str) -> tuple[list[str], list[str], dict, list]:
    """multirun.yaml's task and Hydra overrides, choices and config sources (bounded read)."""
    from dlx.record.read import load_yaml

    mr = load_yaml(saved)
    try:
        h = mr["hydra"]
        task, hydra = h["overrides"]["task"] or [], h["overrides"]["hydra"] or []
        choices = h["runtime"].get("choices") or {}
        sources = h["runtime"].get("config_sources") or []
        if not all(isinstance(o, str) for o in [*task, *hydra]) or not isinstance(choices, dict):
            raise TypeError
    except (KeyError, TypeError, AttributeError):
        raise UserError(
            f"{where}: {saved} is not a sweep's multirun.yaml (hydra.overrides.task / "
            "hydra.overrides.hydra / hydra.runtime missing or not lists of strings).",
            key="--resume",
        ) from None
    return list(task), list(hydra), choices, list(sources)


def _hydra_overrides(hydra: list[str], saved: Path, path: Path) -> tuple[list[str], list[str]]:
    """(the Hydra overrides a resume keeps, the search-space params as KEY=VALUE)."""
    from dlx.sweeps.study import JOURNAL

    kept, params = [], []
    for o in hydra:
        key, _, value = o.lstrip("+~").partition("=")
        key = key.strip()
        if key.startswith(_PARAMS):
            params.append(f"{key[len(_PARAMS) :]}={value}")
            kept.append(o)
        elif key == "hydra.sweeper.storage" and value.strip() not in ("", "null"):
            mine = (path / JOURNAL).resolve()
            if Path(value.strip().strip("'\"")).expanduser().resolve() != mine:
                raise UserError(
                    f"{saved}: `hydra.sweeper.storage={value[:200]}`: a resumed sweep keeps its "
                    f"study in the sweep folder ({JOURNAL}) and takes no storage path from the "
                    "folder. Resume a study elsewhere with `dlx sweep` and that storage given "
                    "by hand.",
                    key="hydra.sweeper.storage",
                )
        elif _HYDRA_DROPPED.fullmatch(key):
            continue
        elif _HYDRA_KEPT.fullmatch(key) and "${" not in value:
            kept.append(o)
        else:
            raise UserError(
                f"{saved}: `{o[:200]}`: a resumed sweep takes over only the sweeper's and "
                "launcher's settings (n_trials, n_jobs, pruner, sampler seed, ...), never paths, "
                "set-up commands or other Hydra keys.",
                key=key,
            )
    return kept, params


def resume_sweep(sweep_dir: str, config_dir: str | None = None) -> list[dict[str, str]]:
    """Continue the sweep in `sweep_dir`; returns its ranked rows (its summary.csv)."""
    from dlx.config.sweepcheck import check_sweep_overrides, quote
    from dlx.launch.hydra_app import run_hydra
    from dlx.launch.preflight import preflight
    from dlx.launch.runfolders import check_writable
    from dlx.sweeps import journal
    from dlx.sweeps.study import JOURNAL
    from dlx.sweeps.summary import read_rows

    path = Path(sweep_dir)
    where = f"`--resume {sweep_dir}`"
    if not path.is_dir():
        raise UserError(f"{where}: there is no such folder.", key="--resume")
    saved = path / names.MULTIRUN
    if not saved.is_file():
        raise UserError(
            f"{where}: not a sweep folder (no multirun.yaml). Give the folder of a sweep, "
            "e.g. outputs/multirun/DATE/TIME; a single run resumes with `dlx train --resume`.",
            key="--resume",
        )
    if journal.sweep_locked(path):
        journal.hold_sweep_lock(path)  # refused: names the folder
    check_writable(path, "--resume")
    task, hydra, choices, sources = _read(saved, where)
    if config_dir is None and any(
        isinstance(s, dict) and s.get("provider") == "command-line" for s in sources
    ):
        raise UserError(
            f"{where}: the sweep used configs of your own (--config-dir); give the folder "
            "again: `dlx sweep --resume SWEEP_DIR --config-dir DIR`.",
            key="--config-dir",
        )
    kept, params = _hydra_overrides(hydra, saved, path)
    sweeper = str(choices.get("hydra/sweeper") or "basic")
    if sweeper not in _SWEEPERS:
        raise UserError(
            f"{where}: the sweep ran with hydra/sweeper={sweeper[:80]}; dlx resumes its own "
            "sweeps (grid, optuna, dlx_grid).",
            key="--resume",
        )
    if sweeper == "basic":
        kept.append("hydra/sweeper=dlx_grid")
    checker = check_sweep_overrides(task, params, config_dir, str(saved))
    journal.hold_sweep_lock(path)  # from here on this process owns the folder
    keys = checker.keys  # the sweep's own keys, and its search preset's
    try:
        journal.check_journal(path / JOURNAL, path, checker, keys, _note)
    except UserError:
        journal.release_sweep_lock(path)
        raise
    overrides = [
        *task,
        *kept,
        f"hydra.sweep.dir={quote(str(path.resolve()))}",
        "hydra.sweeper.resume=true",
    ]
    preflight(overrides, True, config_dir)
    run_hydra(overrides, True, config_dir)
    return read_rows(path)


def _note(message: str) -> None:
    from dlx.record.text import safe_text
    from dlx.tracking.console import console

    console.print(f"note: {safe_text(message)}", soft_wrap=True, highlight=False)
