"""The Optuna side of a sweep: the study file, the search space, samplers, pruners, and the
per-epoch reporter that prunes a trial from inside its own run.

The study lives in the sweep folder as Optuna's JournalStorage file (`optuna.journal`): no
database server, safe for several processes and for a shared filesystem (SLURM), so trials in
joblib workers, Ray tasks or SLURM jobs report into one study and are pruned against each
other. A trial learns which study and trial it is from three environment variables that the
sweeper sets through `hydra.job.env_set` (they travel with the job's config to any launcher).

Optuna is imported only here, and only when a sweep or a trial needs it.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

from dlx.errors import UserError
from dlx.record import names
from dlx.record import status as st
from dlx.training.hooks import EpochEnd

ENV_STORAGE = "DLX_OPTUNA_STORAGE"
ENV_STUDY = "DLX_OPTUNA_STUDY"
ENV_TRIAL = "DLX_OPTUNA_TRIAL"
JOURNAL = names.JOURNAL
PRUNERS = ("none", "median", "asha", "hyperband")
SAMPLERS = ("TPESampler", "RandomSampler", "GridSampler", "CmaEsSampler", "GPSampler")


def quiet_optuna() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def storage_spec(storage: str | None, sweep_dir: Path) -> str:
    """Where the study lives: a journal file (default SWEEP_DIR/optuna.journal) or a URL."""
    if not storage:
        return str((Path(sweep_dir) / JOURNAL).resolve())
    return storage if "://" in storage else str(Path(storage).resolve())


def open_storage(spec: str):
    """The storage object every process opens the same way (a URL goes to Optuna as is)."""
    if "://" in spec:
        return spec
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    # The open(O_EXCL) lock works on NFS too, where the default symlink lock may not.
    return JournalStorage(JournalFileBackend(spec, lock_obj=JournalFileOpenLock(spec)))


def first_rung(epochs: int | None, reduction: int) -> int | None:
    """`min_resource: auto`: ASHA's first rung from the trial's epochs, about epochs / (2r)
    and at least 2, so with r=3 the decisions fall near 1/6 and 1/2 of the epochs (20 epochs:
    3, 9) - never after one noisy epoch. None without epochs (Optuna estimates it)."""
    return max(2, round(epochs / (2 * reduction))) if epochs else None


def make_pruner(name: str, pruning: Any, epochs: int | None = None):
    """`hydra.sweeper.pruner=none|median|asha|hyperband` as an Optuna pruner; `epochs`: a
    trial's, for `min_resource: auto`."""
    from optuna import pruners

    p = dict(pruning or {})
    if name == "none":
        return pruners.NopPruner()
    if name == "median":
        return pruners.MedianPruner(
            n_startup_trials=int(p.get("n_startup_trials", 2)),
            n_warmup_steps=int(p.get("n_warmup_steps", 2)),
        )
    reduction = int(p.get("reduction_factor", 3))
    resource = p.get("min_resource", "auto")
    resource = first_rung(epochs, reduction) if resource == "auto" else int(resource)
    if name == "asha":
        return pruners.SuccessiveHalvingPruner(
            min_resource=resource or "auto", reduction_factor=reduction
        )
    if name == "hyperband":
        top = p.get("max_resource", "auto")
        return pruners.HyperbandPruner(
            min_resource=resource or 1,
            max_resource=(epochs or "auto") if top == "auto" else int(top),
            reduction_factor=reduction,
        )
    raise UserError(
        f"`hydra.sweeper.pruner={name}`: allowed are {', '.join(PRUNERS)}.",
        key="hydra.sweeper.pruner",
    )


def make_sampler(sampler_cfg: Any, number: int, space: dict[str, Any]):
    """The configured sampler, seeded from (seed, trial number): the trial a sampler proposes
    depends only on the study's history, so a sweep resumed after a kill proposes what the
    sweep never killed would have."""
    from omegaconf import OmegaConf
    from optuna import samplers

    kwargs = OmegaConf.to_container(sampler_cfg, resolve=True) if sampler_cfg else {}
    target = str(kwargs.pop("_target_", "optuna.samplers.TPESampler"))
    kwargs.pop("_partial_", None)
    name = target.rsplit(".", 1)[-1]
    if not target.startswith("optuna.samplers.") or name not in SAMPLERS:
        raise UserError(
            f"`hydra.sweeper.sampler._target_={target}`: dlx builds Optuna's own samplers only: "
            + ", ".join(f"optuna.samplers.{s}" for s in SAMPLERS)
            + " (or hydra/sweeper/sampler=tpe|random|grid|cmaes|gp).",
            key="hydra.sweeper.sampler",
        )
    if kwargs.get("seed") is not None:
        kwargs["seed"] = (int(kwargs["seed"]) * 1_000_003 + number) % 2**32
    if name == "GridSampler":
        kwargs["search_space"] = grid_space(space)
    try:
        return getattr(samplers, name)(**kwargs)
    except TypeError as exc:
        raise UserError(f"`hydra.sweeper.sampler`: {exc}", key="hydra.sweeper.sampler") from None


