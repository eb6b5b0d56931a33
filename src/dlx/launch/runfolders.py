"""Run and sweep folders: claiming a fresh one, refusing one that already holds a run, checking
that a chosen one can be written, and removing what a run that never started left behind.

A run folder is never overwritten and never deleted once it holds a checkpoint or metrics.json.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from omegaconf import DictConfig

from dlx.errors import UserError
from dlx.record import names


def override_value(overrides: list[str], key: str) -> str | None:
    """The value the last `key=...` (or `+key=`/`++key=`) override sets, as typed."""
    value = None
    for o in overrides:
        name, eq, rest = o.lstrip("+").partition("=")
        if eq and name.strip() == key:
            value = rest.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1].replace("\\" + value[0], value[0])  # as `quote` wrote it
    return value


def check_writable(folder: Path, key: str) -> None:
    """A run folder that cannot be created or written is bad input (exit 2), found before any
    work: the nearest folder that exists must be a writable directory."""
    probe = folder.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(
            f"Cannot create the run folder {folder} (`{key}`): {probe} is a file, "
            f"not a folder. Set `{key}` to a folder you can write.",
            key=key,
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(
            f"Cannot write the run folder {folder} (`{key}`): {probe} is not writable. "
            f"Set `{key}` to a folder you can write.",
            key=key,
        )


def refuse_existing_run(overrides: list[str]) -> None:
    """A new run never lands on top of another run, nor overwrites a file dlx did not write
    in an existing folder (its best.pt, its train.log)."""
    folder = override_value(overrides, "hydra.run.dir")
    if folder is None:
        return
    run = Path(folder)
    held = [name for name in names.RUN_FILES if os.path.lexists(run / name)]
    if held:
        is_run = any(name in held for name in names.RUN_MARKERS)
        raise UserError(
            f"`hydra.run.dir={folder}` already holds "
            + (
                f"a run ({', '.join(held[:3])} would be overwritten). Continue it with "
                f"`dlx train --resume {folder}`, or pick a new folder."
                if is_run
                else f"{', '.join(held[:3])}, which a new run would overwrite. Pick a new folder "
                "(or an empty one)."
            ),
            key="hydra.run.dir",
        )


def free_space_at_start(folder: Path, key: str, need: int = 1 << 20) -> None:
    """A disk too full for even the run's config and first checkpoint: say so before Hydra
    writes a 0-byte .hydra/config.yaml (exit 1: the machine, not the input)."""
    import shutil

    from dlx.errors import RunFailed, free_space

    probe = folder.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if free < need:
        raise RunFailed(
            f"No space left for a run in {folder} (`{key}`): {free_space(str(probe))}, and a "
            "run needs at least 1 MB to start. Free some space, or set hydra.run.dir=DIR on "
            "another disk."
        )


def refuse_existing_sweep(overrides: list[str]) -> None:
    """A new sweep never lands on top of another sweep's trials (trial 0 of each would share
    one folder: checkpoints overwritten, two runs' events mixed)."""
    folder = override_value(overrides, "hydra.sweep.dir")
    if folder is None or not Path(folder).is_dir():
        return
    sweep = Path(folder)
    held = [
        p.name
        for p in sweep.iterdir()
        if p.name in (names.MULTIRUN, names.SUMMARY_CSV) or names.has_run(p)
    ]
    if held:
        raise UserError(
            f"`hydra.sweep.dir={folder}` already holds a sweep ({', '.join(sorted(held)[:4])}): "
            "its trials would be overwritten. Pick a new folder, or leave hydra.sweep.dir out "
            "(each sweep then gets its own outputs/multirun/DATE/TIME).",
            key="hydra.sweep.dir",
        )


def configured_folder(overrides: list[str], config_dir: str | None, key: str) -> str:
    """The folder the config sets `key` (`hydra.sweep.dir`) to, resolved now (a config of the
    user's that names its own folder, `${now:...}` included)."""
    from omegaconf import OmegaConf

    from dlx.config.compose import compose
    from dlx.config.hydra_internals import sweep_combinations

    first = sweep_combinations(overrides)[0]  # the folder is the sweep's, not a trial's
    return str(OmegaConf.select(compose(first, config_dir, with_hydra=True), key))


def fresh_folder(
    overrides: list[str],
    cfg: DictConfig,
    key: str,
    root: Path,
    chosen: Collection[str] = (),
) -> list[str]:
    """Claim `root/DATE/TIME[_name]` (then `-2`, `-3`, ...) with an atomic mkdir, even against
    a parallel dlx, and hand it to Hydra as `key`. A folder chosen by the user (a `key=...`
    override, or a config of theirs that sets it: `chosen`, from preflight) is left alone."""
    if key in chosen or any(o.lstrip("+~").startswith(f"{key}=") for o in overrides):
        return overrides
    from datetime import datetime

    from dlx.config.compose import _suffix

    now = datetime.now()
    base = root / now.strftime("%Y-%m-%d") / (now.strftime("%H-%M-%S") + _suffix(cfg.get("name")))
    folder, n = base, 1
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                folder.mkdir()
                break
            except FileExistsError:
                n += 1
                folder = base.with_name(f"{base.name}-{n}")
    except OSError as exc:
        raise UserError(
            f"Cannot create the folder {folder.resolve()}: {exc.strerror}. "
            f"Run from a writable folder or set {key}=DIR.",
            key=key,
        ) from None
    return [*overrides, f"{key}={quote(str(folder))}"]


def quote(value: str) -> str:
    """A value as one quoted Hydra override string: a `name` with a comma, brackets or quotes
    must not turn the folder into a sweep or a list, nor a trailing backslash escape the
    closing quote."""
    from dlx.config.sweepcheck import quote as quoted

    return quoted(value)


def discard_unstarted_run(run_dir: Path, parents: bool) -> None:
    """Bad input found once the run had begun (data missing offline, a model that does not fit
    the data): the folder Hydra made holds nothing yet, so it goes; a run with a checkpoint or
    metrics.json is never touched."""
    import shutil

    if names.has_run(run_dir):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    if parents:  # outputs/DATE/ and outputs/ that this run alone made
        remove_empty(run_dir.parent, levels=2)


def remove_empty(folder: Path, levels: int) -> None:
    """Remove `folder` and then its parents, `levels` folders in all, while each is empty."""
    for _ in range(levels):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
