"""What a run leaves when it cannot end normally: a metrics.json that says so.

`fit` writes the full metrics.json when a run ends (completed, stopped early, diverged,
interrupted by one Ctrl-C). When something else ends it (a full disk, a second Ctrl-C during
shutdown, an error in the middle), `record_stop` writes a short one with the status and the
reason, unless this run already wrote its own. A write that fails too (the disk is full) says
where and how much space is left, and never hides the first error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlx.record import names

log = logging.getLogger("dlx")


@contextlib.contextmanager
def no_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while the last words are written (the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            if h is not None:
                signal.signal(s, h)


def _saved_epochs(run_dir: Path) -> int | None:
    """The epoch of checkpoints/last.pt (weights_only; None when there is none or it is bad)."""
    try:
        from dlx.training import checkpoint

        state = checkpoint.load(names.last(run_dir))
        return checkpoint.epoch_of(state)
    except Exception:  # noqa: BLE001 (best effort: the status matters, not the count)
        return None


def record_stop(
    run_dir: Path,
    since: float,
    status: str,
    error: str,
    choices: dict[str, str] | None = None,
) -> str | None:
    """Write metrics.json with `status` unless this run (started at `since`, time.time())
    wrote one already. Returns a note when it could not be written (else None)."""
    from dlx.errors import free_space
    from dlx.record.atomic import atomic_write

    path = names.metrics(run_dir)
    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since:
            json.loads(path.read_text())  # this run's own, and whole: keep it
            return None
    except (OSError, ValueError):
        pass
    epochs = _saved_epochs(Path(run_dir))
    metrics: dict[str, Any] = {
        "status": status,
        "epochs_run": epochs,
        "error": error,
        "choices": dict(choices or {}),
    }
    payload = json.dumps(metrics, indent=2, default=str).encode()
    try:
        with no_signals():
            atomic_write(path, lambda f: f.write(payload))
    except Exception as exc:  # noqa: BLE001 (the disk is full, the folder is gone, ...)
        note = (
            f"the status `{status}` could not be written to {path} "
            f"({getattr(exc, 'strerror', None) or exc}; {free_space(str(run_dir))})"
        )
        log.error(note)
        return note
    return None
