"""The front door: `dlx train` and `dlx sweep` start here.

Each entry point runs preflight (compose and validate: bad input exits 2 and leaves no
folder), claims a fresh run or sweep folder, and hands the overrides to the Hydra app.
The parts live beside it: `preflight`, `runfolders`, `hydra_app` (the task) and `resume`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlx.errors import UserError
from dlx.launch.hydra_app import OUTCOMES, run_hydra, task
from dlx.launch.preflight import preflight, preflight_with_folders
from dlx.launch.resume import resume
from dlx.launch.runfolders import (
    check_writable,
    discard_unstarted_run,
    fresh_folder,
    override_value,
    quote,
    refuse_existing_run,
    refuse_existing_sweep,
    remove_empty,
)

__all__ = [
    "OUTCOMES",
    "check_writable",
    "preflight",
    "quote",
    "refuse_existing_run",
    "refuse_existing_sweep",
    "resume",
    "run_hydra",
    "sweep_once",
    "task",
    "train_once",
]

_fresh_folder = fresh_folder  # the name tests and older callers use


def sweep_once(overrides: list[str], config_dir: str | None = None) -> None:
    """One sweep (Hydra multirun) in its own folder; the summary lands in dlx.sweeps.summary."""
    from dlx.sweeps.sweeper import pruned_grid

    overrides = pruned_grid(overrides)
    cfg, chosen = preflight_with_folders(overrides, True, config_dir)
    refuse_existing_sweep(overrides)
    key = "hydra.sweep.dir"
    claimed = fresh_folder(overrides, cfg, key, Path("outputs") / "multirun", chosen)
    try:
        run_hydra(claimed, True, config_dir)
    finally:
        if claimed is not overrides:  # a sweep that never started leaves no empty folders
            remove_empty(Path(override_value(claimed, key) or ""), levels=4)


def _held(folder: str | None):
    """The run lock of a folder the user chose (`hydra.run.dir=DIR`), taken before Hydra
    writes .hydra/ there; the run itself takes it again (re-entrant). Fresh folders are
    claimed by an atomic mkdir and need no lock this early."""
    import contextlib

    from dlx.training.distributed import torchrun_env

    if folder is None or torchrun_env():
        return contextlib.nullcontext()
    from dlx.record.lock import run_lock

    return run_lock(Path(folder), share=True)


def train_once(overrides: list[str], config_dir: str | None = None) -> dict[str, Any]:
    """One run in this process; returns its metrics, raises UserError for bad input."""
    cfg, chosen = preflight_with_folders(overrides, False, config_dir)
    refuse_existing_run(overrides)
    explicit = override_value(overrides, "hydra.run.dir")
    existed = explicit is not None and Path(explicit).exists()
    from dlx.training.distributed import shared_run_overrides, torchrun_env

    def fresh_run_dir(overrides: list[str], cfg: DictConfig) -> list[str]:
        """Hydra's `outputs/DATE/TIME[_name]`, made unique: two runs started in the same second
        must not share (and overwrite) one folder."""
        return fresh_folder(overrides, cfg, "hydra.run.dir", Path("outputs"), chosen)

    if torchrun_env():  # rank 0 picks the one run folder and tells the other ranks
        overrides = shared_run_overrides(overrides, cfg, fresh_run_dir)
    else:
        overrides = fresh_run_dir(overrides, cfg)
    del OUTCOMES[:]
    claimed = override_value(overrides, "hydra.run.dir")
    locked = False  # a folder another dlx holds is never cleaned up by this one
    try:
        with _held(explicit):  # a second dlx on the same folder is refused before Hydra writes
            if explicit is not None:
                refuse_existing_run(overrides)  # again, now that no other dlx can start there
            locked = True
            run_hydra(overrides, False, config_dir)
    except BaseException:
        if locked and claimed and not existed and not torchrun_env():  # Hydra failed
            discard_unstarted_run(Path(claimed), parents=explicit is None)
        raise
    if not OUTCOMES:
        raise UserError("Hydra did not run the job (see the message above).")
    outcome = OUTCOMES[-1]
    if outcome.get("status") == "error":
        run_dir = override_value(overrides, "hydra.run.dir")
        if isinstance(outcome["exception"], UserError) and run_dir and not existed:
            if not torchrun_env():
                discard_unstarted_run(Path(run_dir), parents=explicit is None)
        raise outcome["exception"]
    return outcome
