"""The Hydra app: `dlx train` and `dlx sweep` run `task` through `hydra.main`, so Hydra owns
the run folder, `.hydra/`, multirun, sweepers and launchers.

What it needs of Hydra's private APIs is in `dlx.config.hydra_internals` (which, unlike this module,
never reaches the training loop: preflight uses it too).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.config.compose import conf_dir, groups, register_resolvers
from dlx.config.hydra_internals import no_mode_probe
from dlx.errors import UserError, explain
from dlx.launch.failsafe import record_stop
from dlx.record import status as st

log = logging.getLogger("dlx")


class Task:
    """hydra.main's task function: one Hydra job = one run (`task`). `hydra.main` drops what
    a task returns, so each call also keeps what its job left in `results`: the run's
    metrics, or the exception that ended it. `run_hydra` returns them (the jobs run in this
    process: a single run's one; a parallel launcher's trials run elsewhere)."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any] | BaseException] = []

    def __call__(self, cfg: DictConfig) -> float:
        return task(cfg, self.results)


def _choices(hc) -> dict[str, str]:
    """The config-group choices of this job; a list choice (`reg=[l2,dropout]`), which Hydra
    leaves out, as it was typed."""
    typed = {}
    for o in hc.overrides.task:
        name, eq, value = str(o).lstrip("+~").partition("=")
        if eq:
            typed[name.strip()] = value.strip()
    out = {
        k: str(v)
        for k, v in hc.runtime.choices.items()
        if not k.startswith("hydra") and v is not None
    }
    known = groups()
    for k, v in typed.items():
        if k in known and k not in out and v.startswith("["):
            out[k] = v
    return out


