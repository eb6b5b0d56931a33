"""Widths: how wide dlx may draw in a terminal, and a long command folded to fit one."""

from __future__ import annotations

import os
import re
import sys


def columns_within_the_terminal() -> None:
    """An exported COLUMNS is often stale (set in a wider window, or by a parent tool), and
    rich, typer and Python all draw at it: a narrower terminal then wraps every full line. In a
    terminal COLUMNS may narrow the output, never widen it past the terminal's own width (set
    here once, in the environment they all read, and that launched trials inherit)."""
    cols = os.environ.get("COLUMNS", "")
    if not cols.isdigit() or not sys.stdout.isatty():
        return
    try:
        real = os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return
    if 0 < real < int(cols):
        os.environ["COLUMNS"] = str(real)


def command_lines(cmd: str, width: int, indent: str = "  ") -> list[str]:
    """A command to paste, in lines that fit `width`: broken between its words (a quoted
    word kept whole) with the shell's ` \\` at each line's end, so it pastes as one."""
    words = re.findall(r"(?:[^\s'\"]+|'[^']*'?|\"[^\"]*\"?)+", cmd)
    lines, line = [], indent
    for word in words:
        if line.strip() and len(line) + 1 + len(word) + 2 > width:
            lines.append(line + " \\")
            line = indent * 3 + word
        else:
            line = f"{line} {word}" if line.strip() else line + word
    return [*lines, line]