def grid_space(space: dict[str, Any]) -> dict[str, list[Any]]:
    """Optuna's GridSampler wants the values of each parameter: discrete sweeps only."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, d in space.items():
        if isinstance(d, CategoricalDistribution):
            out[name] = list(d.choices)
        elif isinstance(d, (IntDistribution, FloatDistribution)) and d.step:
            n = int(round((d.high - d.low) / d.step)) + 1
            out[name] = [type(d.low)(d.low + i * d.step) for i in range(n)]
        else:
            raise UserError(
                f"`{name}`: the grid sampler needs a choice(...) or a range(...) with a step, "
                "not an interval.",
                key=name,
            )
    return out


def distributions(arguments: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Hydra's override grammar as Optuna distributions (what hydra-optuna-sweeper did):
    choice(...) and shuffled ranges -> categorical, range(a, b, step) -> int/float with a step,
    interval(a, b) -> uniform, tag(log, interval(a, b)) -> log-uniform. The rest are fixed
    overrides every trial gets. Returns (search space, fixed overrides)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space: dict[str, Any] = {}
    fixed: list[str] = []
    for o in OverridesParser.create().parse_overrides(arguments):
        key = o.get_key_element()
        if not o.is_sweep_override():
            fixed.append(o.input_line if o.is_delete() else f"{key}={o.get_value_element_as_str()}")
            continue
        v = o.value()
        if o.is_choice_sweep() or (o.is_range_sweep() and v.shuffle):
            values = list(o.sweep_iterator(transformer=Transformer.encode))
            space[key] = CategoricalDistribution(values)
        elif o.is_range_sweep():  # Hydra's stop is exclusive, Optuna's high inclusive
            last = v.start + (math.ceil((v.stop - v.start) / v.step) - 1) * v.step
            if any(isinstance(x, float) for x in (v.start, v.stop, v.step)):
                space[key] = FloatDistribution(float(v.start), float(last), step=float(v.step))
            else:
                space[key] = IntDistribution(int(v.start), int(last), step=int(v.step))
        elif o.is_interval_sweep():
            log = "log" in v.tags
            ints = isinstance(v.start, int) and isinstance(v.end, int)
            cls = IntDistribution if ints else FloatDistribution
            space[key] = cls(v.start, v.end, log=log)
        else:
            raise UserError(f"`{o.input_line}`: Optuna cannot search this sweep.", key=key)
    return space, fixed


def trial_env(spec: str, study_name: str, number: int) -> list[str]:
    """The overrides that tell a job which trial it is (Hydra sets them as its environment)."""
    from dlx.launch.runfolders import quote

    return [
        f"++hydra.job.env_set.{ENV_STORAGE}={quote(spec)}",
        f"++hydra.job.env_set.{ENV_STUDY}={quote(study_name)}",
        f"++hydra.job.env_set.{ENV_TRIAL}={number}",
    ]


def load(spec: str, study_name: str, pruner: Any = None, sampler: Any = None):
    import optuna

    quiet_optuna()
    return optuna.load_study(
        study_name=study_name,
        storage=open_storage(spec),
        pruner=pruner,
        sampler=sampler or optuna.samplers.RandomSampler(seed=0),
    )


class PruningReporter:
    """Inside an Optuna trial: report the monitored validation metric every epoch, and stop
    the run as `pruned` when the study's pruner says so."""

    def __init__(self, spec: str, study_name: str, number: int, epochs: int | None = None):
        import optuna

        study = load(spec, study_name)  # one read of the journal; the pruner set after
        attrs = study.user_attrs
        self.pruner_name = str(attrs.get("pruner", "none"))
        study.pruner = make_pruner(self.pruner_name, attrs.get("pruning"), epochs)
        self.best: float | None = None
        storage = study._storage
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(study_name), number
        )
        self.trial = optuna.trial.Trial(study, trial_id)

    def on_epoch_end(self, end: EpochEnd) -> str | None:
        if not math.isfinite(end.value):
            return None
        # The best value so far, as the trial's objective is: one noisy epoch at a rung
        # does not decide. (A trial of N repeats: the first to report a step is kept.)
        sign = -1 if str(end.monitor).endswith("acc") else 1
        if self.best is None or sign * end.value < sign * self.best:
            self.best = float(end.value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "already reported": another repeat did
            self.trial.report(self.best, end.epoch)
        if self.pruner_name != "none" and self.trial.should_prune():
            return st.PRUNED
        return None


def pruning_reporter(cfg) -> PruningReporter | None:
    """A hook for runs that are trials of an Optuna study (dlx's sweeper set the env); the
    Hydra task registers it (`dlx.training.hooks.register`)."""
    number = os.environ.get(ENV_TRIAL)
    if not number or not os.environ.get(ENV_STORAGE):
        return None
    if int(cfg.trainer.get("devices", 1)) > 1:
        return None  # data-parallel ranks would have to agree on the stop: not pruned
    epochs = int(cfg.epochs) if cfg.get("epochs") else None
    return PruningReporter(os.environ[ENV_STORAGE], os.environ[ENV_STUDY], int(number), epochs)
