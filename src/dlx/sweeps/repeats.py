"""Repeats: each configuration of a sweep trained N times with different `seed`s on one split.

`dlx sweep ... --repeat N` (or `repeat=N`) becomes `hydra.sweeper.repeat=N` on dlx's sweeper
(a plain grid goes through `hydra/sweeper=dlx_grid`). The sweeper runs repeat r of a
configuration with `seed=BASE+r` and `data.seed` pinned to the split the config names (by
default the base seed's), so repeats measure the training's own noise on the same test set.
Every repeat is a trial folder of its own (`dlx runs`, resume and the summary see ordinary
runs); an Optuna trial is its N repeats, told the mean of their monitored values.
A swept `seed=0,1,2` is recognised as repeats too: its split is pinned the same way.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from dlx.errors import UserError
from dlx.record import status as st
from dlx.sweeps.groups import override_key

MAX_REPEAT = 100
DLX_GRID = "hydra/sweeper=dlx_grid"


def cv_folds(overrides: list[str]) -> int:
    """K of a `cv.folds=K` override (K >= 2) without a `cv.fold`, else 0: then every fold is a
    run of a sweep."""
    if any(override_key(o) == "cv.fold" for o in overrides):
        return 0
    for o in overrides:
        if override_key(o) == "cv.folds":
            value = o.partition("=")[2].strip()
            return int(value) if value.isdigit() and int(value) >= 2 else 0
    return 0


def _count(value: Any, where: str) -> int:
    try:
        n = int(str(value))
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_REPEAT or str(value).strip() != str(n):
        raise UserError(
            f"`{where}`: repeats are a whole number from 1 to {MAX_REPEAT} "
            "(each configuration trains that many times, with seeds BASE, BASE+1, ...).",
            key="--repeat",
        )
    return n


def with_repeats(overrides: list[str], repeat: int | None = None) -> list[str]:
    """The sweep's overrides with `repeat=N` / `--repeat N` turned into the sweeper's
    `hydra.sweeper.repeat=N`, and a swept `seed=a,b,c` given one split (`data.seed`)."""
    typed = [o for o in overrides if override_key(o) == "repeat"]
    rest = [o for o in overrides if override_key(o) != "repeat"]
    n = _count(repeat, f"--repeat {repeat}") if repeat is not None else 1
    for o in typed:
        m = _count(o.partition("=")[2], o)
        if repeat is not None and m != n:
            raise UserError(f"`{o}` and `--repeat {repeat}` disagree: give one.", key="--repeat")
        n = m
    keys = {override_key(o): o for o in rest}
    seeds = keys.get("seed", "").partition("=")[2]
    if cv_folds(rest) and "cv.fold" not in keys:  # the sweeper runs every fold
        if "hydra/sweeper" not in keys and "hparams_search" not in keys:
            rest.append(DLX_GRID)
        if n == 1:
            return rest
    if n > 1:
        if "seed" in keys and "," in seeds:
            raise UserError(
                f"`{keys['seed']}` and {n} repeats: the repeats choose the seeds "
                "(BASE, BASE+1, ...); give `seed=BASE` or drop the repeats.",
                key="--repeat",
            )
        if not {"hydra/sweeper", "hparams_search"} & set(keys) and rest[-1:] != [DLX_GRID]:
            rest.append(DLX_GRID)  # Hydra's own grid cannot repeat
        return [*rest, f"hydra.sweeper.repeat={n}"]
    if "," in seeds and "data.seed" not in keys and "(" not in seeds:
        first = seeds.split(",")[0].strip()
        rest.append(f"++data.seed={first}")  # seed=0,1,2 repeats one split, as --repeat does
    return rest


def repeat_extras(config: Any, n: int, swept: set[str] = frozenset()) -> list[list[str]]:
    """The overrides of repeat 0..n-1: `seed=BASE+r` and the split pinned (`data.seed`); with
    `cv.folds=K` (and no `cv.fold` swept), each of those for every fold `cv.fold=0..K-1`."""
    seeds: list[list[str]] = [[]]
    if n > 1:
        base = int(OmegaConf.select(config, "seed", default=0) or 0)
        split = OmegaConf.select(config, "data.seed", default=None)
        split = base if split is None else int(split)
        seeds = [[f"seed={base + r}", f"++data.seed={split}"] for r in range(n)]
    k = OmegaConf.select(config, "cv.folds", default=None)
    if not k or int(k) < 2 or "cv.fold" in swept:
        return seeds
    return [[*s, f"cv.fold={f}"] for s in seeds for f in range(int(k))]


def without_keys(overrides: list[str], extra: list[str]) -> list[str]:
    """A configuration's overrides without those the repeats set (`seed`, `cv.fold`...)."""
    keys = {override_key(e) for e in extra}
    return [o for o in overrides if override_key(o) not in keys]


def outcome(folders: list[Path]) -> tuple[str, float | None]:
    """What an Optuna trial of N repeats tells the study: ("complete", mean of the finished
    repeats' monitored values), ("pruned", None) when the pruner stopped a repeat, or
    ("fail", None) when none finished."""
    from dlx.sweeps.summary import read_trial_metrics

    values, pruned = [], False
    for folder in folders:
        m = read_trial_metrics(folder) or {}
        value = m.get("best_value")
        if m.get("status") == st.PRUNED:
            pruned = True
        elif m.get("status") in st.OK and _finite(value):
            values.append(float(value))
    if pruned:
        return "pruned", None
    if not values:
        return "fail", None
    return "complete", sum(values) / len(values)


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
