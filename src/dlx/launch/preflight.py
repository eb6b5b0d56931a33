"""Preflight: before Hydra starts (and makes a run folder), compose and validate the config
of the run, or of every trial of a grid sweep, so bad input exits 2 with one message and
leaves nothing behind."""

from __future__ import annotations

import copy
import functools
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from dlx.config.compose import compose, conf_dir
from dlx.config.hydra_internals import sweep_combinations
from dlx.config.rules import validate
from dlx.launch.runfolders import check_writable, free_space_at_start, override_value

log = logging.getLogger("dlx")


# configs this process composed lately: (config dir, parsed overrides, config with `hydra`)
_COMPOSED: list[tuple[str | None, list, DictConfig]] = []


def preflight(
    overrides: list[str], multirun: bool = False, config_dir: str | None = None
) -> DictConfig:
    """Compose and validate before any work (and before Hydra makes a run folder)."""
    return preflight_with_folders(overrides, multirun, config_dir)[0]


def preflight_with_folders(
    overrides: list[str], multirun: bool, config_dir: str | None, reuse: bool = False
) -> tuple[DictConfig, set[str]]:
    """`preflight`, and which of `hydra.run.dir` / `hydra.sweep.dir` the composed config sets
    to a folder of its own (a user's config, say) rather than dlx's default. `reuse`: a
    config this process composed lately, with new values applied, stands in for composing
    (a suggestion's check: the run's own overrides and a changed value or two)."""
    combos = sweep_combinations(overrides) if multirun else [overrides]
    cfg = None
    chosen: set[str] = set()
    sized = []  # each trial's config, for the memory estimate below
    first: tuple[list, DictConfig] | None = None  # the first trial, parsed and composed
    for i, combo in enumerate(combos[:64]):
        cfg = _applied(first, combo) if first is not None else None
        if cfg is None and reuse and not multirun:
            cfg = _recent(combo, config_dir)
        if cfg is None:
            cfg = compose(combo, config_dir, with_hydra=True)
            if first is None:
                first = (_parse(combo), copy.deepcopy(cfg))
                _COMPOSED.append((config_dir, first[0], first[1]))
                del _COMPOSED[:-4]
        if i == 0 and "hydra" in cfg:
            hydra = OmegaConf.to_container(cfg.hydra, resolve=False)
            chosen = {
                f"hydra.{k}.dir"
                for k in ("run", "sweep")
                if str(hydra[k]["dir"]) != _default_dir(k)
            }
        with open_dict(cfg):
            cfg.pop("hydra", None)
        validate(cfg)
        sized.append(cfg)
    from dlx.training.device import check_speed_options, resolve_device

    device = resolve_device(cfg.device.type)
    check_speed_options(cfg, device)
    from dlx.launch.capacity import check_capacity

    for trial in sized:  # sizes nobody can allocate: refused before anything is built
        check_capacity(trial, device)  # each size estimated once (seeds, learning rates)
    from dlx.training.world import check_devices

    check_devices(cfg, multirun)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = override_value(overrides, key)
    if folder is not None:
        check_writable(Path(folder), key)
    free_space_at_start(Path(folder) if folder is not None else Path("outputs"), key)
    return cfg, chosen


def _parse(combo: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(combo)


def _applied(base: tuple[list, DictConfig], overrides: list[str]) -> DictConfig | None:
    """`overrides`' config as `base`'s (parsed overrides, composed config) with the values
    they add or change applied the way Hydra applies them (`dlx.sweeps.trialconfig.
    value_changes`: values only, no config group), ~0.1-0.5 s less than composing; None where
    it must be composed (or where applying fails: composing then names what is wrong)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from dlx.sweeps.trialconfig import value_changes

    try:
        changed = value_changes(base[0], _parse(overrides), base[1])
        if changed is None:
            return None
        cfg = copy.deepcopy(base[1])
        ConfigLoaderImpl._apply_overrides_to_config(changed, cfg)
        return cfg
    except Exception:  # noqa: BLE001 - composed instead, which names what is wrong
        return None


def _recent(overrides: list[str], config_dir: str | None) -> DictConfig | None:
    """`overrides`' config from one this process composed lately (`_applied`); its `hydra`
    node dropped (the run folders may differ). None when none fits."""
    for cdir, *base in reversed(_COMPOSED):
        cfg = _applied(tuple(base), overrides) if cdir == config_dir else None
        if cfg is not None:
            with open_dict(cfg):
                del cfg["hydra"]
            return cfg
    return None


@functools.cache
def _default_dir(kind: str) -> str:
    """dlx's own `hydra.run.dir` / `hydra.sweep.dir` (kind run / sweep) pattern, unresolved."""
    node = OmegaConf.load(conf_dir() / "config.yaml")
    return str(OmegaConf.to_container(node.hydra, resolve=False)[kind]["dir"])


def passes_preflight(overrides: list[str], config_dir: str | None) -> bool:
    """Would `dlx train OVERRIDES` start? The same preflight, without touching the Hydra app
    that may be running this very run (its global state is put back)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.singleton import Singleton

    from dlx.errors import UserError

    saved = Singleton._instances.get(GlobalHydra)
    saved_hydra = saved.hydra if saved is not None else None
    try:
        preflight_with_folders(list(overrides), False, config_dir, reuse=True)
        return True
    except UserError as exc:
        log.debug("suggestion %s refused: %s", overrides, exc)
        return False
    except Exception as exc:  # noqa: BLE001 - a suggestion that cannot be checked is not shown
        log.debug("suggestion %s not checked: %r", overrides, exc)
        return False
    finally:
        if saved is not None:
            Singleton._instances[GlobalHydra] = saved
            saved.hydra = saved_hydra
