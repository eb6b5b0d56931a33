"""How the `dlx` process ends: the one error boundary (a message and an exit code, never a
traceback), colour kept out of logs that are files, and the quick exit once torch is loaded."""

from __future__ import annotations

import sys
from typing import Any

from dlx.record import status


def run_exit_code(metrics: dict[str, Any]) -> int:
    """`dlx train`'s exit code for the run that left `metrics` (`record.status.EXIT`)."""
    return status.exit_code(metrics.get("status"))


def boundary(exc: BaseException) -> int:
    """Whatever escaped a command: one message naming the key, file or resource, and exit 2
    (bad input) or 1 (a run or the machine failed). DLX_TRACEBACK=1 adds the traceback."""
    import os

    from dlx.errors import explain
    from dlx.tracking.console import error

    code, message = explain(exc)
    if os.environ.get("DLX_TRACEBACK"):
        import traceback

        traceback.print_exception(exc)
    error(message)
    return code


def no_colour_in_logs() -> None:
    """colorlog (Optuna's `[I ...]` lines) colours whatever the stream is; NO_COLOR, which it
    reads at each line, keeps colour codes out of a stderr that is a file or a pipe. dlx's
    own console decided at its import, before this (it reads its own stream)."""
    import os

    from dlx.tracking.console import quiet_when_reader_goes_away  # rich reads NO_COLOR now

    quiet_when_reader_goes_away()

    if "NO_COLOR" not in os.environ and not sys.stderr.isatty():
        os.environ["NO_COLOR"] = "1"


def exit_fast(code: object) -> None:
    """Leave with `code`. Once torch is loaded, Python's own teardown (freeing torch's and its
    compiler's module graph object by object) takes 0.5-1 s: more than a short run's epoch.
    Every file of the run is written and closed by now, so this runs the steps of the
    interpreter's shutdown that do something for dlx, in its order (wait for threads and
    executors, the atexit handlers: logging's flush and close, child processes; stdout and
    stderr) and ends the process without the teardown."""
    import atexit
    import os
    import threading

    shutdown = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if not (code is None or isinstance(code, int)) or "torch" not in sys.modules:
        sys.exit(code)
    if shutdown is None or run_exitfuncs is None:  # not CPython
        sys.exit(code)
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # under cProfile, trace, pdb: they still have work to do after us
    shutdown()
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing more can be said there
            pass
    os._exit(code or 0)
