"""Ctrl-C / SIGTERM: finish the current step, keep the checkpoint, exit 130.

The first signal only sets a flag the loop checks after every step; a second one
interrupts at once (the checkpoint on disk is still the last completed epoch).

`StopRequested` nests: an inner `with StopRequested()` (the training loop's) shares the
flag of an outer one (the launcher's, installed before the run is built), so a Ctrl-C
that lands while data or the model is still loading is not lost.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_active: StopRequested | None = None  # the outermost handler installed in this process


class StopRequested:
    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._old: dict[int, object] = {}
        self._shared: StopRequested | None = None

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum

    def __enter__(self) -> StopRequested:
        global _active
        if threading.current_thread() is not threading.main_thread():
            return self  # signals only reach the main thread; a worker thread just polls
        if _active is not None:
            self._shared = _active
            return _active
        for sig in SIGNALS:
            self._old[sig] = signal.signal(sig, self._handle)
        _active = self
        return self

    def __exit__(self, *exc) -> None:
        global _active
        if self._shared is not None:
            self._shared = None
            return
        for sig, old in self._old.items():
            if old is not None:  # None: a handler not set from Python; nothing to restore
                signal.signal(sig, old)
        self._old.clear()
        if _active is self:
            _active = None


def active() -> bool:
    """Whether a run is going in this process (its Ctrl-C handler installed)."""
    return _active is not None


def request_stop() -> None:
    """Stop as a first Ctrl-C does (the step finishes, the run is saved as interrupted): for
    causes that are not signals, e.g. the reader of dlx's output went away (`| head`)."""
    if _active is not None:
        _active.requested = True


def ignore_ctrl_c_in_worker(_worker_id: int = 0) -> None:
    """DataLoader `worker_init_fn`: a terminal's Ctrl-C reaches every process of the group;
    a worker that died of it would fail the batches the main process still fetches while it
    finishes its step. Workers ignore it; the main process stops them when it is done."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
