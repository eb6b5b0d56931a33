"""The decode cache's description is checked, not trusted (`cache.Entry.read_meta`).

The cache sits next to the images, where anyone who sends the folder can edit it. Labels
come from the scan (class folder of each path), never from the cache, but the rows of the
pixel file are matched to files by the description's `kept` list: editing it would relabel
every image. So the description must match the files the scan found exactly (count, shape,
`kept` strictly increasing and in range, `bad` naming exactly the other files), and the
first, middle and last stored images must equal their files decoded again. Anything else:
the cache is built again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def consistent(meta: Any, paths: list[str], size: int, version: int) -> bool:
    if not isinstance(meta, dict) or meta.get("version") != version:
        return False
    kept, bad = meta.get("kept"), meta.get("bad")
    if not (isinstance(kept, list) and isinstance(bad, list)) or meta.get("files") != len(paths):
        return False
    if meta.get("shape") != [len(kept), 3, size, size]:
        return False
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in kept):
        return False
    if any(b >= a for a, b in zip(kept[1:], kept, strict=False)) or (
        kept and not 0 <= kept[0] <= kept[-1] < len(paths)
    ):
        return False
    left = set(range(len(paths))) - set(kept)
    return [b[0] if isinstance(b, list) and b else None for b in bad] == [
        paths[i] for i in sorted(left)
    ] and all(isinstance(b, list) and len(b) == 2 and isinstance(b[1], str) for b in bad)


def spot_check(pixels: Path, kept: list[int], paths: list[str], size: int, decode) -> bool:
    """The first, middle and last stored images equal their files decoded now."""
    row = 3 * size * size
    with open(pixels, "rb") as f:
        for i in sorted({0, len(kept) // 2, len(kept) - 1} if kept else set()):
            f.seek(i * row)
            try:
                if f.read(row) != decode(paths[kept[i]], size).tobytes():
                    return False
            except Exception:  # noqa: BLE001 - a kept file that no longer decodes
                return False
    return True
