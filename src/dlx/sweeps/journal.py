"""The study journal (`SWEEP_DIR/optuna.journal`) and the sweep lock, as a resume meets them.

The journal is Optuna's JournalStorage file: one JSON object per line, each an operation
with an `op_code`. A resumed sweep appends to it, so before anything is appended:
- a partial last line (a full disk or a kill mid-write leaves one) is cut back to the last
  whole line, with a note: appending after it would make the file unreadable for dlx and
  Optuna alike;
- a damaged line elsewhere, or a file that is not a journal at all, is a UserError (exit 2);
- the overrides of every trial the resume would run again (`user_attrs.overrides` of the
  trials left RUNNING or WAITING) are checked like multirun.yaml's: they are data too.

`hold_sweep_lock(SWEEP_DIR)` takes `SWEEP_DIR/.dlx-sweep.lock` (flock, never through a
link) for the rest of the process: a second `dlx sweep --resume` of the folder, or one while
the sweep itself is running, is refused before it touches anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dlx.errors import UserError

LOCK = ".dlx-sweep.lock"
JOURNAL_CAP = 512 << 20
_HELD: dict[str, int] = {}  # sweep folders this process holds the lock of -> fd


def hold_sweep_lock(sweep_dir: str | Path) -> None:
    """Take the sweep folder's lock for the rest of this process (re-entrant)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks
        return
    key = os.path.realpath(sweep_dir)
    if key in _HELD:
        return
    path = Path(sweep_dir) / LOCK
    try:
        Path(sweep_dir).mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise UserError(
            f"{path}: cannot open the sweep lock ({exc.strerror or exc}); a link there is "
            "never followed.",
            key="--resume",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(
            f"{sweep_dir} is in use by another dlx sweep (the sweep itself, or a `--resume` "
            "of it, is still going). Wait for it to end or stop it first.",
            key="--resume",
        ) from None
    _HELD[key] = fd


def release_sweep_lock(sweep_dir: str | Path) -> None:
    fd = _HELD.pop(os.path.realpath(sweep_dir), None)
    if fd is not None:
        os.close(fd)


def sweep_locked(sweep_dir: str | Path) -> bool:
    """Does another process hold the sweep folder's lock? (Takes nothing.)"""
    try:
        import fcntl
    except ImportError:
        return False
    path = Path(sweep_dir) / LOCK
    if os.path.realpath(sweep_dir) in _HELD or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # a link planted there: hold_sweep_lock refuses it by name
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _lines(path: Path) -> tuple[list[dict[str, Any]], int, int]:
    """(the operations, the byte length up to the end of the last whole operation (past the
    file's size when that one lacks its newline), the file's size). A last line that is not
    a whole operation is left out; a bad line before it is a UserError."""
    from dlx.record.read import read_bytes

    raw = read_bytes(path, JOURNAL_CAP, key="optuna.journal")
    lines = raw.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    ops: list[dict[str, Any]] = []
    pos = good = 0
    for i, line in enumerate(lines):
        end = pos + len(line) + (1 if i < len(lines) - 1 else 0)
        if line.strip():
            try:
                op = json.loads(line)
            except (ValueError, RecursionError):
                op = None
            if not (isinstance(op, dict) and isinstance(op.get("op_code"), int)):
                if i == last and ops:
                    break  # a partial last line: cut back to `good`
                raise UserError(
                    f"{path}: line {i + 1} is not an Optuna journal operation; the study "
                    "cannot be read. Move the file away to start the study again.",
                    key="optuna.journal",
                )
            ops.append(op)
            good = end if i < len(lines) - 1 else end + 1
        elif i < len(lines) - 1:
            good = end
        pos = end
    return ops, good, len(raw)


def repair(path: Path, say) -> list[dict[str, Any]]:
    """The journal's operations; a partial last line cut off (with a note) before anything
    is appended. UserError for a file that is not a journal."""
    ops, good, size = _lines(path)
    if good < size:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.ftruncate(fd, good)
            os.fsync(fd)
        finally:
            os.close(fd)
        say(
            f"{path}: its last line was cut off ({size - good} bytes, a write that never "
            "finished); removed, the study goes on from the last whole line."
        )
    elif good > size:  # the last object lacked its newline
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.write(fd, b"\n")
        finally:
            os.close(fd)
    return ops


def pending_overrides(ops: list[dict[str, Any]], sweep_dir: str) -> list[list[Any]]:
    """The `overrides` user attribute of every trial of this sweep, as stored (unchecked)."""
    attrs: dict[int, dict[str, Any]] = {}
    for op in ops:
        ua = op.get("user_attr")
        if isinstance(ua, dict) and "trial_id" in op:
            attrs.setdefault(op["trial_id"] if isinstance(op["trial_id"], int) else -1, {}).update(
                ua
            )
    out = []
    for a in attrs.values():
        if "overrides" in a and a.get("sweep_dir") in (None, sweep_dir):
            out.append(a["overrides"])
    return out


def check_journal(path: Path, sweep_dir: Path, checker, allowed_keys: set[str], say) -> None:
    """Repair the journal's tail, then check every stored trial's overrides: a list of
    strings, each a key the sweep itself has (a swept or fixed key of multirun.yaml) with a
    value that passes the same check as multirun.yaml's."""
    if not path.exists():
        return
    if path.is_symlink():
        raise UserError(
            f"{path} is a symbolic link; dlx never appends through a link in a sweep folder.",
            key="optuna.journal",
        )
    ops = repair(path, say)
    mine = str(sweep_dir.resolve())
    checker.source = str(path)
    for overrides in pending_overrides(ops, mine):
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise UserError(
                f"{path}: a trial's saved overrides are not a list of strings.",
                key="optuna.journal",
            )
        chosen = {}
        for o in checker.check(overrides):
            key = o.key_or_group
            if key not in allowed_keys:
                raise UserError(
                    f"{path}: a trial's saved overrides set `{key}`, which the sweep's "
                    "multirun.yaml does not: dlx reruns only the sweep's own keys.",
                    key=key,
                )
            chosen[key] = o.get_value_element_as_str() if not o.is_sweep_override() else None
        for key, value in checker.fixed_groups.items():  # e.g. hparams_search=optuna
            if chosen.get(key) != value:
                raise UserError(
                    f"{path}: a trial's saved overrides do not choose `{key}={value}` as the "
                    "sweep's multirun.yaml does: not a trial of this sweep.",
                    key=key,
                )
