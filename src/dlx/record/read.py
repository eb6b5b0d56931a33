"""Everything dlx reads back from a run or sweep folder is parsed here, with bounded resources.

A folder may come from someone else, so its files are data of unknown size and shape:
- a size cap per file, and only regular files (a FIFO or a device never blocks a read);
- YAML without anchors and aliases (a 500-byte alias bomb expands to gigabytes), at most
  `MAX_DEPTH` levels deep and `MAX_NODES` nodes, safe tags only (nothing is built);
- JSON within the same caps;
- interpolations (`${...}`) limited to plain references to other keys, whose expansion is
  bounded (`${a}${a}` chains double at every level), and to the exact resolver calls dlx's
  own configs hold (`${oc.env:DLX_DATA,...}` at `data.root`): any other resolver (`oc.env`
  reading a secret, `oc.decode` building a node) is refused.

Every refusal is a `UserError` (exit 2) naming the file and the key, in one line. Callers get
plain containers (dict, list, str, numbers) that the rest of dlx checks by value.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from dlx.errors import UserError

YAML_CAP = 4 << 20  # a run's config.yaml is a few KiB; multirun.yaml and hydra.yaml too
JSON_CAP = 64 << 20  # metrics.json with a long history
MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_EXPANDED = 1 << 20  # characters an interpolated value may expand to

_REF = re.compile(r"\$\{([^${}]*)\}")
_RESOLVER = re.compile(r"\$\{\s*([\w.\-]+)\s*:")
_PLAIN_KEY = re.compile(r"\.*[\w\-\[\]]+(\.[\w\-\[\]]+)*")


def _refuse(source: str | Path, key: str, why: str) -> UserError:
    from dlx.record.text import plain_text

    return UserError(f"{plain_text(source, 300)}: {why}", key=plain_text(key, 200))


def read_bytes(path: str | Path, cap: int, key: str = "") -> bytes:
    """A regular file's bytes, refused (UserError) when larger than `cap`."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise _refuse(path, key or str(path), f"cannot read it ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, key or str(path), "not a regular file")
        if st.st_size > cap:
            raise _refuse(
                path,
                key or str(path),
                f"{st.st_size:,} bytes, more than the {cap:,} dlx reads from such a file",
            )
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _check_events(text: str, source: str | Path) -> None:
    """One pass over the YAML events (C parser when there): no anchor, no alias, bounded
    depth and size. Nothing is built yet, so a bomb costs its own bytes only."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise _refuse(
                    source,
                    "YAML anchors",
                    "holds a YAML anchor or alias (&name / *name); dlx writes none and reads "
                    "none back (an alias can expand a few bytes into gigabytes)",
                )
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _refuse(source, "nesting", f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            nodes += 1
            if nodes > MAX_NODES:
                raise _refuse(source, "size", f"more than {MAX_NODES:,} YAML nodes")
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "YAML error"
        raise _refuse(source, str(source), f"not valid YAML ({first})") from None


def parse_yaml(text: str, source: str | Path, omegaconf: bool = True) -> Any:
    """YAML text as plain data, checked first (see `_check_events`). `omegaconf`: read numbers
    as OmegaConf does (`1e-3` is a float), for configs Hydra wrote."""
    import yaml

    _check_events(text, source)
    if omegaconf:
        from omegaconf._utils import get_yaml_loader

        loader = get_yaml_loader()
    else:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader (no object tags)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "YAML error"
        raise _refuse(source, str(source), f"not valid YAML ({first})") from None


def load_yaml(path: str | Path, cap: int = YAML_CAP, omegaconf: bool = True) -> Any:
    """A YAML file of a folder as plain data, bounded (size, depth, no aliases)."""
    raw = read_bytes(path, cap)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise _refuse(path, str(path), "not UTF-8 text") from None
    return parse_yaml(text, path, omegaconf)


def load_json(path: str | Path, cap: int = JSON_CAP) -> Any:
    """A JSON file of a folder as plain data, bounded."""
    import json

    raw = read_bytes(path, cap)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise _refuse(path, str(path), "not valid JSON (truncated?)") from None


# ---------------------------------------------------------------------------- interpolations


def strings_in(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(key path, value) of every string value (and key) in a plain tree."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(path, node)]
    while stack:
        where, n = stack.pop()
        if isinstance(n, dict):
            for k, v in n.items():
                here = f"{where}.{k}" if where else str(k)
                if isinstance(k, str) and "${" in k:
                    out.append((here, k))
                stack.append((here, v))
        elif isinstance(n, list):
            stack.extend((f"{where}.{i}" if where else str(i), v) for i, v in enumerate(n))
        elif isinstance(n, str):
            out.append((where, n))
    return out


def check_interpolations(
    tree: Any, source: str | Path, allowed: frozenset[str] = frozenset(), hint: str = ""
) -> None:
    """Refuse (UserError naming the key) every `${...}` in `tree` that is not a plain reference
    to another key, unless the whole string is one of `allowed` (what dlx's own configs, or the
    user's --config-dir, hold verbatim); and refuse references that expand past MAX_EXPANDED."""
    refs: dict[str, list[str]] = {}
    literal: dict[str, int] = {}
    for path, value in strings_in(tree):
        if "${" not in value or value in allowed:
            continue
        found = _REF.findall(value)
        rest = _REF.sub("", value)
        if "${" in rest or not found:
            name = _RESOLVER.search(value)
            raise _refuse(
                source,
                path,
                f"`{path}` holds a nested interpolation"
                + (f" calling the resolver `{name.group(1)}`" if name else "")
                + "; a folder's config may only refer to its own keys (`${other.key}`). Put "
                "the value itself there." + hint,
            )
        for inner in found:
            inner = inner.strip()
            if not _PLAIN_KEY.fullmatch(inner):
                name = inner.partition(":")[0].strip() or inner
                raise _refuse(
                    source,
                    path,
                    f"`{path}` calls the resolver `{name[:60]}`; a folder's config may only "
                    "refer to its own keys (`${other.key}`): a resolver could read your "
                    "environment or build objects. Put the value itself there." + hint,
                )
        refs[path] = found
        literal[path] = len(rest)
    _check_expansion(tree, refs, literal, source)


def _check_expansion(tree: Any, refs: dict, literal: dict, source) -> None:
    """The length each referencing string expands to, memoised: refuse past MAX_EXPANDED."""
    memo: dict[str, int] = {}

    def size(path: str, seen: tuple[str, ...]) -> int:
        if path in memo:
            return memo[path]
        if path in seen:
            raise _refuse(source, path, f"`{path}` refers to itself (an interpolation cycle)")
        if path not in refs:
            node = _lookup(tree, path)
            total = len(str(node)) if not isinstance(node, (dict, list)) else 64
        else:
            total = literal[path]
            for inner in refs[path]:
                target = _absolute(path, inner.strip())
                total += size(target, (*seen, path)) if target in refs else _plain_len(tree, target)
                if total > MAX_EXPANDED:
                    raise _refuse(
                        source,
                        path,
                        f"`{path}` expands to more than {MAX_EXPANDED:,} characters "
                        "(interpolations that repeat each other)",
                    )
        memo[path] = total
        return total

    for path in refs:
        size(path, ())


def _absolute(path: str, ref: str) -> str:
    ref = re.sub(r"\[(\w+)\]", r".\1", ref)
    if not ref.startswith("."):
        return ref
    dots = len(ref) - len(ref.lstrip("."))
    parts = path.split(".")[:-1]
    parts = parts[: max(0, len(parts) - (dots - 1))]
    return ".".join([*parts, ref.lstrip(".")])


def _lookup(tree: Any, path: str) -> Any:
    node = tree
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return ""
    return node


def _plain_len(tree: Any, path: str) -> int:
    node = _lookup(tree, path)
    return 64 if isinstance(node, (dict, list)) else len(str(node))


def load_config(
    path: str | Path,
    allowed: frozenset[str] | None = frozenset(),
    cap: int = YAML_CAP,
    hint: str = "",
) -> dict[str, Any]:
    """A config a folder holds (`.hydra/config.yaml`): bounded YAML, a mapping, interpolations
    checked (`allowed=None`: any resolver, for a folder the user trusts). Plain containers;
    `OmegaConf.create` of it resolves only references."""
    tree = load_yaml(path, cap)
    if not isinstance(tree, dict):
        raise _refuse(path, str(path), "not a dlx config (a mapping of keys)")
    if allowed is not None:
        check_interpolations(tree, path, allowed, hint)
    return tree
