"""Text from disk (or the command line) made safe to show: `safe_text(value)`.

A folder name, a file name, a class name, a config key, a metrics.json field: any of them can
hold terminal control sequences (`ESC ]0;title BEL` renames the terminal window, `ESC [2J`
clears it, OSC 8 makes links) or rich markup (`[link=...]`, `[/bold]` that crashes a table).
Everything dlx shows that it did not make itself goes through `safe_text` first: control
characters come out escaped as Python writes them (`\\x1b`, `\\x07`, `\\n`), rich markup is
escaped, and the result is cut to `limit` characters.
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls, DEL, and the Unicode bidi/format characters that reorder what is shown
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _escaped(match: re.Match[str]) -> str:
    ch = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if ch in named:
        return named[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain_text(value: Any, limit: int = 2000, lines: bool = False) -> str:
    """`value` with every control character escaped (no markup escaping: for text that does
    not go through rich, e.g. a figure title or a log file). `lines`: newlines kept."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if lines:
        return "\n".join(_CONTROL.sub(_escaped, part) for part in text.split("\n"))
    return _CONTROL.sub(_escaped, text)


def safe_text(value: Any, limit: int = 2000, lines: bool = False) -> str:
    """`value` safe to print through rich: control characters escaped, markup escaped."""
    from rich.markup import escape

    return escape(plain_text(value, limit, lines))


def has_control(value: str) -> bool:
    """Does `value` hold a character `safe_text` would escape?"""
    return bool(_CONTROL.search(value))
