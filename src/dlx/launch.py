"""Hydra glue: `dlx train` and `dlx sweep` run the task below through `hydra.main`, so
Hydra owns the run folder, `.hydra/`, multirun, sweepers and launchers.

Before Hydra starts, `preflight` composes and validates the config, so bad input exits 2
with one message and no run folder is created for it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import sys
import traceback
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from dlx.config import compose, conf_dir, hydra_error, register_resolvers, validate
from dlx.errors import UserError

log = logging.getLogger("dlx")

# What the jobs run in this process returned (a single run: one entry).
OUTCOMES: list[dict[str, Any]] = []


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
    groups = _groups()
    for k, v in typed.items():
        if k in groups and k not in out and v.startswith("["):
            out[k] = v
    return out


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

    from dlx.training.checkpoint import run_lock
    from dlx.training.distributed import torchrun_env
    from dlx.training.loop import fit, write_metrics
    from dlx.training.signals import StopRequested

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
        # Ctrl-C from here on stops the run cleanly; one process writes this folder at a time.
        torchrun = torchrun_env()  # under torchrun all ranks share the folder; rank 0 holds it
        lock = run_lock(run_dir) if not torchrun or torchrun[0] == 0 else contextlib.nullcontext()
        with StopRequested(), lock:
            if cfg.trainer.devices > 1 or torchrun:
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
    if multirun and metrics["status"] == "interrupted":
        raise KeyboardInterrupt  # Ctrl-C stops the whole sweep, not just this trial
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
        with _no_mode_probe(overrides, config_dir):
            main()
    finally:
        sys.argv = saved_argv
        GlobalHydra.instance().clear()


@contextlib.contextmanager
def _no_mode_probe(overrides: list[str], config_dir: str | None) -> Iterator[None]:
    """hydra.main composes the whole config once only to read `hydra.mode`, then composes it
    again to run (~0.2 s of every start). dlx's own configs never set `hydra.mode`, so where
    neither an override nor a user's --config-dir can set it, the probe's answer is known: unset
    (None), and Hydra goes on exactly as after its probe."""
    if config_dir or any("hydra.mode" in o for o in overrides):
        yield
        return
    from hydra._internal.hydra import Hydra

    probe = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        Hydra.get_mode = probe


def _sweep_combinations(overrides: list[str]) -> list[list[str]]:
    """Expand grid sweeps (`a=1,2 b=x,y`) into the trials' override lists, for preflight."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise hydra_error(exc, overrides) from None
    try:
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # interval()/tag() sweeps: validate the fixed part only
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    return [list(combo) for batch in batches for combo in batch]


def preflight(
    overrides: list[str], multirun: bool = False, config_dir: str | None = None
) -> DictConfig:
    """Compose and validate before any work (and before Hydra makes a run folder)."""
    return _preflight(overrides, multirun, config_dir)[0]


def _preflight(
    overrides: list[str], multirun: bool, config_dir: str | None
) -> tuple[DictConfig, set[str]]:
    """`preflight`, and which of `hydra.run.dir` / `hydra.sweep.dir` the composed config sets
    to a folder of its own (a user's config, say) rather than dlx's default."""
    combos = _sweep_combinations(overrides) if multirun else [overrides]
    cfg = None
    chosen: set[str] = set()
    for i, combo in enumerate(combos[:64]):
        cfg = compose(combo, config_dir, with_hydra=i == 0)
        if i == 0:
            hydra = OmegaConf.to_container(cfg.hydra, resolve=False)
            chosen = {
                f"hydra.{k}.dir"
                for k in ("run", "sweep")
                if str(hydra[k]["dir"]) != _default_dir(k)
            }
            with open_dict(cfg):
                del cfg["hydra"]
        validate(cfg)
    from dlx.training.device import check_speed_options, resolve_device

    check_speed_options(cfg, resolve_device(cfg.device.type))
    from dlx.training.distributed import check_devices

    check_devices(cfg, multirun)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = _override_value(overrides, key)
    if folder is not None:
        check_writable(Path(folder), key)
    return cfg, chosen


def _override_value(overrides: list[str], key: str) -> str | None:
    """The value the last `key=...` (or `+key=`/`++key=`) override sets, as typed."""
    value = None
    for o in overrides:
        name, eq, rest = o.lstrip("+").partition("=")
        if eq and name.strip() == key:
            value = rest.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1].replace("\\" + value[0], value[0])  # as `quote` wrote it
    return value


