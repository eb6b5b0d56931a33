"""A sweep folder's saved overrides are data: every value they can give a trial is checked.

`dlx sweep --resume SWEEP_DIR` runs what multirun.yaml (and, for trials the sweep had asked
for but never finished, the study journal) says. A `_target_` can hide anywhere in that: in
one choice of a `choice(...)` that Optuna samples later, in a grid combination far down the
product, in `hydra.sweeper.params.*`, in a journal trial's overrides. So every override is
parsed, and every distinct value of every key (each element of a choice, the single value of
a fixed override; ranges and intervals are numbers) is checked on its own, lazily: a grid of
a million combinations costs the sum of its values, not their product. A value passes when
- every `_target_` in it is one dlx builds at that key (`config.trust.allowed`),
- its interpolations are plain references to other keys (no resolver: `${oc.env:..}` would
  read the environment, `${oc.decode:..}` build a node),
- a config group's choice is a plain option name (`model=../opt/adam` reads another group),
- no key names code (`_args_`, `_partial_`, `callbacks`, `env_set`, a launcher's `setup`).
Anything else is a UserError (exit 2) naming the file and the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlx.errors import UserError

_CODE = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_", "callbacks", "env_set")
_OPTION = re.compile(r"[\w\-]+(/[\w\-]+)*")
_RESOLVER = re.compile(r"\$\{\s*[\w.\-]+\s*:")


def _say(source: str, key: str, why: str) -> UserError:
    from dlx.record.text import plain_text

    return UserError(
        f"{plain_text(source, 300)}: `{plain_text(key, 200)}` {why}. A sweep folder's saved "
        "overrides are data, not code; start that sweep again by hand if you trust them.",
        key=plain_text(key, 200),
    )


def groups(config_dir: str | None) -> frozenset[str]:
    """The config groups a choice can name: dlx's own, and a --config-dir's."""
    from dlx.config.compose import conf_dir

    found = {p.name for p in conf_dir().iterdir() if p.is_dir()}
    if config_dir and Path(config_dir).is_dir():
        found |= {p.name for p in Path(config_dir).iterdir() if p.is_dir()}
    return frozenset(found)


def parse(overrides: list[str], source: str) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:  # noqa: BLE001 - Hydra's grammar errors
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "cannot parse"
        raise _say(source, "overrides", f"cannot be parsed ({first})") from None


def values_of(o: Any) -> Iterator[Any]:
    """The plain values an override can give a trial, one by one (never the product)."""
    from hydra.core.override_parser.types import Override

    if not o.is_sweep_override():
        yield o.value()
    elif o.is_choice_sweep():
        v = o.value()
        for element in getattr(v, "list", None) or []:  # a glob names options: checked by Hydra
            yield Override._convert_value(element)
    # range(...) and interval(...) sweep numbers only


def _nodes(value: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(key path, key, value) of every entry in a plain value tree, iteratively."""
    stack = [(path, None, value)]
    while stack:
        where, key, node = stack.pop()
        yield where, key, node
        if isinstance(node, dict):
            stack.extend((f"{where}.{k}", k, v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", None, v) for i, v in enumerate(node))


def check_value(key: str, value: Any, source: str, user: frozenset[str], group: bool) -> None:
    """Refuse a value a trial must not get at `key` (see the module doc)."""
    from dlx.config.trust import allowed

    if group:
        if not (isinstance(value, str) and _OPTION.fullmatch(value)) and value is not None:
            raise _say(source, key, f"chooses `{str(value)[:80]}`, not a plain option name")
        return
    for where, k, node in _nodes(value, key):
        if isinstance(k, str) and ("${" in k or (k.startswith("_") and k in _CODE[1:5])):
            raise _say(source, where, "is a key dlx does not read from a sweep folder")
        if k == "_target_" and not allowed(where, node, user):
            raise _say(source, where, f"names `{str(node)[:200]}`, which dlx does not build")
        if isinstance(node, str) and "${" in node and _RESOLVER.search(node):
            raise _say(source, where, "calls a resolver (only references `${other.key}` may)")


class Checker:
    """Checks override lists against one sweep's rules, each (key, value) once."""

    def __init__(self, config_dir: str | None, source: str) -> None:
        from dlx.config.trust import user_targets

        self.source = source
        self.user = user_targets(config_dir)
        self.groups = groups(config_dir)
        self.seen: set[tuple[str, str]] = set()
        self.keys: set[str] = set()  # every key a trial of the sweep may set
        self.fixed_groups: dict[str, str] = {}

    def key_of(self, o: Any) -> str:
        key = o.key_or_group
        if o.package is not None or "@" in o.input_line.partition("=")[0]:
            raise _say(self.source, key, "names a package (`@`)")
        if any(c in key for c in _CODE) or "${" in key:
            raise _say(self.source, key, "names code")
        return key

    def check(self, overrides: list[str], hydra_ok: bool = False) -> list[Any]:
        parsed = parse(overrides, self.source)
        for o in parsed:
            key = self.key_of(o)
            if key.startswith("hydra") and not hydra_ok:
                raise _say(self.source, key, "sets Hydra's own settings in a trial's overrides")
            group = key.split("/")[0] in self.groups and "." not in key or "/" in key
            for value in values_of(o):
                mark = (key, repr(value))
                if mark in self.seen:
                    continue
                self.seen.add(mark)
                check_value(key, value, self.source, self.user, group)
        return parsed


def check_sweep_overrides(
    task: list[str], params: list[str], config_dir: str | None, source: str
) -> Checker:
    """Every value of every override of a sweep folder (task overrides and the search space
    `hydra.sweeper.params.KEY=...` as `KEY=...`), then the first trial's whole config composed
    and its targets checked (an interpolation can assemble a node). Returns the checker (the
    journal's trials go through it too)."""
    from omegaconf import OmegaConf, open_dict

    from dlx.config.compose import compose
    from dlx.config.trust import _targets_in, allowed

    checker = Checker(config_dir, source)
    parsed = checker.check([*task, *params])
    first = []
    for o in parsed:
        if o.is_sweep_override():
            values = list(values_of(o))[:1]
            if not values:
                continue
            first.append(f"{o.get_key_element()}={_as_override(values[0])}")
        else:
            first.append(o.input_line)
    cfg = compose(first, config_dir, with_hydra=True)
    space = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    checker.keys = {*(o.key_or_group for o in parsed), *(str(k) for k in space)}
    checker.fixed_groups = {  # the group choices every trial shares (hparams_search=optuna)
        o.key_or_group: o.get_value_element_as_str()
        for o in parsed[: len(task)]
        if not o.is_sweep_override() and o.key_or_group in checker.groups and not o.is_delete()
    }
    with open_dict(cfg):
        del cfg["hydra"]  # Hydra's own (its interpolations resolve only inside a run)
    try:
        tree = OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:  # noqa: BLE001 - an interpolation that does not resolve
        first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "error"
        raise _say(source, "overrides", f"cannot be resolved ({first_line})") from None
    for path, target in _targets_in(tree):
        if not allowed(path, target, checker.user):
            raise _say(source, path, f"names `{str(target)[:200]}`, which dlx does not build")
    return checker


def _as_override(value: Any) -> str:
    """A plain value back in Hydra's override grammar."""
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool) or value is None:
        return "null" if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_as_override(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_as_override(v)}" for k, v in value.items()) + "}"
    return quote(str(value))


def quote(value: str) -> str:
    """A string as one quoted Hydra override value: quotes escaped, and the backslashes before
    a quote or at the end doubled (`dir\\` must not escape the closing quote)."""
    value = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value)
    return "'" + value.replace("'", "\\'") + "'"
