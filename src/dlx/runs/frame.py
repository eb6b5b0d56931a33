"""`dlx.runs(ROOT, filter=..., sort=...)`: the `dlx runs` query for a notebook.

The same selection as the table (`runs.table.select`: `--filter`, `--sort`), one row per run
with the flat keys `dlx runs --format json` gives: a pandas DataFrame when pandas is installed,
else a list of dicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def runs_frame(
    root: str | Path = "outputs",
    filter: str | list[str] | None = None,  # noqa: A002 - the CLI's word
    sort: str | None = None,
    descending: bool | None = None,
) -> Any:
    from dlx.runs.table import select

    filters = [filter] if isinstance(filter, str) else list(filter or [])
    found, _, _ = select(Path(root), sort=sort, descending=descending, filters=filters)
    rows = [dict(r.flat(with_config=True)) for r in found]
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows)
