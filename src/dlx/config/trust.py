"""A run folder is data, not code: the trust boundary for configs read back from one.

`dlx eval RUN` and `dlx train --resume RUN` rebuild a run from its `.hydra/config.yaml`.
Anyone can edit that file (a folder from a colleague, a course, a cluster), and Hydra's
`instantiate` / `get_method` call whatever a `_target_` names. So before anything is built,
`load_run_config` resolves the whole tree and checks every `_target_` in it against what dlx
ships:

- the targets in dlx's own `conf/` groups;
- at `model._target_`: a model class of `dlx.models`; at `data._target_`: a `load` function of
  `dlx.data`; at `opt._target_`: a `torch.optim` optimizer; at `sched._target_`: a
  `torch.optim.lr_scheduler` scheduler; at `aug.transforms[i]._target_`: a torchvision
  transform (not `Lambda`).

Targets of the user's own `--config-dir` are accepted when that folder is given again, and
everything with `--trust-config` (it runs code the folder names). Anything else is a
`UserError` (exit 2) naming the key and the target; nothing is imported or built by then.
The file itself is read by `record.read` (bounded, no aliases, no foreign resolvers).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.errors import UserError
from dlx.record import names as folder

TRUST_FLAG = "--trust-config"

# Groups whose targets are Hydra's (launchers, sweepers), never built from a run's config.
_NOT_RUN_GROUPS = ("hydra", "hparams_search")

# What dlx writes into a run folder: none of these may be a symlink (nor the folders holding
# them), so a folder someone sends cannot make dlx write outside it.
WRITTEN_FILES = folder.WRITTEN_PATHS


# ---------------------------------------------------------------------------- the allowlist


def _targets_in(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(key path, value) of every `_target_` in a plain container tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            here = f"{path}.{k}" if path else str(k)
            if k == "_target_":
                yield here, v
            else:
                yield from _targets_in(v, here)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _targets_in(v, f"{path}[{i}]")


def _yaml_docs(folder: Path, skip: tuple[str, ...] = ()) -> list[Any]:
    """Every YAML file under `folder` as plain data (read as data, never built); a primary
    config's `hydra:` block left out (it is Hydra's)."""
    import yaml

    docs = []
    for path in sorted(folder.rglob("*.yaml")):
        rel = path.relative_to(folder).parts
        if rel and rel[0] in skip:
            continue
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict):
            doc = {k: v for k, v in doc.items() if k != "hydra"}
        docs.append(doc)
    return docs


def _yaml_targets(folder: Path, skip: tuple[str, ...] = ()) -> frozenset[str]:
    """Every `_target_` string in the YAML files under `folder`."""
    found: set[str] = set()
    for doc in _yaml_docs(folder, skip):
        found.update(v for _, v in _targets_in(doc) if isinstance(v, str))
    return frozenset(found)


def _yaml_interpolations(folder: Path) -> frozenset[str]:
    """Every string holding `${` in the YAML files under `folder`: the resolver calls a config
    read back from a folder may hold verbatim (`${oc.env:DLX_DATA,...}` of data=mnist)."""
    from dlx.record.read import strings_in

    return frozenset(v for doc in _yaml_docs(folder) for _, v in strings_in(doc) if "${" in v)


@functools.cache
def shipped_interpolations() -> frozenset[str]:
    from dlx.config.compose import conf_dir

    return _yaml_interpolations(conf_dir())


def allowed_interpolations(config_dir: str | None) -> frozenset[str]:
    """dlx's own interpolation strings, and those of a --config-dir given again."""
    extra = _yaml_interpolations(Path(config_dir)) if config_dir else frozenset()
    return shipped_interpolations() | extra


@functools.cache
def shipped_targets() -> frozenset[str]:
    """The targets in dlx's own conf/ groups (launchers and sweepers left out)."""
    from dlx.config.compose import conf_dir

    return _yaml_targets(conf_dir(), skip=_NOT_RUN_GROUPS)


