"""The sweeper's config nodes: `hydra/sweeper=optuna|dlx_grid` and `hydra/sweeper/sampler=...`.

Structured configs, so a misspelt key or a value outside the allowed ones (`pruner=fast`,
`direction=sideways`) is refused when the config is composed, before any trial runs.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

TARGET = "hydra_plugins.dlx_sweeper.sweeper.DlxSweeper"


class Direction(Enum):
    auto = 0  # dlx.sweeps.summary sets it: minimize for val/loss, maximize for val/acc
    minimize = 1
    maximize = 2


class Pruner(Enum):
    none = 0  # every trial runs to its end (early stopping still applies)
    median = 1  # stop a trial whose value is worse than the median of the others at that epoch
    asha = 2  # successive halving: at epochs m, m*r, m*r^2 ... keep the best 1/r of the trials
    hyperband = 3  # several successive-halving brackets with different first rungs


@dataclass
class PruningConf:
    """Settings of the pruners (each one uses those it knows)."""

    n_startup_trials: int = 2  # median: trials that must finish before any is pruned
    n_warmup_steps: int = 2  # median: epochs every trial gets before it can be pruned
    min_resource: Any = "auto"  # asha, hyperband: the first rung's epoch (auto: ~epochs/(2r))
    reduction_factor: int = 3  # asha, hyperband: 1 in reduction_factor trials go past a rung
    max_resource: Any = "auto"  # hyperband: the longest a trial runs ("auto": its epochs)


@dataclass
class SamplerConf:
    _target_: str = MISSING


@dataclass
class TPESamplerConf(SamplerConf):
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False


@dataclass
class RandomSamplerConf(SamplerConf):
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class GridSamplerConf(SamplerConf):
    _target_: str = "optuna.samplers.GridSampler"  # the grid comes from the params
    seed: int | None = None


@dataclass
class CmaEsSamplerConf(SamplerConf):
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = None
    sigma0: float | None = None
    n_startup_trials: int = 1
    consider_pruned_trials: bool = False


@dataclass
class GPSamplerConf(SamplerConf):
    _target_: str = "optuna.samplers.GPSampler"
    seed: int | None = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False


@dataclass
class DlxSweeperConf:
    _target_: str = TARGET
    _recursive_: bool = False  # the sweeper builds the sampler itself (optuna.samplers only)
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    sampler: Any = MISSING
    grid: bool = False  # True: every combination of the a,b,c sweeps, in Hydra's grid order
    direction: Direction = Direction.auto
    storage: str | None = None  # null: SWEEP_DIR/optuna.journal (Optuna's JournalStorage)
    study_name: str = "dlx"
    n_trials: int = 20
    n_jobs: int = 1  # trials launched at once (hydra/launcher=joblib|ray|slurm runs them)
    max_failure_rate: float = 1.0  # share of failed trials in a batch that stops the search
    pruner: Pruner = Pruner.none
    pruning: PruningConf = field(default_factory=PruningConf)
    repeat: int = 1  # each configuration trains this many times (seed BASE, BASE+1, ...)
    params: dict[str, str] | None = None  # the search space, in Hydra's override grammar
    resume: bool = False  # set by `dlx sweep --resume`: keep finished trials, continue the rest


@dataclass
class DlxGridConf(DlxSweeperConf):
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "grid"}])
    grid: bool = True
    n_trials: int = 0  # 0: the whole grid


_cs = ConfigStore.instance()
_cs.store(group="hydra/sweeper", name="optuna", node=DlxSweeperConf, provider="dlx")
_cs.store(group="hydra/sweeper", name="dlx_grid", node=DlxGridConf, provider="dlx")
for _name, _node in {
    "tpe": TPESamplerConf,
    "random": RandomSamplerConf,
    "grid": GridSamplerConf,
    "cmaes": CmaEsSamplerConf,
    "gp": GPSamplerConf,
}.items():
    _cs.store(group="hydra/sweeper/sampler", name=_name, node=_node, provider="dlx")
