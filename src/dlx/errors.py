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
