"""Preflight: before Hydra starts (and makes a run folder), compose and validate the config
of the run, or of every trial of a grid sweep, so bad input exits 2 with one message and
leaves nothing behind."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from dlx.config.compose import compose, conf_dir
from dlx.config.hydra_internals import sweep_combinations
from dlx.config.rules import validate
from dlx.launch.runfolders import check_writable, free_space_at_start, override_value

log = logging.getLogger("dlx")


def preflight(
    overrides: list[str], multirun: bool = False, config_dir: str | None = None
) -> DictConfig:
    """Compose and validate before any work (and before Hydra makes a run folder)."""
    return preflight_with_folders(overrides, multirun, config_dir)[0]


def preflight_with_folders(
    overrides: list[str], multirun: bool, config_dir: str | None
) -> tuple[DictConfig, set[str]]:
    """`preflight`, and which of `hydra.run.dir` / `hydra.sweep.dir` the composed config sets
    to a folder of its own (a user's config, say) rather than dlx's default."""
    combos = sweep_combinations(overrides) if multirun else [overrides]
    cfg = None
    chosen: set[str] = set()
    sized = []  # each trial's config, for the memory estimate below
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
        sized.append(cfg)
    from dlx.training.device import check_speed_options, resolve_device

    device = resolve_device(cfg.device.type)
    check_speed_options(cfg, device)
    from dlx.launch.capacity import check_capacity

    for trial in sized:  # sizes nobody can allocate: refused before anything is built
        check_capacity(trial, device)
    from dlx.training.world import check_devices

    check_devices(cfg, multirun)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = override_value(overrides, key)
    if folder is not None:
        check_writable(Path(folder), key)
    free_space_at_start(Path(folder) if folder is not None else Path("outputs"), key)
    return cfg, chosen


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
    from dlx.launch.preflight import preflight

    saved = Singleton._instances.get(GlobalHydra)
    saved_hydra = saved.hydra if saved is not None else None
    try:
        preflight(list(overrides), False, config_dir)
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
