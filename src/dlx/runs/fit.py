"""Tables that fit the width they are given (`dlx runs`, `dlx compare`).

A column is kept by its priority: when the table would be wider than the terminal, paths are
first shortened from the left (`…/18-07-17/5`: the end is what tells runs apart), then the
least important columns are dropped, and the caller says which (a note names `--wide`).
No cell is broken inside a word: a column that may wrap (the config) is never narrower
than its longest word, the others never wrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ELLIPSIS = "…"
# a wrapping column narrower than this reads as a word a row: it is dropped instead
MIN_WRAP = 24


@dataclass
class Column:
    header: str
    cells: list[str]
    priority: int = 0  # 0 is kept longest; higher numbers go first
    justify: str = "left"
    wrap: bool = False  # may wrap between words (never inside one)
    path: bool = False  # may be shortened from the left, at its slashes
    shown: list[str] = field(default_factory=list)  # the cells as they will be shown

    def words(self) -> int:
        return max([len(w) for c in self.shown for w in c.split()] + [len(self.header)])

    def natural(self) -> int:
        return max([len(c) for c in self.shown] + [len(self.header)])

    def least(self) -> int:
        """The narrowest this column can be without breaking a word."""
        if not self.wrap:
            return self.natural()
        return max(self.words(), min(self.natural(), MIN_WRAP))


def short_path(name: str, parts: int | None) -> str:
    """`multirun/2026-12-03/18-07-17/5` with parts=2 -> `…/18-07-17/5` (None: as it is)."""
    bits = name.split("/")
    if parts is None or len(bits) <= parts:
        return name
    return ELLIPSIS + "/" + "/".join(bits[-parts:])


def short_paths(names: list[str], parts: int | None) -> list[str]:
    """Each name shortened to its last `parts` pieces, or more where two would read alike."""
    if parts is None:
        return list(names)
    out = []
    for name in names:
        n = parts
        while (
            n < name.count("/") + 1
            and sum(short_path(x, n) == short_path(name, n) for x in names) > 1
        ):
            n += 1
        out.append(short_path(name, n))
    return out


def table_width(widths: list[int]) -> int:
    """A rich table with borders and one space of padding each side of a cell."""
    return sum(widths) + 3 * len(widths) + 1


def _fits(columns: list[Column], width: int) -> bool:
    for parts in (None, 2, 1):
        for c in columns:
            c.shown = short_paths(c.cells, parts) if c.path else list(c.cells)
        if table_width([c.least() for c in columns]) <= width:
            return True
    return False


def fit(columns: list[Column], width: int, wide: bool = False) -> tuple[list[Column], list[str]]:
    """The columns to show (their `shown` cells set), and the headers of those dropped."""
    if wide:
        for c in columns:
            c.shown = list(c.cells)
        return columns, []
    kept, dropped = list(columns), []
    for c in sorted(columns, key=lambda c: -c.priority):
        if _fits(kept, width) or c.priority == 0:
            break
        kept.remove(c)
        dropped.append(c.header)
    return kept, dropped


def side_by_side(
    title: str, labels: Column, runs: list[Column], width: int, section: int | None = None
) -> list:
    """`dlx compare`'s tables: a column of labels, then a column per run. Run names are
    shortened from the left; when the runs still do not fit side by side, they are shown in
    several tables of as many as fit, each with the labels (nothing is left out)."""
    from rich.markup import escape
    from rich.table import Table

    names = [r.header for r in runs]
    groups: list[list[int]] = [list(range(len(runs)))]
    for parts in (None, 2, 1):
        heads = short_paths(names, parts)
        need = [max(len(h), *(len(c) for c in r.cells)) for h, r in zip(heads, runs, strict=True)]
        if table_width([labels.least(), *need]) <= width:
            break
    else:
        heads = short_paths(names, 2)
        need = [max(len(h), *(len(c) for c in r.cells)) for h, r in zip(heads, runs, strict=True)]
        groups, used = [[]], table_width([labels.least()])
        for i, w in enumerate(need):
            if groups[-1] and used + w + 3 > width:
                groups.append([])
                used = table_width([labels.least()])
            groups[-1].append(i)
            used += w + 3
    tables = []
    for n, group in enumerate(groups):
        part = f" ({n + 1} of {len(groups)})" if len(groups) > 1 else ""
        table = Table(title=escape(title + part), title_justify="left")
        table.add_column("", overflow="fold", min_width=labels.words())
        for i in group:
            table.add_column(escape(heads[i]), justify="right", no_wrap=True)
        for row, label in enumerate(labels.cells):
            if row == section:
                table.add_section()
            table.add_row(escape(label), *(escape(runs[i].cells[row]) for i in group))
        tables.append(table)
    return tables