def _module_attr(target: str, module_pattern: str) -> tuple[str, Any] | None:
    """`pkg.mod.Name` -> (module name, attribute) when `pkg.mod` is a module matching
    `module_pattern` (dlx's, torch's, torchvision's own code: safe to import) and `Name` is
    defined right there. Attribute chains (`dlx.data.digits.torch.save`) do not match."""
    module, _, name = target.rpartition(".")
    if not re.fullmatch(module_pattern, module) or not name.isidentifier():
        return None
    try:
        if importlib.util.find_spec(module) is None:
            return None
        mod = importlib.import_module(module)
    except (ImportError, ValueError):
        return None
    obj = getattr(mod, name, None)
    return (module, obj) if obj is not None else None


def _dlx_model(target: str) -> bool:
    found = _module_attr(target, r"dlx\.models\.\w+")
    if not found:
        return False
    from torch import nn

    module, obj = found
    return isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module


def _dlx_data(target: str) -> bool:
    found = _module_attr(target, r"dlx\.data\.\w+")
    if not found or not target.endswith(".load"):
        return False
    module, obj = found
    return callable(obj) and getattr(obj, "__module__", None) == module


def _torch_optimizer(target: str) -> bool:
    found = _module_attr(target, r"torch\.optim")
    if not found:
        return False
    import torch

    obj = found[1]
    return isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)


def _torch_scheduler(target: str) -> bool:
    found = _module_attr(target, r"torch\.optim\.lr_scheduler")
    if not found:
        return False
    from torch.optim import lr_scheduler as S

    obj = found[1]
    bases = tuple(
        c for c in (getattr(S, "LRScheduler", None), S.ReduceLROnPlateau) if c is not None
    )
    return isinstance(obj, type) and issubclass(obj, bases) and obj.__name__ != "LambdaLR"


def _torchvision_transform(target: str) -> bool:
    found = _module_attr(target, r"torchvision\.transforms(\.v2)?")
    if not found:
        return False
    obj = found[1]
    return (
        isinstance(obj, type)
        and obj.__module__.startswith("torchvision.transforms")
        and obj.__name__ != "Lambda"
    )


# key path -> what may sit there beyond the shipped targets
_ROLES = (
    (re.compile(r"model\._target_"), _dlx_model, "a model class of dlx.models"),
    (re.compile(r"data\._target_"), _dlx_data, "a data loader of dlx.data"),
    (re.compile(r"opt\._target_"), _torch_optimizer, "a torch.optim optimizer"),
    (re.compile(r"sched\._target_"), _torch_scheduler, "a torch.optim.lr_scheduler scheduler"),
    (
        re.compile(r"aug\.transforms\[\d+\]\._target_"),
        _torchvision_transform,
        "a torchvision transform",
    ),
)


def allowed(path: str, target: Any, user: frozenset[str] = frozenset()) -> bool:
    """May the target at key `path` be built from a run folder's config?"""
    if not isinstance(target, str):
        return False
    if target in shipped_targets() or target in user:
        return True
    return any(rx.fullmatch(path) and check(target) for rx, check, _ in _ROLES)


def user_targets(config_dir: str | None) -> frozenset[str]:
    """The targets a user's own --config-dir names (they vouch for them by giving it)."""
    if not config_dir:
        return frozenset()
    folder = Path(config_dir)
    if not folder.is_dir():
        raise UserError(
            f"`--config-dir {config_dir}`: no such folder. It takes a folder of your own config "
            "groups, laid out like dlx's (e.g. DIR/model/mine.yaml, then model=mine).",
            key="--config-dir",
        )
    return _yaml_targets(folder)


