"""A trial's config without composing it again (trials run in the sweep's own process).

Hydra composes every trial's config from the YAML files (~0.1 s a trial: defaults tree, file
loads, merges), and its grid sweeper composes each job once more to check the batch. The
trials of one sweep mostly differ in values only (`opt.lr=...`, `seed=...`, the trial number
Optuna's reporter reads), so `TrialConfigs.load_sweep_config` keeps the last trial's composed
config and gives the next one a copy with the changed values applied the way Hydra applies
command-line values (`_apply_overrides_to_config`), the override lists and
`hydra.job.override_dirname` recomputed. Anything else that changes (a config group, a
`+key` / `~key`, a key given twice, `hydra.searchpath`) is composed by Hydra in full, as
before. `reused_compositions` puts it under Hydra's config loader while a multirun runs.
"""

from __future__ import annotations

import contextlib
import copy
import os
import weakref
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict


@contextlib.contextmanager
def reused_compositions() -> Iterator[None]:
    """While a multirun runs in this process, every Hydra config loader composes a trial's
    config through a `TrialConfigs` of its own: Hydra's grid sweeper checks a batch by
    composing each job, the basic launcher composes each again, and dlx's sweeper launches
    trial after trial; those that differ from the last in values only are not composed again.
    Launchers in other processes (joblib, Ray, SLURM) compose there, as before."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    original = ConfigLoaderImpl.load_sweep_config
    trials: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def load_sweep_config(self, master_config, sweep_overrides):
        if self not in trials:
            trials[self] = TrialConfigs(_Composing(self, original))
        return trials[self].load_sweep_config(master_config, sweep_overrides)

    ConfigLoaderImpl.load_sweep_config = load_sweep_config
    try:
        yield
    finally:
        ConfigLoaderImpl.load_sweep_config = original


class _Composing:
    """Hydra's own load_sweep_config of `loader`, as `TrialConfigs` calls it."""

    def __init__(self, loader: Any, load: Any) -> None:
        self.loader, self.load = loader, load

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]):
        return self.load(self.loader, master_config, sweep_overrides)


class TrialConfigs:
    """A stand-in for Hydra's config loader that reuses the composition across trials."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.last: tuple[list[Any], DictConfig] | None = None  # parsed overrides, config

    def __getattr__(self, name: str) -> Any:  # everything else: Hydra's own loader
        return getattr(self.loader, name)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        lines = [*OmegaConf.to_container(master_config.hydra.overrides.hydra), *sweep_overrides]
        parsed = OverridesParser.create().parse_overrides(lines)
        cfg = self._reuse(master_config, parsed)
        if cfg is None:
            cfg = self.loader.load_sweep_config(master_config, list(sweep_overrides))
        # kept before the launcher and the job write into it (job id, output dir)
        self.last = (parsed, copy.deepcopy(cfg))
        return cfg

    def _reuse(self, master_config: DictConfig, parsed: list[Any]) -> DictConfig | None:
        changed = values_changed(self.last[0], parsed, self.last[1]) if self.last else None
        if changed is None:
            return None
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

        cfg = copy.deepcopy(self.last[1])
        ConfigLoaderImpl._apply_overrides_to_config(changed, cfg)
        job = cfg.hydra.job.config.override_dirname
        task = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.hydra = [o.input_line for o in parsed if o.is_hydra_override()]
            cfg.hydra.overrides.task = [o.input_line for o in task]
            cfg.hydra.runtime.cwd = os.getcwd()
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=task,
                kv_sep=job.kv_sep,
                item_sep=job.item_sep,
                exclude_keys=job.exclude_keys,
            )
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def values_changed(before: list[Any], after: list[Any], cfg: DictConfig) -> list[Any] | None:
    """The overrides of `after` that set another value than `before` did, position by
    position (the same keys in the same order), when that is all that changed; None when the
    composition itself may differ. A trial's own `hydra.` values (Optuna's trial number in
    `++hydra.job.env_set`) count as values."""
    if [o.key_or_group for o in before] != [o.key_or_group for o in after]:
        return None
    return value_changes(before, after, cfg, hydra_values=True)


def value_changes(
    before: list[Any], after: list[Any], cfg: DictConfig, hydra_values: bool = False
) -> list[Any] | None:
    """The overrides of `after` that add or change a value against `before` (`cfg` is what
    `before` composed to), when that is all that differs, in any order; None when the
    composition itself may differ (a config group, `+`/`~`, a key given twice, a non-`hydra.`
    override dropped, `hydra.searchpath`). Dropped `hydra.` overrides (the run folder) change
    only the `hydra` node; changed ones count as values with `hydra_values` (`++` too)."""
    from hydra.core.override_parser.types import OverrideType

    keys = [o.key_or_group for o in after]
    if len(set(keys)) != len(keys) or len({o.key_or_group for o in before}) != len(before):
        return None
    had = {o.key_or_group: o for o in before}
    dropped = set(had) - set(keys)
    if any(not k.startswith("hydra.") or k.startswith("hydra.search") for k in dropped):
        return None
    kinds = (
        (OverrideType.CHANGE, OverrideType.FORCE_ADD) if hydra_values else (OverrideType.CHANGE,)
    )
    groups = set(cfg.hydra.runtime.choices.keys())
    changed = []
    for b in after:
        a = had.get(b.key_or_group)
        if a is not None and a.input_line == b.input_line:
            continue
        if a is not None and (a.package, a.type) != (b.package, b.type):
            return None
        if b.type not in kinds or b.is_sweep_override() or b.package is not None:
            return None
        key = b.key_or_group
        if "/" in key or key in groups or key.startswith("hydra.search"):
            return None  # a config group, or where Hydra looks for them
        if key.startswith("hydra.") and not hydra_values:
            return None
        if "." not in key and not _plain_value(cfg, key):  # `reg=[l2,dropout]`: a group
            return None
        if a is None and OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
            return None  # a new key: Hydra refuses it without `+`, composing says so
        changed.append(b)
    return changed


_MISSING = object()


def _plain_value(cfg: DictConfig, key: str) -> bool:
    """A top-level key that holds a value (`seed`, `epochs`), not a config group's node (a
    list of choices such as `reg=[l2,dropout]` is not among Hydra's recorded choices)."""
    from omegaconf import ListConfig

    return key in cfg and not isinstance(cfg._get_node(key), (DictConfig, ListConfig))
