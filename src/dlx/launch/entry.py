"""The front door: `dlx train` and `dlx sweep` start here.

Each entry point runs preflight (compose and validate: bad input exits 2 and leaves no
folder), claims a fresh run or sweep folder, and hands the overrides to the Hydra app; what
the run or the sweep left comes back as the return value. The parts live beside it and are
imported from there: `preflight`, `runfolders`, `hydra_app` (the task) and `resume`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlx.config.naming import rename
from dlx.errors import UserError
from dlx.launch.hydra_app import run_hydra
from dlx.launch.preflight import preflight_with_folders
from dlx.launch.runfolders import (
    configured_folder,
    discard_unstarted_run,
    fresh_folder,
    override_value,
    quote,
    refuse_existing_run,
    refuse_existing_sweep,
    remove_empty,
)


def sweep_once(overrides: list[str], config_dir: str | None = None) -> list[dict[str, str]]:
    """One sweep (Hydra multirun) in its own folder; returns its ranked rows, as the sweep's
    end wrote them to summary.csv (`dlx.sweeps.summary.read_rows`)."""
    from dlx.sweeps.summary import read_rows
    from dlx.sweeps.sweeper import pruned_grid

    overrides = pruned_grid(overrides)
    cfg, chosen = preflight_with_folders(overrides, True, config_dir)
    rename(cfg, overrides, config_dir)  # a preset's folder name says what was changed
    refuse_existing_sweep(overrides)
    key = "hydra.sweep.dir"
    claimed = fresh_folder(overrides, cfg, key, Path("outputs") / "multirun", chosen)
    made = claimed is not overrides
    sweep_dir = override_value(claimed, key)
    if sweep_dir is None:  # a config of the user's names it: pinned, to read the end back
        sweep_dir = configured_folder(claimed, config_dir, key)
        claimed = [*claimed, f"{key}={quote(sweep_dir)}"]
    try:
        run_hydra(claimed, True, config_dir)
    finally:
        if made:  # a sweep that never started leaves no empty folders
            remove_empty(Path(sweep_dir), levels=4)
    return read_rows(Path(sweep_dir))


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
    rename(cfg, overrides, config_dir)  # a preset's folder name says what was changed
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
    claimed = override_value(overrides, "hydra.run.dir")
    locked = False  # a folder another dlx holds is never cleaned up by this one
    try:
        with _held(explicit):  # a second dlx on the same folder is refused before Hydra writes
            if explicit is not None:
                refuse_existing_run(overrides)  # again, now that no other dlx can start there
            locked = True
            results = run_hydra(overrides, False, config_dir)
    except BaseException:
        if locked and claimed and not existed and not torchrun_env():  # Hydra failed
            discard_unstarted_run(Path(claimed), parents=explicit is None)
        raise
    if not results:
        raise UserError("Hydra did not run the job (see the message above).")
    outcome = results[-1]
    if isinstance(outcome, BaseException):
        run_dir = override_value(overrides, "hydra.run.dir")
        if isinstance(outcome, UserError) and run_dir and not existed:
            if not torchrun_env():
                discard_unstarted_run(Path(run_dir), parents=explicit is None)
        raise outcome
    return outcome