def check_writable(folder: Path, key: str) -> None:
    """A run folder that cannot be created or written is bad input (exit 2), found before any
    work: the nearest folder that exists must be a writable directory."""
    probe = folder.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(
            f"Cannot create the run folder {folder} (`{key}`): {probe} is a file, "
            f"not a folder. Set `{key}` to a folder you can write.",
            key=key,
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(
            f"Cannot write the run folder {folder} (`{key}`): {probe} is not writable. "
            f"Set `{key}` to a folder you can write.",
            key=key,
        )


def refuse_existing_run(overrides: list[str]) -> None:
    """A new run never lands on top of another run's checkpoints and metrics.json."""
    folder = _override_value(overrides, "hydra.run.dir")
    if folder is None:
        return
    run = Path(folder)
    if (run / "metrics.json").exists() or (run / "checkpoints" / "last.pt").exists():
        raise UserError(
            f"`hydra.run.dir={folder}` already holds a run (its metrics.json / checkpoints would "
            f"be overwritten). Continue it with `dlx train --resume {folder}`, or pick a new "
            "folder.",
            key="hydra.run.dir",
        )


@functools.cache
def _groups() -> frozenset[str]:
    """dlx's config groups: the folders of conf/ (data, model, opt, reg, ...)."""
    return frozenset(p.name for p in conf_dir().iterdir() if p.is_dir())


@functools.cache
def _default_dir(kind: str) -> str:
    """dlx's own `hydra.run.dir` / `hydra.sweep.dir` (kind run / sweep) pattern, unresolved."""
    node = OmegaConf.load(conf_dir() / "config.yaml")
    return str(OmegaConf.to_container(node.hydra, resolve=False)[kind]["dir"])


def _fresh_folder(
    overrides: list[str],
    cfg: DictConfig,
    key: str,
    root: Path,
    chosen: Collection[str] = (),
) -> list[str]:
    """Claim `root/DATE/TIME[_name]` (then `-2`, `-3`, ...) with an atomic mkdir, even against
    a parallel dlx, and hand it to Hydra as `key`. A folder chosen by the user (a `key=...`
    override, or a config of theirs that sets it: `chosen`, from `_preflight`) is left alone."""
    if key in chosen or any(o.lstrip("+~").startswith(f"{key}=") for o in overrides):
        return overrides
    from datetime import datetime

    from dlx.config import _suffix

    now = datetime.now()
    base = root / now.strftime("%Y-%m-%d") / (now.strftime("%H-%M-%S") + _suffix(cfg.get("name")))
    folder, n = base, 1
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                folder.mkdir()
                break
            except FileExistsError:
                n += 1
                folder = base.with_name(f"{base.name}-{n}")
    except OSError as exc:
        raise UserError(
            f"Cannot create the folder {folder.resolve()}: {exc.strerror}. "
            f"Run from a writable folder or set {key}=DIR.",
            key=key,
        ) from None
    return [*overrides, f"{key}={quote(str(folder))}"]


def quote(value: str) -> str:
    """A value as one quoted Hydra override string: a `name` with a comma, brackets or quotes
    must not turn the folder into a sweep or a list."""
    return "'" + value.replace("'", "\\'") + "'"


def refuse_existing_sweep(overrides: list[str]) -> None:
    """A new sweep never lands on top of another sweep's trials (trial 0 of each would share
    one folder: checkpoints overwritten, two runs' events mixed)."""
    folder = _override_value(overrides, "hydra.sweep.dir")
    if folder is None or not Path(folder).is_dir():
        return
    sweep = Path(folder)
    held = [
        p.name
        for p in sweep.iterdir()
        if p.name in ("multirun.yaml", "summary.csv")
        or (p / "metrics.json").exists()
        or (p / "checkpoints" / "last.pt").exists()
    ]
    if held:
        raise UserError(
            f"`hydra.sweep.dir={folder}` already holds a sweep ({', '.join(sorted(held)[:4])}): "
            "its trials would be overwritten. Pick a new folder, or leave hydra.sweep.dir out "
            "(each sweep then gets its own outputs/multirun/DATE/TIME).",
            key="hydra.sweep.dir",
        )


def sweep_once(overrides: list[str], config_dir: str | None = None) -> None:
    """One sweep (Hydra multirun) in its own folder; the summary lands in dlx.sweep."""
    cfg, chosen = _preflight(overrides, True, config_dir)
    refuse_existing_sweep(overrides)
    key = "hydra.sweep.dir"
    claimed = _fresh_folder(overrides, cfg, key, Path("outputs") / "multirun", chosen)
    try:
        run_hydra(claimed, True, config_dir)
    finally:
        if claimed is not overrides:  # a sweep that never started leaves no empty folders
            _remove_empty(Path(_override_value(claimed, key) or ""), levels=4)


def train_once(overrides: list[str], config_dir: str | None = None) -> dict[str, Any]:
    """One run in this process; returns its metrics, raises UserError for bad input."""
    cfg, chosen = _preflight(overrides, False, config_dir)
    refuse_existing_run(overrides)
    explicit = _override_value(overrides, "hydra.run.dir")
    existed = explicit is not None and Path(explicit).exists()
    from dlx.training.distributed import shared_run_overrides, torchrun_env

    def fresh_run_dir(overrides: list[str], cfg: DictConfig) -> list[str]:
        """Hydra's `outputs/DATE/TIME[_name]`, made unique: two runs started in the same second
        must not share (and overwrite) one folder."""
        return _fresh_folder(overrides, cfg, "hydra.run.dir", Path("outputs"), chosen)

    if torchrun_env():  # rank 0 picks the one run folder and tells the other ranks
        overrides = shared_run_overrides(overrides, cfg, fresh_run_dir)
    else:
        overrides = fresh_run_dir(overrides, cfg)
    del OUTCOMES[:]
    run_hydra(overrides, False, config_dir)
    if not OUTCOMES:
        raise UserError("Hydra did not run the job (see the message above).")
    outcome = OUTCOMES[-1]
    if outcome.get("status") == "error":
        run_dir = _override_value(overrides, "hydra.run.dir")
        if isinstance(outcome["exception"], UserError) and run_dir and not existed:
            if not torchrun_env():
                _discard_unstarted_run(Path(run_dir), parents=explicit is None)
        raise outcome["exception"]
    return outcome


def _discard_unstarted_run(run_dir: Path, parents: bool) -> None:
    """Bad input found once the run had begun (data missing offline, a model that does not fit
    the data): the folder Hydra made holds nothing yet, so it goes; a run with a checkpoint or
    metrics.json is never touched."""
    import shutil

    if (run_dir / "metrics.json").exists() or (run_dir / "checkpoints" / "last.pt").exists():
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    if parents:  # outputs/DATE/ and outputs/ that this run alone made
        _remove_empty(run_dir.parent, levels=2)


def _remove_empty(folder: Path, levels: int) -> None:
    """Remove `folder` and then its parents, `levels` folders in all, while each is empty."""
    for _ in range(levels):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _resume_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Apply `key=value` overrides to a run's saved config. Its config groups stay: a resumed
    run is the same model, data and optimizer; values such as `epochs=20` may change."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise hydra_error(exc, overrides) from None
    groups = _groups()
    OmegaConf.set_struct(cfg, True)
    for o in parsed:
        key = o.key_or_group
        if o.is_sweep_override():
            raise UserError(
                f"`{o.input_line}`: `--resume` continues one run; it cannot sweep.", key=key
            )
        if key.split(".")[0] == "hydra" or key in groups or o.is_delete():
            raise UserError(
                f"`{o.input_line}`: a resumed run keeps its folder and its config groups "
                f"({', '.join(sorted(groups - {'hydra'}))}); only values can change, "
                "e.g. epochs=20.",
                key=key,
            )
        try:
            if o.is_add() or o.is_force_add():
                OmegaConf.set_struct(cfg, False)
            OmegaConf.update(cfg, key, o.value(), merge=True)
        except Exception as exc:
            raise hydra_error(exc, overrides) from None
        finally:
            OmegaConf.set_struct(cfg, True)
    return cfg


def resume(run_dir: str, overrides: list[str]) -> dict[str, Any]:
    """Continue a run in its own folder from checkpoints/last.pt (no new Hydra run)."""
    from dlx.training.checkpoint import atomic_write, run_lock
    from dlx.training.loop import fit, read_config
    from dlx.training.signals import StopRequested

    run_path = Path(run_dir)
    where = f"`--resume {run_dir}`"
    from dlx.training.distributed import torchrun_env

    if torchrun_env():
        raise UserError(
            f"{where} under torchrun: resume without torchrun; the run's own "
            "trainer.devices starts its processes again.",
            key="--resume",
        )
    if not run_path.is_dir():
        raise UserError(f"{where}: there is no such folder.", key="--resume")
    if not (run_path / ".hydra" / "config.yaml").is_file():
        raise UserError(
            f"{where}: not a dlx run folder (no .hydra/config.yaml). Give the folder "
            "of one run, e.g. outputs/DATE/TIME.",
            key="--resume",
        )
    if not (run_path / "checkpoints" / "last.pt").is_file():
        raise UserError(
            f"{where}: the run has no checkpoints/last.pt to continue from (it stopped "
            "before its first checkpoint); start it again instead.",
            key="--resume",
        )
    check_writable(run_path / "checkpoints", "--resume")
    try:
        cfg = read_config(run_path)
    except UserError:
        raise
    except Exception as exc:  # a damaged config.yaml
        raise UserError(f"{where}: cannot read .hydra/config.yaml: {exc}", key="--resume") from None
    if overrides:
        cfg = _resume_overrides(cfg, overrides)
    validate(cfg)
    choices = {}
    hydra_yaml = run_path / ".hydra" / "hydra.yaml"
    if hydra_yaml.is_file():
        choices = {
            k: str(v)
            for k, v in (OmegaConf.load(hydra_yaml).hydra.runtime.choices or {}).items()
            if not k.startswith("hydra") and v is not None
        }
    handler = logging.FileHandler(run_path / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with StopRequested(), run_lock(run_path):
            if cfg.trainer.devices > 1:
                from dlx.training.distributed import fit_parallel

                metrics = fit_parallel(cfg, run_path, choices=choices, resume=True)
            else:
                metrics = fit(cfg, run_path, resume=True, choices=choices)
            if overrides:  # later resumes and `dlx eval` see the config this run now has
                text = OmegaConf.to_yaml(cfg).encode()
                atomic_write(run_path / ".hydra" / "config.yaml", lambda f: f.write(text))
            return metrics
    finally:
        root.removeHandler(handler)
        handler.close()