def check_targets(
    tree: dict[str, Any],
    source: str,
    config_dir: str | None = None,
    trust: bool = False,
    hint: str = "",
) -> None:
    """Refuse (exit 2) the first `_target_` in `tree` that dlx would not build from a run
    folder. `source` names the file the tree came from; nothing is imported from it."""
    if trust:
        return
    user = user_targets(config_dir)
    for path, target in _targets_in(tree):
        if allowed(path, target, user):
            continue
        role = next((what for rx, _, what in _ROLES if rx.fullmatch(path)), None)
        expected = (
            f"here dlx builds only {role} or a target of dlx's own config groups"
            if role
            else "dlx's own configs have no target there"
        )
        raise UserError(
            f"`{path}` in {source} names `{target!s:.200}`, which dlx does not build from a run "
            f"folder ({expected}). A run folder's config is data, not code: `dlx eval` and "
            "`--resume` build only what dlx ships, or the targets of your own --config-dir "
            f"given again.{hint} If you made this folder yourself and trust every file in it, "
            f"`{TRUST_FLAG}` builds it anyway (that runs code the folder names).",
            key=path,
        )


def _config_dir_hint(run_dir: Path) -> str:
    """` This run was made with configs of your own (--config-dir): give that folder again.`
    when the run's hydra.yaml says so. Never a path from the folder: the sender wrote it."""
    from dlx.record.read import load_yaml

    try:
        saved = load_yaml(folder.hydra_yaml(run_dir))
        sources = saved["hydra"]["runtime"]["config_sources"]
        mine = any(isinstance(s, dict) and s.get("provider") == "command-line" for s in sources)
    except (UserError, KeyError, TypeError):
        return ""
    if not mine:
        return ""
    return (
        " This run was made with configs of its own (--config-dir): if you have that folder "
        "and trust it, give it again (dlx does not take its path from the run folder)."
    )


def load_run_config(
    run_dir: str | Path, config_dir: str | None = None, trust: bool = False
) -> DictConfig:
    """A run folder's `.hydra/config.yaml`, read through `record.read` (bounded, no aliases,
    no resolvers but dlx's own), resolved and checked: every `_target_` in it is one dlx
    builds (see the module doc). Damaged or hostile files are a UserError (exit 2)."""
    from dlx.config.compose import register_resolvers
    from dlx.record.read import load_config

    run_dir = Path(run_dir)
    path = folder.config(run_dir)
    if not path.is_file():
        raise UserError(
            f"{run_dir} is not a dlx run folder (no .hydra/config.yaml).", key="RUN_DIR"
        )
    allow = None if trust else allowed_interpolations(config_dir)
    plain = load_config(path, allow, hint=f" Or, if you trust every file in it, `{TRUST_FLAG}`.")
    try:
        raw = OmegaConf.create(plain)
    except Exception as exc:  # keys OmegaConf cannot hold
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(f"Cannot read {path}: {first}", key=str(path)) from None
    register_resolvers()
    try:
        tree = OmegaConf.to_container(raw, resolve=True)
    except Exception as exc:  # ${oc.env:UNSET}, ${hydra:...}, a dangling ${key}
        key = getattr(exc, "full_key", None) or "?"
        first = str(exc).strip().splitlines()[0][:200]
        raise UserError(
            f"`{key}` in {path} cannot be resolved: {first}. Set what it refers to, or put the "
            "value itself there.",
            key=str(key),
        ) from None
    from dlx.config.rules import REQUIRED

    missing = [k for k in REQUIRED if tree.get(k) is None]
    if missing:
        raise UserError(
            f"{path} is not a whole dlx config: `{missing[0]}` is missing "
            f"({REQUIRED[missing[0]]}). It cannot be rebuilt from this folder.",
            key=missing[0],
        )
    check_targets(tree, str(path), config_dir, trust, _config_dir_hint(run_dir))
    cfg = OmegaConf.create(tree)  # resolved: what was checked is what gets built
    return cfg


# ---------------------------------------------------------------------------- no symlinks


def refuse_symlinks(run_dir: str | Path, names: tuple[str, ...] = WRITTEN_FILES) -> None:
    """Exit 2 when any file or folder dlx writes in `run_dir` is a symlink (a folder someone
    sent could point metrics.json or checkpoints/ at a file of yours)."""
    run_dir = Path(run_dir)
    for name in names:
        p = run_dir / name
        if p.is_symlink():
            raise UserError(
                f"{p} is a symbolic link (to {os.readlink(p)}); dlx never writes through a link "
                "in a run folder. Remove the link (or copy the folder without it).",
                key=str(p),
            )
