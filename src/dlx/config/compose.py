"""Where dlx's config groups live and how a config is composed (Hydra's compose API, as
`dlx train` would, without running), with Hydra's and OmegaConf's errors turned into one
clean message (`UserError`, exit 2) that names the key, the option, or the nearest key."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.config import shipped_conf, typos
from dlx.errors import UserError


def conf_dir() -> Path:
    """The shipped config groups: `dlx/conf` inside a wheel, `<repo>/conf` in a checkout."""
    found = shipped_conf()
    if found is not None:
        return found
    raise UserError("dlx's config groups are missing; reinstall dlx")


def _suffix(name: Any) -> str:
    return f"_{name}" if name not in (None, "", "None", "null") else ""


def register_resolvers() -> None:
    """Resolvers used by conf/config.yaml (the run folder's `_name` suffix)."""
    if not OmegaConf.has_resolver("dlx_suffix"):
        OmegaConf.register_new_resolver("dlx_suffix", _suffix)


def compose(
    overrides: Iterable[str] = (), config_dir: str | None = None, with_hydra: bool = False
) -> DictConfig:
    """Compose the config as `dlx train` would, without running; Hydra errors become UserError.
    `with_hydra` keeps the `hydra` node (run/sweep folders as configured, unresolved)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    overrides = list(overrides)
    if config_dir and not Path(config_dir).is_dir():
        raise UserError(
            f"`--config-dir {config_dir}`: no such folder. It takes a folder of your own config "
            "groups, laid out like dlx's (e.g. DIR/model/mine.yaml, then model=mine).",
            key="--config-dir",
        )
    _refuse_climbing_choices(overrides)
    if config_dir:
        overrides = [f"hydra.searchpath=[file://{Path(config_dir).resolve()}]", *overrides]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(conf_dir()), version_base="1.3", job_name="train"):
            cfg = hydra_compose("config", overrides=overrides, return_hydra_config=with_hydra)
    except Exception as exc:  # Hydra/OmegaConf errors: shown cleanly, exit 2
        raise hydra_error(exc, overrides, config_dir) from None
    finally:
        GlobalHydra.instance().clear()
    _refuse_unread_additions(overrides, cfg, config_dir)
    return cfg


# Blocks of plain dlx settings: a key added there (`+early_stopping.foo=1`) is read by nothing.
_PLAIN_BLOCKS = ("reg", "early_stopping", "trainer", "log")


def _refuse_unread_additions(overrides: list[str], cfg: DictConfig, config_dir: str | None) -> None:
    """`+foo=1` / `+epoch=5` add a key that nothing reads: refused like `epoch=5` (the run
    would silently ignore it). `+KEY` stays for the blocks whose keys become arguments
    (`+opt.foo`, `+model.foo`, checked against what the target takes) and for Hydra's own."""
    for o in overrides:
        if not o.startswith("+"):
            continue
        key = o.lstrip("+").split("=", 1)[0].strip()
        head = key.split(".", 1)[0]
        if head == "hydra" or head in groups() or "/" in key:
            continue
        if "." in key and head not in _PLAIN_BLOCKS:
            continue
        err = _unknown_key(key, [x for x in overrides if x != o], config_dir)
        if err is not None:
            raise UserError(
                f"{err} `+{key}` adds a key, but nothing in dlx reads it.", key=key
            ) from None


def _unparsable(overrides: Iterable[str]) -> str | None:
    """The first override Hydra's grammar rejects (its own message does not say which)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_override(override)
        except Exception:
            return override
    return None


def group_options(group: str, config_dir: str | None = None) -> list[str]:
    """The options of a config group (`conf/<group>/*.yaml`, plus a user's --config-dir)."""
    folders = [conf_dir() / group] + ([Path(config_dir) / group] if config_dir else [])
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def _refuse_climbing_choices(overrides: list[str]) -> None:
    """`model=../opt/adam` would load another group's file as the model (exit 1 later): a
    group's option is a name inside that group's folder, never a path out of it."""
    import re

    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        head = key.strip().split("@")[0].split("/")[0]
        if (head in groups() or "/" in key) and re.search(r"(^|[/,(\[\s'\"])\.\.([/\\]|$)", value):
            raise UserError(
                f"`{o}`: a config group's option is a name in conf/{key.strip()}/ (or your "
                "--config-dir), not a path out of it.",
                key=key.strip(),
            )


@functools.cache
def groups() -> frozenset[str]:
    """dlx's config groups: the folders of conf/ (data, model, opt, reg, ...)."""
    return frozenset(p.name for p in conf_dir().iterdir() if p.is_dir())


def hydra_error(
    exc: BaseException, overrides: Iterable[str] = (), config_dir: str | None = None
) -> UserError:
    """Turn Hydra's and OmegaConf's own exceptions into one clean message."""
    import re

    msg = str(exc).strip()
    if type(exc).__name__ == "OverrideParseException":
        slip = typos.missing_equals([o for o in overrides if not o.startswith("hydra.searchpath")])
        if slip is not None and "EQUAL" in msg:
            return slip
        bad = _unparsable(overrides)
        if bad is not None:
            key = bad.split("=", 1)[0].lstrip("+~")
            msg = f"Cannot parse the override `{bad}` (key `{key}`): {msg}"
    missing = re.search(r"Could not (?:load|find) '([\w/]+)/([^'/]+)'", msg)
    if missing:
        group, option = missing.groups()
        options = group_options(group, config_dir)
        if options and option not in options:
            near = typos.nearest_option(option, options)
            hint = f" Did you mean `{near}`?" if near else ""
            msg = (
                f"Unknown option `{option}` for the config group `{group}`.{hint}\n"
                f"Available options in '{group}': {', '.join(options)}"
            )
    cause = exc.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in msg:
        msg = f"{msg}\n{str(cause).strip()}"
    # Hydra lists the valid options in "Available options:"; keep its text, drop the noise.
    msg = msg.split("\nConfig search path:")[0].rstrip()
    msg = msg.replace("\n    full_key: ", "\n  key: ").replace("\n    object_type=", "\n  in: ")
    twice = re.search(r"Multiple values for ([\w/]+)\.", msg)
    if twice:  # `+experiment=x`: the group is in the defaults list already
        group = twice.group(1)
        opt = next(
            (o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith(group + "=")), "NAME"
        )
        return UserError(
            f"`+{group}=...`: `{group}` is a config group dlx already has (it is in the defaults "
            f"list), so `+` would add it a second time. Choose it without the plus: "
            f"`dlx train {group}={opt}`.",
            key=group,
        )
    unknown = re.search(r"Could not override '([^']+)'", msg)
    if unknown and "not in struct" in msg:
        return _unknown_key(unknown.group(1), list(overrides), config_dir) or UserError(msg)
    if "Could not override" in msg or "Key '" in msg and "not in struct" in msg:
        msg += "\n(use `dlx config` to see every key; `+key=value` adds a new one)"
    return UserError(msg)


def _unknown_key(key: str, overrides: list[str], config_dir: str | None) -> UserError | None:
    """`opt.lrr=0.1`: one line naming the key, the keys that are there, and the nearest one."""
    import difflib

    parent, _, leaf = key.rpartition(".")
    rest = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
    try:
        cfg = compose(rest, config_dir)
    except UserError:
        return None
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig):
        return None
    keys = sorted(str(k) for k in node.keys() if not str(k).startswith("_"))
    near = difflib.get_close_matches(leaf, keys, n=1)
    hint = f" Did you mean `{parent + '.' if parent else ''}{near[0]}`?" if near else ""
    where = f"`{parent}`" if parent else "the top level"
    return UserError(
        f"Unknown key `{key}`.{hint} Keys in {where}: {', '.join(keys)}. "
        "(`dlx config` prints them all.)",
        key=key,
    )
