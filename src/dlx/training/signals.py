"""Ctrl-C / SIGTERM: finish the current step, keep the checkpoint, exit 130.

The first signal only sets a flag the loop checks after every step; a second one
interrupts at once (the checkpoint on disk is still the last completed epoch).
"""

from __future__ import annotations

import signal
import threading


class StopRequested:
    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum

    def __enter__(self) -> StopRequested:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
