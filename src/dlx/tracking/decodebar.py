"""The bar shown while images are decoded (the decode cache, `dlx predict` on many files)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn


@contextmanager
def decode_bar(out: Console, total: int):
    """A transient `decode` bar over `total` items on `out`; yields advance(k)."""
    bar = Progress(
        "decode",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=out,
        transient=True,
    )
    task = bar.add_task("decode", total=total)
    with bar:
        yield lambda k: bar.advance(task, k)
