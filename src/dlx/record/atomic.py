"""Every file dlx writes into a run or sweep folder goes through here: whole or not at all,
never through a symbolic link.

A write goes to a new temp file next to the target (created with O_EXCL: never an existing
file, never through a link), is fsynced, then renamed over the target, so a kill at any
moment leaves the previous file intact. A symlink at the target (or a `checkpoints/` or
`.hydra/` that is one) is refused: a folder may come from someone else. A full disk is an
OSError that names the file.

    write_bytes(path, data) / write_text(path, text) / write_json(path, obj)
    atomic_write(path, lambda f: ...)      a writer that takes a binary file object
    with atomic_path(path) as tmp: ...     a library that writes by name (savefig, torch.save)
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from dlx.errors import UserError
from dlx.record.names import ATOMIC, CHECKPOINTS, HYDRA

TMP_SUFFIX = ".dlx.tmp"  # dlx's own temp files: the only ones it ever cleans up


def _file_mode() -> int:
    """The mode an ordinary new file gets (mkstemp's temp files are 0600)."""
    try:  # Linux: read the umask without changing it (os.umask would race other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def refuse_link(path: str | Path) -> None:
    """A run folder may come from someone else: never write through a symlink placed there
    (the file itself, or a `checkpoints/` or `.hydra/` folder that is a link)."""
    path = Path(path)
    for p in (path, path.parent):
        if p.is_symlink() and (p is path or p.name in (CHECKPOINTS, HYDRA)):
            raise UserError(
                f"{p} is a symbolic link (to {os.readlink(p)}); dlx never writes through a "
                "link in a run folder. Remove the link (or copy the folder without it).",
                key=str(p),
            )


def _disk_full(folder: Path, exc: Exception) -> bool:
    """Did a write fail because the disk is full (whatever the writer made of ENOSPC)?"""
    if "unexpected pos" in str(exc) or "No space left" in str(exc):
        return True
    try:
        return shutil.disk_usage(folder).free < (64 << 10)
    except OSError:
        return False


def _temp(path: Path, suffix: str) -> tuple[int, str]:
    refuse_link(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise
    if hasattr(os, "fchmod"):
        os.fchmod(fd, _file_mode())
    return fd, tmp


def _failed(tmp: str, path: Path, exc: BaseException) -> None:
    """Clean up after a failed write and re-raise it, naming `path` (ENOSPC as such)."""
    Path(tmp).unlink(missing_ok=True)
    if isinstance(exc, OSError) and not exc.filename:
        exc.filename = str(path)
    elif isinstance(exc, Exception) and _disk_full(path.parent, exc):
        # torch.save's zip writer reports a short write as "unexpected pos ..."
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
    raise exc


def _sync_folder(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call `write(fileobj)` on a temp file next to `path`, fsync, then rename it into place.
    A failed write (a full disk) leaves the previous file as it was and names `path`."""
    path = Path(path)
    fd, tmp = _temp(path, TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        _failed(tmp, path, exc)
    _sync_folder(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """`obj` as JSON (anything JSON does not know is written as its str)."""
    write_bytes(path, json.dumps(obj, indent=indent, default=str).encode())


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temp path next to `path`, for a library that writes a file by name
    (matplotlib's `savefig`, `torch.save(obj, name)`, a profiler's export). Write it inside
    the block; on a clean exit it is fsynced and renamed over `path`, on an error removed.
    The temp name ends with `path`'s suffix (savefig picks the format from it)."""
    path = Path(path)
    fd, tmp = _temp(path, TMP_SUFFIX + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # replaced by a link?
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        _failed(tmp, path, exc)
    _sync_folder(path.parent)


def stale_temp_files(folder: str | Path) -> list[Path]:
    """The temp files a killed dlx writer left in `folder` (`atomic_write`'s and
    `atomic_path`'s): dlx's own names only (a `*.tmp` of someone else's is never touched),
    regular files only."""
    patterns = {f".{n}.*{TMP_SUFFIX}{tail}" for n in ATOMIC for tail in ("", Path(n).suffix)}
    found = {p for pattern in patterns for p in Path(folder).glob(pattern)}
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temp files a killed writer left behind (call it holding the run lock)."""
    removed = []
    for tmp in stale_temp_files(folder):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
