"""Hydra glue: `dlx train` and `dlx sweep` run the task below through `hydra.main`, so
Hydra owns the run folder, `.hydra/`, multirun, sweepers and launchers.

Before Hydra starts, `preflight` composes and validates the config, so bad input exits 2
with one message and no run folder is created for it.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.config import compose, conf_dir, hydra_error, register_resolvers, validate
from dlx.errors import UserError

log = logging.getLogger("dlx")

# What the jobs run in this process returned (a single run: one entry).
OUTCOMES: list[dict[str, Any]] = []


def _choices(hc) -> dict[str, str]:
    return {k: str(v) for k, v in hc.runtime.choices.items() if not k.startswith("hydra") and v is not None}


def _trial_threads(hc) -> int | None:
    """Parallel launchers share the cores: each of n workers gets cores // n torch threads."""
    launcher = str(OmegaConf.select(hc, "launcher._target_", default=""))
    if "joblib" not in launcher.lower():
        return None
    n_jobs = int(OmegaConf.select(hc, "launcher.n_jobs", default=-1) or -1)
    cores = os.cpu_count() or 1
    workers = cores if n_jobs <= 0 else min(n_jobs, cores)
    return max(1, cores // max(1, workers))


def task(cfg: DictConfig) -> float:
    """One Hydra job = one run. Returns the objective for sweepers (the monitored best value)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from dlx.training.distributed import torchrun_env
    from dlx.training.loop import fit, write_metrics

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    threads = _trial_threads(hc)
    if threads and not cfg.get("num_threads"):
        OmegaConf.set_struct(cfg, False)
        cfg.num_threads = threads
        OmegaConf.set_struct(cfg, True)
        log.info("torch threads: %d (this trial's share of %d cores)", threads, os.cpu_count() or 1)
    try:
        if cfg.trainer.devices > 1 or torchrun_env():
            from dlx.training.distributed import fit_parallel

            metrics = fit_parallel(cfg, run_dir, choices=_choices(hc))
        else:
            metrics = fit(cfg, run_dir, choices=_choices(hc))
    except Exception as exc:
        if not multirun:
            OUTCOMES.append({"status": "error", "exception": exc})
            return math.nan
        # In a sweep a broken trial is marked failed; the others go on.
        log.error("trial failed:\n%s", traceback.format_exc())
        reason = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        write_metrics(run_dir, {"status": "failed", "error": reason, "choices": _choices(hc)})
        return _failed_objective(cfg)
    OUTCOMES.append(metrics)
    if metrics["status"] in ("diverged", "interrupted") or metrics["best_value"] is None:
        return _failed_objective(cfg) if multirun else math.nan
    return float(metrics["best_value"])


def _failed_objective(cfg: DictConfig) -> float:
    """A failed trial's objective: the worst value, so a Bayesian sweeper learns to avoid that
    region (Optuna refuses NaN: hydra-optuna-sweeper would abort the whole search on it)."""
    from dlx.sweep import objective_direction

    monitor = OmegaConf.select(cfg, "early_stopping.monitor", default="val/loss")
    return -math.inf if objective_direction(monitor) == "maximize" else math.inf


def _argv(overrides: list[str], multirun: bool, config_dir: str | None) -> list[str]:
    argv = ["dlx"]
    if config_dir:
        argv += ["--config-dir", str(Path(config_dir).resolve())]
    if multirun:
        argv.append("--multirun")
    return argv + list(overrides)


def run_hydra(overrides: list[str], multirun: bool = False, config_dir: str | None = None) -> None:
    """Hand the overrides to `hydra.main` exactly as if typed after a Hydra app's name."""
    import hydra
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    GlobalHydra.instance().clear()
    main = hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(task)
    saved_argv = sys.argv
    sys.argv = _argv(overrides, multirun, config_dir)
    try:
        main()
    finally:
        sys.argv = saved_argv
        GlobalHydra.instance().clear()


def _sweep_combinations(overrides: list[str]) -> list[list[str]]:
    """Expand grid sweeps (`a=1,2 b=x,y`) into the trials' override lists, for preflight."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise hydra_error(exc) from None
    try:
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # interval()/tag() sweeps: validate the fixed part only
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    return [list(combo) for batch in batches for combo in batch]


def preflight(overrides: list[str], multirun: bool = False, config_dir: str | None = None) -> DictConfig:
    """Compose and validate before any work (and before Hydra makes a run folder)."""
    combos = _sweep_combinations(overrides) if multirun else [overrides]
    cfg = None
    for combo in combos[:64]:
        cfg = compose(combo, config_dir)
        validate(cfg)
    from dlx.training.device import check_speed_options, resolve_device

    check_speed_options(cfg, resolve_device(cfg.device.type))
    from dlx.training.distributed import check_devices

    check_devices(cfg, multirun)
    return cfg


def _fresh_run_dir(overrides: list[str], cfg: DictConfig) -> list[str]:
    """Hydra's `outputs/DATE/TIME[_name]`, made unique: two runs started in the same second
    must not share (and overwrite) one folder. An explicit hydra.run.dir is left alone."""
    if any(o.lstrip("+~").startswith("hydra.run.dir=") for o in overrides):
        return overrides
    from datetime import datetime

    from dlx.config import _suffix

    now = datetime.now()
    base = Path("outputs") / now.strftime("%Y-%m-%d") / (now.strftime("%H-%M-%S") + _suffix(cfg.get("name")))
    run_dir, n = base, 1
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                run_dir.mkdir()  # claims the folder atomically, even against a parallel dlx
                break
            except FileExistsError:
                n += 1
                run_dir = base.with_name(f"{base.name}-{n}")
    except OSError as exc:
        raise UserError(f"Cannot create the run folder {run_dir.resolve()}: {exc.strerror}. "
                        "Run from a writable folder or set hydra.run.dir=DIR.", key="hydra.run.dir") from None
    return [*overrides, f"hydra.run.dir={run_dir}"]


def train_once(overrides: list[str], config_dir: str | None = None) -> dict[str, Any]:
    """One run in this process; returns its metrics, raises UserError for bad input."""
    cfg = preflight(overrides, False, config_dir)
    from dlx.training.distributed import shared_run_overrides, torchrun_env

    if torchrun_env():  # rank 0 picks the one run folder and tells the other ranks
        overrides = shared_run_overrides(overrides, cfg, _fresh_run_dir)
    else:
        overrides = _fresh_run_dir(overrides, cfg)
    del OUTCOMES[:]
    run_hydra(overrides, False, config_dir)
    if not OUTCOMES:
        raise UserError("Hydra did not run the job (see the message above).")
    outcome = OUTCOMES[-1]
    if outcome.get("status") == "error":
        raise outcome["exception"]
    return outcome


def resume(run_dir: str, overrides: list[str]) -> dict[str, Any]:
    """Continue a run in its own folder from checkpoints/last.pt (no new Hydra run)."""
    from dlx.training.loop import fit, read_config

    run_path = Path(run_dir)
    from dlx.training.distributed import torchrun_env

    if torchrun_env():
        raise UserError(f"`--resume {run_dir}` under torchrun: resume without torchrun; the run's "
                        "own trainer.devices starts its processes again.", key="--resume")
    cfg = read_config(run_path)
    if overrides:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
        except Exception as exc:
            raise hydra_error(exc) from None
    validate(cfg)
    choices = {}
    hydra_yaml = run_path / ".hydra" / "hydra.yaml"
    if hydra_yaml.is_file():
        choices = {k: str(v) for k, v in (OmegaConf.load(hydra_yaml).hydra.runtime.choices or {}).items()
                   if not k.startswith("hydra") and v is not None}
    handler = logging.FileHandler(run_path / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        if cfg.trainer.devices > 1:
            from dlx.training.distributed import fit_parallel

            return fit_parallel(cfg, run_path, choices=choices, resume=True)
        return fit(cfg, run_path, resume=True, choices=choices)
    finally:
        root.removeHandler(handler)
        handler.close()
