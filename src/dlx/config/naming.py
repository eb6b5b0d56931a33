"""The run name of a preset under overrides.

An `experiment=` preset names its runs (`name: overfitting` -> outputs/DATE/TIME_overfitting).
A run that changes what the preset sets is no longer that preset: its name says what was
overridden, `overfitting+limit=null` for `experiment=overfitting data.limit=null`, and with
more than three such changes the preset's name is dropped (no suffix). Overrides of keys the
preset leaves alone (`log.graph=false`), and a `name=` of the user's, keep the name as it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

MAX_CHANGES = 3


def _preset(overrides: list[str]) -> str | None:
    values = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("experiment=")]
    if len(values) != 1 or any(c in values[0] for c in ",[]()*"):  # one preset, not a sweep
        return None
    return values[0].strip("'\"") or None


def _flat(node: Any, prefix: str = "") -> set[str]:
    if not isinstance(node, dict):
        return {prefix} if prefix else set()
    out = {prefix} if prefix else set()
    for k, v in node.items():
        out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def preset_keys(preset: str, config_dir: str | None = None) -> tuple[str | None, set[str]]:
    """The preset's own name and every key it sets (`model` for `override /model: mlp`)."""
    import yaml

    from dlx.config.compose import conf_dir

    roots = ([Path(config_dir)] if config_dir else []) + [conf_dir()]
    found = [r / "experiment" / f"{preset}.yaml" for r in roots]
    path = next((p for p in found if p.is_file()), found[-1])
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None, set()
    if not isinstance(data, dict):
        return None, set()
    keys = _flat({k: v for k, v in data.items() if k not in ("defaults", "name")})
    for entry in data.get("defaults") or []:
        if isinstance(entry, dict):
            keys |= {str(k).replace("override", "").strip(" /") for k in entry}
    name = data.get("name")
    return (str(name) if name else None), keys


def preset_run_name(overrides: list[str], config_dir: str | None = None) -> str | None | bool:
    """The name a preset's run gets under `overrides` (None: no name), or False when the
    preset's own name stands (no preset, a `name=` of the user's, nothing of it changed)."""
    preset = _preset(overrides)
    if preset is None or any(o.lstrip("+").startswith("name=") for o in overrides):
        return False
    name, keys = preset_keys(preset, config_dir)
    if not name:
        return False
    changed = []
    for o in overrides:
        key, eq, value = o.lstrip("+~").partition("=")
        if key == "experiment" or not eq:
            continue
        if any(key == k or key.startswith(k + ".") or k.startswith(key + ".") for k in keys):
            changed.append(f"{key.rsplit('.', 1)[-1]}={value}")
    if not changed:
        return False
    if len(changed) > MAX_CHANGES:
        return None
    return re.sub(r"[^\w.+=-]", "_", "+".join([name, *changed]))


def rename(cfg: Any, overrides: list[str], config_dir: str | None = None) -> None:
    """Set the composed config's `name` (the run folder's suffix) by the rule above."""
    from omegaconf import open_dict

    new = preset_run_name(overrides, config_dir)
    if new is not False:
        with open_dict(cfg):
            cfg.name = new
