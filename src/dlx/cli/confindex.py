"""What the config groups offer, read straight from their YAML files: no Hydra, no OmegaConf,
no torch. It feeds `dlx train --help` (the groups, their options, the top-level keys) and the
shell completion of overrides (`model=<TAB>`, `opt.<TAB>`), which must answer at once.

A user's `--config-dir` adds its groups and options, as it does for Hydra.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from dlx.config import shipped_conf

# Blocks and keys Hydra owns, and the defaults list: not dlx's keys to list or complete.
_NOT_KEYS = {"defaults", "hydra"}


def _dirs(config_dir: str | None) -> list[Path]:
    dirs = [d for d in (shipped_conf(),) if d is not None]
    if config_dir and Path(config_dir).is_dir():
        dirs.append(Path(config_dir))
    return dirs


def groups(config_dir: str | None = None) -> dict[str, list[str]]:
    """Config group -> its options (the YAML files of conf/GROUP/, and of DIR/GROUP/)."""
    out: dict[str, set[str]] = {}
    for d in _dirs(config_dir):
        for sub in d.iterdir():
            if sub.is_dir() and sub.name != "hydra" and not sub.name.startswith((".", "_")):
                names = {p.stem for p in sub.glob("*.yaml")}
                if names:
                    out.setdefault(sub.name, set()).update(names)
    return {g: sorted(opts) for g, opts in sorted(out.items())}


@functools.cache
def _load(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def defaults() -> dict[str, str | None]:
    """The primary config's defaults list: group -> its default option (None: not chosen)."""
    root = shipped_conf()
    out: dict[str, str | None] = {}
    if root is None:
        return out
    for entry in _load(root / "config.yaml").get("defaults", []):
        if isinstance(entry, dict):
            for k, v in entry.items():
                if not str(k).startswith("override "):
                    out[str(k)] = None if v is None else str(v)
    return out


def top_keys() -> dict[str, Any]:
    """The primary config's own keys (epochs, batch_size, early_stopping, ...) and values."""
    root = shipped_conf()
    cfg = _load(root / "config.yaml") if root else {}
    return {k: v for k, v in cfg.items() if k not in _NOT_KEYS}


def option_keys(group: str, option: str | None, config_dir: str | None = None) -> dict[str, Any]:
    """The keys an option's YAML sets (`opt=sgd`: lr, momentum, ...), without `_target_` &c."""
    if not option:
        return {}
    for d in reversed(_dirs(config_dir)):  # a user's own file wins, as in Hydra's search path
        path = d / group / f"{option}.yaml"
        if path.is_file():
            data = _load(path)
            if isinstance(data, dict):
                return {k: v for k, v in data.items() if not str(k).startswith(("_", "defaults"))}
    return {}


def keys_under(
    prefix: str, chosen: dict[str, str], config_dir: str | None = None
) -> dict[str, Any]:
    """The keys below `prefix` (e.g. `opt`, `early_stopping`): the primary config's block
    merged with the chosen option's file (`chosen` holds the groups picked on the command
    line; the defaults list otherwise)."""
    head, *rest = prefix.split(".")
    node: Any = dict(top_keys().get(head) or {}) if isinstance(top_keys().get(head), dict) else {}
    if head in groups(config_dir):
        option = chosen.get(head, defaults().get(head))
        node.update(option_keys(head, option, config_dir))
    for part in rest:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def help_rows(config_dir: str | None = None) -> list[tuple[str, str]]:
    """`dlx train --help`'s closing part, as a Hydra app's --help has it: every group with its
    options (the default marked *), then the top-level keys and an example."""
    found = defaults()
    rows = []
    for group, options in groups(config_dir).items():
        default = found.get(group)
        rows.append((group, ", ".join(f"{o}*" if o == default else o for o in options)))
    keys = top_keys()
    plain = [k for k, v in keys.items() if not isinstance(v, dict)]
    blocks = [f"{k}.*" for k, v in keys.items() if isinstance(v, dict)]
    rows.append(("keys", ", ".join(plain + blocks)))
    rows.append(("e.g.", "dlx train model=mlp opt=sgd opt.lr=0.1 'reg=[l2,dropout]' epochs=10"))
    rows.append(("see", "dlx config (every key and value); dlx train --cfg job (the same)"))
    return rows


def _config_dir_in(words: list[str]) -> str | None:
    for i, w in enumerate(words):
        if w == "--config-dir" and i + 1 < len(words):
            return words[i + 1]
        if w.startswith("--config-dir="):
            return w.split("=", 1)[1]
    return None


def complete(words: list[str], incomplete: str, config_dir: str | None = None) -> list[str]:
    """Completions of the override being typed, as whole words (`model=mlp`, `opt.lr=`);
    `words` are those before it. The shell scripts (cli/completion.py) trim them for bash."""
    config_dir = config_dir or _config_dir_in(words)
    found = groups(config_dir)
    chosen = {}
    for w in words:
        k, eq, v = w.lstrip("+~").partition("=")
        if eq and k in found:
            chosen[k] = v
    if "=" in incomplete:
        key, _, typed = incomplete.partition("=")
        return [f"{key}={v}" for v in _values(key, typed, found, chosen, config_dir)]
    plus = incomplete[: len(incomplete) - len(incomplete.lstrip("+~"))]
    bare = incomplete[len(plus) :]
    if "." in bare:
        prefix, _, _leaf = bare.rpartition(".")
        keys = keys_under(prefix, chosen, config_dir)
        out = [
            f"{plus}{prefix}.{k}" + ("." if isinstance(v, dict) else "=") for k, v in keys.items()
        ]
    else:
        out = [f"{plus}{g}=" for g in found]
        for k, v in top_keys().items():
            if k not in found:
                out.append(f"{plus}{k}" + ("." if isinstance(v, dict) else "="))
        out += [f"{plus}{g}." for g in found if keys_under(g, chosen, config_dir)]
    return sorted({c for c in out if c.startswith(incomplete)})


def _values(
    key: str, typed: str, found: dict[str, list[str]], chosen: dict, config_dir: str | None
) -> list[str]:
    key = key.lstrip("+~")
    options = found.get(key)
    if options is None:  # a plain key: offer its current value, if it is a short scalar
        parent, _, leaf = key.rpartition(".")
        node = keys_under(parent, chosen, config_dir) if parent else top_keys()
        value = node.get(leaf) if isinstance(node, dict) else None
        if value is None or isinstance(value, (dict, list)):
            return []
        options = [str(value).lower() if isinstance(value, bool) else str(value)]
    return [o for o in options if o.startswith(typed)]
