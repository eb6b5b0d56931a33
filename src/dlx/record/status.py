"""How a run ended, the one vocabulary: what metrics.json's `status` may say, and what each
status means for the test, the sweep table, `dlx runs` and the exit code of `dlx train`.

    completed      trained every epoch                               tested, ok, exit 0
    stopped_early  early stopping fired                              tested, ok, exit 0
    pruned         a sweep's pruner stopped the trial (sweeps only)   tested, final, exit 1
    diverged       the loss became NaN/inf                           exit 1
    interrupted    Ctrl-C / SIGTERM: last.pt is there to resume      exit 130
    failed         an error ended it                                 exit 1

`dlx runs` also shows two statuses no run writes: `running` (a process holds the folder's
lock) and `damaged` (metrics.json unreadable or not dlx's).
"""

from __future__ import annotations

from dlx.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

COMPLETED = "completed"
STOPPED_EARLY = "stopped_early"
PRUNED = "pruned"
DIVERGED = "diverged"
INTERRUPTED = "interrupted"
FAILED = "failed"
RUNNING = "running"  # shown by `dlx runs`, never written
DAMAGED = "damaged"  # shown by `dlx runs`, never written

# What metrics.json may say (anything else: the folder is damaged).
WRITTEN = (COMPLETED, STOPPED_EARLY, DIVERGED, INTERRUPTED, FAILED, PRUNED)
# Ended well: the run's result counts (a sweep's best trial is one of these).
OK = (COMPLETED, STOPPED_EARLY)
# Has its metrics up to its stop: ranked in a sweep (a pruned trial too).
FINAL = (*OK, PRUNED)
# Ended well enough that the kept model is tested on the test split.
TESTED = (COMPLETED, STOPPED_EARLY, PRUNED)
# Stopped by a rule before its last epoch, on purpose.
STOPPED = (STOPPED_EARLY, PRUNED)

EXIT = {
    COMPLETED: EXIT_OK,
    STOPPED_EARLY: EXIT_OK,
    DIVERGED: EXIT_FAILED,
    INTERRUPTED: EXIT_INTERRUPTED,
    FAILED: EXIT_FAILED,
}


def exit_code(status: object) -> int:
    """`dlx train`'s exit code for a run that ended with `status` (SPEC: exit codes)."""
    return EXIT.get(status, EXIT_FAILED)  # type: ignore[call-overload]


def is_ok(status: object) -> bool:
    return status in OK
