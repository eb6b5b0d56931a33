"""The names of the files and folders dlx writes in a run folder and a sweep folder.

A run folder:

    RUN/
      .hydra/config.yaml        the composed config (what the run was)
      .hydra/overrides.yaml     the command-line overrides
      .hydra/hydra.yaml         Hydra's own config (the job, the run dir)
      metrics.json              how it went: status, summary, config, diagnosis, history
      eval.json                 `dlx eval`'s last result
      model.json                what inference needs: classes, preprocessing (training/card.py)
      checkpoints/last.pt       where training goes on from (`--resume`)
      checkpoints/best.pt       the weights of the best validated epoch
      checkpoints/.lock         held (flock) while a process writes the folder
      train.log                 the run's log
      advice.json, advice/      `dlx advise`: the remedies probed and their probe runs

A sweep folder holds multirun.yaml, one run folder per trial (0/, 1/, ...), summary.csv, and
for Optuna sweeps optuna.journal and optimization_results.yaml.
"""

from __future__ import annotations

from pathlib import Path

METRICS = "metrics.json"
EVAL = "eval.json"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
LOCK = ".lock"
HYDRA = ".hydra"
CONFIG = "config.yaml"
OVERRIDES = "overrides.yaml"
HYDRA_YAML = "hydra.yaml"
TRAIN_LOG = "train.log"
LR_FIND = "lr_find.json"
MODEL_CARD = "model.json"
ADVICE = "advice.json"  # `dlx advise`: the remedies probed, ranked (launch/advise.py)
ADVICE_PROBES = "advice"  # ...and the probe runs themselves, one folder each

MULTIRUN = "multirun.yaml"
SUMMARY_CSV = "summary.csv"
GROUPS_CSV = "groups.csv"  # one row a configuration (repeats, cv folds)
JOURNAL = "optuna.journal"
OPTUNA_RESULTS = "optimization_results.yaml"

# What marks a folder as a run's: the files only a run writes there (relative paths).
RUN_MARKERS = (METRICS, f"{CHECKPOINTS}/{LAST}")
# Every file a dlx run writes in its folder (relative paths): a new run never lands on a
# folder holding one of these.
RUN_FILES = (
    METRICS,
    f"{CHECKPOINTS}/{LAST}",
    f"{CHECKPOINTS}/{BEST}",
    EVAL,
    MODEL_CARD,
    TRAIN_LOG,
    f"{HYDRA}/{CONFIG}",
    f"{HYDRA}/{HYDRA_YAML}",
    f"{HYDRA}/{OVERRIDES}",
)
# Every path dlx writes in a run folder, the folders too: none may be a symlink.
WRITTEN_PATHS = (
    METRICS,
    EVAL,
    MODEL_CARD,
    TRAIN_LOG,
    CHECKPOINTS,
    f"{CHECKPOINTS}/{LAST}",
    f"{CHECKPOINTS}/{BEST}",
    f"{CHECKPOINTS}/{LOCK}",
    HYDRA,
    f"{HYDRA}/{CONFIG}",
    f"{HYDRA}/{HYDRA_YAML}",
    f"{HYDRA}/{OVERRIDES}",
)
# The files dlx writes atomically in a run folder (and its checkpoints/): a killed writer's
# temp files of these may be removed.
ATOMIC = (LAST, BEST, METRICS, EVAL, CONFIG, MODEL_CARD)


def metrics(run_dir: str | Path) -> Path:
    return Path(run_dir) / METRICS


def eval_json(run_dir: str | Path) -> Path:
    return Path(run_dir) / EVAL


def checkpoints(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def checkpoint(run_dir: str | Path, which: str = "last") -> Path:
    """checkpoints/last.pt or checkpoints/best.pt (`which`: "last" or "best")."""
    return checkpoints(run_dir) / f"{which}.pt"


def last(run_dir: str | Path) -> Path:
    return checkpoints(run_dir) / LAST


def best(run_dir: str | Path) -> Path:
    return checkpoints(run_dir) / BEST


def lock(run_dir: str | Path) -> Path:
    return checkpoints(run_dir) / LOCK


def hydra_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / HYDRA


def config(run_dir: str | Path) -> Path:
    """.hydra/config.yaml: the composed config a run folder was made with."""
    return hydra_dir(run_dir) / CONFIG


def overrides(run_dir: str | Path) -> Path:
    return hydra_dir(run_dir) / OVERRIDES


def hydra_yaml(run_dir: str | Path) -> Path:
    return hydra_dir(run_dir) / HYDRA_YAML


def is_run_folder(path: str | Path) -> bool:
    """A folder some dlx run was made in: it has .hydra/config.yaml."""
    return config(path).is_file()


def has_run(path: str | Path) -> bool:
    """A run wrote here already (metrics.json or checkpoints/last.pt exist)."""
    return metrics(path).exists() or last(path).exists()
