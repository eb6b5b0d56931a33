"""`data.image_size: auto`: the size a folder of images is trained at, from the images
themselves (the median shorter side of a sample, capped at 64), so that a folder of 32x32
images is not upscaled to 64x64 (4x the compute for nothing)."""

from __future__ import annotations

import logging
import random
import statistics
from pathlib import Path
from typing import Any

log = logging.getLogger("dlx")

CAP = 64  # auto never picks more than this: a first run on a CPU stays quick
SAMPLE = 200  # image headers read to decide (seeded: the same sample every run)


def auto_size(root: Path, rels: list[str]) -> tuple[int, str]:
    """(size, the sentence that says why) from the headers of up to SAMPLE images."""
    from PIL import Image

    picked = random.Random(0).sample(rels, min(SAMPLE, len(rels)))
    sides = []
    for rel in picked:
        try:
            with Image.open(root / rel) as im:
                sides.append(min(im.size))
        except (OSError, ValueError):
            continue  # a bad file: the loader names it later
    if not sides:
        return CAP, f"data.image_size=auto: no readable image among {len(picked)}; using {CAP}"
    median = int(statistics.median(sides))
    size = max(1, min(CAP, median))
    capped = f", capped at {CAP}" if median > CAP else ""
    return size, (
        f"data.image_size=auto: {size} (the median shorter side of {len(sides)} sampled "
        f"images is {median}{capped}; set data.image_size=N to choose)"
    )


def resolve(cfg: Any, root: Path, files: list[Any]) -> int:
    """`data.image_size` as a number: itself, or `auto` decided from the images (said once)."""
    if str(cfg.image_size) != "auto":
        return int(cfg.image_size)
    from dlx.tracking.console import console

    size, why = auto_size(root, [str(f[0]) for f in files])
    console.print(why, highlight=False, soft_wrap=True)
    log.info(why)
    return size