def usable_cores() -> int:
    """The cores this process may run on (taskset, a container's or SLURM's cpuset), not the
    machine's count: n workers each given machine // n threads would oversubscribe them."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _trial_threads(hc) -> int | None:
    """Parallel launchers share the cores: each of n workers gets cores // n torch threads."""
    launcher = str(OmegaConf.select(hc, "launcher._target_", default=""))
    if "joblib" not in launcher.lower():
        return None
    n_jobs = int(OmegaConf.select(hc, "launcher.n_jobs", default=-1) or -1)
    cores = usable_cores()
    workers = cores if n_jobs <= 0 else min(n_jobs, cores)
    return max(1, cores // max(1, workers))


def _debug_config(cfg: DictConfig) -> None:
    """The composed config on the debug log; its YAML (a few ms a trial) only when shown."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("composed config:\n%s", OmegaConf.to_yaml(cfg))


def task(cfg: DictConfig, results: list[dict[str, Any] | BaseException]) -> float:
    """One Hydra job = one run. Returns the objective for sweepers (the monitored best value);
    appends the run's metrics (or, for a single run, the exception that ended it) to
    `results`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from dlx.launch.preflight import passes_preflight
    from dlx.record.lock import run_lock
    from dlx.record.metrics import write_metrics
    from dlx.training.distributed import torchrun_env
    from dlx.training.loop import fit
    from dlx.training.signals import StopRequested

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    from dlx.tracking.console import show_debug_lines

    show_debug_lines()  # hydra.verbose=true: these lines on the terminal too
    log.debug("run folder %s; choices %s", run_dir, _choices(hc))
    _debug_config(cfg)
    multirun = hc.mode == RunMode.MULTIRUN
    threads = _trial_threads(hc)
    if threads and not cfg.get("num_threads"):
        OmegaConf.set_struct(cfg, False)
        cfg.num_threads = threads
        OmegaConf.set_struct(cfg, True)
        log.info("torch threads: %d (this trial's share of %d cores)", threads, usable_cores())
    since = time.time()
    try:
        # Ctrl-C from here on stops the run cleanly; one process writes this folder at a time.
        torchrun = torchrun_env()  # under torchrun all ranks share the folder; rank 0 holds it
        lock = run_lock(run_dir) if not torchrun or torchrun[0] == 0 else contextlib.nullcontext()
        from dlx.sweeps.lines import quiet_trial
        from dlx.sweeps.study import pruning_reporter
        from dlx.sweeps.summary import folder_state
        from dlx.training.hooks import register

        register(pruning_reporter)  # an Optuna trial reports each epoch and may be pruned

        # `dlx sweep --resume`: a trial that was interrupted continues from its last.pt
        again = multirun and folder_state(run_dir) == "resumable"
        # a sweep's trial: its output to train.log, one line on the terminal when it ends
        quiet = quiet_trial(run_dir, list(hc.overrides.task), bool(hc.verbose))
        with StopRequested(), lock, quiet if multirun else contextlib.nullcontext():
            if cfg.trainer.devices > 1 or torchrun:
                from dlx.training.distributed import fit_parallel

                metrics = fit_parallel(
                    cfg, run_dir, choices=_choices(hc), resume=again, check=passes_preflight
                )
            else:
                metrics = fit(
                    cfg, run_dir, choices=_choices(hc), resume=again, check=passes_preflight
                )
        if cfg.get("advise") == "probe" and not (multirun or torchrun):
            from dlx.launch.advise import advise_after  # `dlx train ... advise=probe`

            advise_after(run_dir, metrics)
    except KeyboardInterrupt:  # a second Ctrl-C: the run still says it was interrupted
        if not multirun:
            record_stop(run_dir, since, st.INTERRUPTED, "stopped by a second Ctrl-C", _choices(hc))
        raise
    except Exception as exc:
        if not multirun:
            if not isinstance(exc, UserError):  # a run that failed (a full disk, ...)
                record_stop(run_dir, since, st.FAILED, explain(exc)[1], _choices(hc))
            results.append(exc)
            return math.nan
        # In a sweep a broken trial is marked failed; the others go on.
        log.error("trial failed:\n%s", traceback.format_exc())
        reason = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        write_metrics(run_dir, {"status": st.FAILED, "error": reason, "choices": _choices(hc)})
        return _failed_objective(cfg)
    results.append(metrics)
    if multirun and metrics["status"] == st.INTERRUPTED:
        raise KeyboardInterrupt  # Ctrl-C stops the whole sweep, not just this trial
    if metrics["status"] in (st.DIVERGED, st.INTERRUPTED) or metrics["best_value"] is None:
        return _failed_objective(cfg) if multirun else math.nan
    return float(metrics["best_value"])


def _failed_objective(cfg: DictConfig) -> float:
    """A failed trial's objective: the worst value, so a Bayesian sweeper learns to avoid that
    region (dlx's sweeper reads the trial's metrics.json and tells Optuna it failed)."""
    from dlx.sweeps.summary import objective_direction

    monitor = OmegaConf.select(cfg, "early_stopping.monitor", default="val/loss")
    return -math.inf if objective_direction(monitor) == "maximize" else math.inf


def _argv(overrides: list[str], multirun: bool, config_dir: str | None) -> list[str]:
    argv = ["dlx"]
    if config_dir:
        argv += ["--config-dir", str(Path(config_dir).resolve())]
    if multirun:
        argv.append("--multirun")
    return argv + list(overrides)


def _compositions(multirun: bool):
    """A sweep's trials in this process are composed from the YAML only when they differ from
    the last trial in more than values (`dlx.sweeps.trialconfig`)."""
    if not multirun:
        return contextlib.nullcontext()
    from dlx.sweeps.trialconfig import reused_compositions

    return reused_compositions()


def run_hydra(
    overrides: list[str], multirun: bool = False, config_dir: str | None = None
) -> list[dict[str, Any] | BaseException]:
    """Hand the overrides to `hydra.main` exactly as if typed after a Hydra app's name.
    Returns what the jobs run in this process left (`Task.results`)."""
    import hydra
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    GlobalHydra.instance().clear()
    job = Task()
    main = hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(job)
    saved_argv, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = _argv(overrides, multirun, config_dir)
    # What fails inside Hydra (a full disk while it writes .hydra/) reaches dlx's one error
    # boundary instead of Hydra's traceback printer.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with no_mode_probe(overrides, config_dir), _compositions(multirun):
            main()
    finally:
        sys.argv = saved_argv
        if saved_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full_error
        GlobalHydra.instance().clear()
    return job.results
