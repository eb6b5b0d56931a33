"""The run lock: `checkpoints/.lock`, held with flock by the one process that writes a run
folder (the run, or a `--resume` of it). The OS drops it when the process dies, even by
kill -9. `run_lock` takes it; `held_locks` / `is_locked` tell a reader (`dlx runs`) that a
folder is being written, without taking anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dlx.errors import UserError
from dlx.record import names
from dlx.record.atomic import refuse_link, remove_stale_temp_files

_HELD: dict[str, int] = {}  # run folders this process holds the lock of (re-entrant)


@contextmanager
def run_lock(run_dir: str | Path, share: bool = False) -> Iterator[None]:
    """One writer per run folder: a run and a `--resume` of it (or two resumes) never write
    the same checkpoints at once; a second one is refused (UserError). Taking it removes the
    temp files a killed writer left.

    `share=True` (dlx train with hydra.run.dir=DIR, before Hydra writes there): the run that
    this process then starts in DIR joins the lock instead of being refused by it."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; a run folder is still per run
        yield
        return
    lock_dir = names.checkpoints(run_dir)
    held = os.path.realpath(lock_dir)
    if _HELD.get(held, 0) > 0:  # taken with share=True before Hydra started (dlx train)
        _HELD[held] += 1
        try:
            yield
        finally:
            _HELD[held] -= 1
        return
    f = _open_lock(Path(run_dir))
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{run_dir} is in use by another dlx process (the run, or a `--resume` of it, is "
                "still going). Wait for it to end or stop it first.",
                key="hydra.run.dir",
            ) from None
        remove_stale_temp_files(lock_dir)
        remove_stale_temp_files(run_dir)
        if share:
            _HELD[held] = 1
        try:
            yield
        finally:
            if share:
                _HELD.pop(held, None)
    finally:
        f.close()


def _open_lock(run_dir: Path):
    lock = names.lock(run_dir)
    try:
        refuse_link(lock)
        lock.parent.mkdir(parents=True, exist_ok=True)
        refuse_link(lock)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(lock, flags, 0o644)
    except OSError as exc:
        raise UserError(
            f"Cannot write to the run folder {run_dir}: {exc.strerror}.", key="hydra.run.dir"
        ) from None
    return os.fdopen(fd, "a")


def held_locks() -> set[int] | None:
    """Inodes of the files someone holds an flock on (Linux' /proc/locks), or None where the
    system does not say: a run that is going (or being resumed) holds checkpoints/.lock."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    held = set()
    for line in lines:
        parts = line.split()
        if "FLOCK" in parts and len(parts) > 5:
            dev_ino = parts[5] if parts[1] != "->" else parts[6]
            try:
                held.add(int(dev_ino.rsplit(":", 1)[1]))
            except (IndexError, ValueError):
                continue
    return held


def is_locked(run_dir: str | Path, held: set[int] | None) -> bool:
    """Is a process writing `run_dir` now? `held`: `held_locks()`, read once for many
    folders (None: ask for the lock ourselves, without waiting, and let go)."""
    lock = os.path.join(run_dir, names.CHECKPOINTS, names.LOCK)  # (a string: 10k folders)
    if held is not None:
        try:
            return os.lstat(lock).st_ino in held
        except OSError:
            return False
    try:
        import fcntl

        fd = os.open(lock, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except (ImportError, OSError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
