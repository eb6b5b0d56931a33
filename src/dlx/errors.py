"""The two ways a dlx command fails: the user's input (exit 2) or the run itself (exit 1)."""

from __future__ import annotations


class UserError(Exception):
    """Bad usage or bad config: one clear message that names the key and what is allowed.

    The CLI prints the message (no traceback) and exits 2.
    """

    exit_code = 2

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class RunFailed(Exception):
    """A run that started but could not finish (exit 1)."""

    exit_code = 1


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def free_space(path: str | None) -> str:
    """`12.3 MB free in DIR` for the filesystem holding `path` (its nearest existing folder)."""
    import os
    import shutil

    folder = os.path.abspath(path or ".")
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return f"{_size(shutil.disk_usage(folder).free)} free in {folder}"
    except OSError:
        return f"free space in {folder} unknown"


def _first_lines(text: str, n: int = 2, width: int = 300) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return " ".join(lines[:n])[:width]


def explain(exc: BaseException) -> tuple[int, str]:
    """(exit code, one message) for any failure that reaches the CLI: the input's fault is 2,
    a run or an environment that failed is 1. The message names the key, file or resource."""
    import errno
    import re

    if isinstance(exc, (UserError, RunFailed)):
        return exc.exit_code, str(exc)
    name = type(exc).__name__
    if isinstance(exc, OSError):
        where = exc.filename or getattr(exc, "dlx_path", None)
        what = f" {where}" if where else ""
        reason = exc.strerror or _first_lines(str(exc)) or name
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return EXIT_FAILED, (
                f"No space left on the device while writing{what} ({free_space(where)}). "
                "Free some space, or put the run on another disk with hydra.run.dir=DIR."
            )
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return EXIT_USAGE, f"Cannot write{what}: {reason}. Pick a folder you can write."
        if exc.errno == errno.ENOMEM:
            return EXIT_FAILED, f"Out of memory{what}: {reason}."
        return EXIT_FAILED, f"{reason}{':' if what else ''}{what}"
    if isinstance(exc, MemoryError) or name == "OutOfMemoryError":
        return EXIT_FAILED, (
            f"Out of memory ({_first_lines(str(exc), 1, 200) or name}). Lower batch_size, the "
            "model's size (model.width, model.hidden, ...) or data.image_size."
        )
    if name == "InstantiationException":
        text = str(exc)
        target = re.search(r"target '([^']+)'", text)
        key = re.search(r"full_key: (\S+)", text)
        cause = exc.__cause__
        detail = _first_lines(str(cause), 1) if cause is not None else _first_lines(text, 2)
        bad = re.search(r"unexpected keyword argument '(\w+)'", detail)
        if bad and key:
            return EXIT_USAGE, (
                f"`{key.group(1)}.{bad.group(1)}`: {target.group(1) if target else 'the target'} "
                f"takes no argument `{bad.group(1)}` (remove it, or check its spelling)."
            )
        return EXIT_USAGE, (
            f"`{key.group(1) if key else '_target_'}` ({target.group(1) if target else '?'}) "
            f"could not be built: {detail}"
        )
    if isinstance(exc, ImportError):
        return EXIT_USAGE, f"Cannot import {exc.name or ''}: {_first_lines(str(exc), 1)}"
    if isinstance(exc, RecursionError):
        return EXIT_USAGE, f"The config nests too deeply ({_first_lines(str(exc), 1)})."
    return EXIT_FAILED, (
        f"dlx stopped on an error it did not expect: {name}: {_first_lines(str(exc))} "
        "(DLX_TRACEBACK=1 shows where; please report it)."
    )
