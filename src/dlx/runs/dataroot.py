"""`dlx eval RUN_DIR --data-root DIR`: the run's model on another image folder.

A new test set, or the training folder moved: DIR must hold the same class folders as the run
(names and order, which fix the labels); a folder whose classes differ is refused naming the
difference. The images get the run's own normalization (its model card's mean/std, not
statistics of the new folder). `--split all` (the default with `--data-root`) evaluates every
image of DIR; `test`/`val` the split the run's config cuts from it (the run's own test split,
when DIR is the training folder moved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlx.errors import UserError


def apply_data_root(cfg: Any, data_root: str, run_dir: Path, card: dict[str, Any] | None) -> None:
    """Point the run's config at DIR, after checking its classes against the run's."""
    from dlx.data.imagefolder import scan

    if str(cfg.data.get("_target_", "")) != "dlx.data.imagefolder.load":
        raise UserError(
            f"`--data-root` evaluates on another image folder; this run trained on "
            f"data={cfg.data.get('name', '?')}, not data=imagefolder.",
            key="--data-root",
        )
    root = Path(data_root).expanduser()
    classes, _ = scan(root)  # a folder that is not one: UserError naming it
    theirs = list((card or {}).get("classes") or [])
    if not theirs:
        theirs, _ = scan(Path(str(cfg.data.root)).expanduser())
    if classes != theirs:
        missing = [c for c in theirs if c not in classes]
        extra = [c for c in classes if c not in theirs]
        said = []
        if missing:
            said.append(f"missing {', '.join(missing)}")
        if extra:
            said.append(f"not in the run: {', '.join(extra)}")
        if not said:
            said.append("the same names in another order")
        raise UserError(
            f"`--data-root {root}`: its classes differ from the run's ({'; '.join(said)}). The "
            f"run's classes: {', '.join(theirs)}.",
            key="--data-root",
        )
    cfg.data.root = str(root)
    cfg.data.limit = None
    pre = (card or {}).get("preprocess") or {}
    if pre.get("mean"):  # the run's normalization, not the new folder's statistics
        cfg.data.mean, cfg.data.std = list(pre["mean"]), list(pre["std"])


def whole(data) -> Any:
    """Every image of the folder as one split, in file order (the `all` split)."""
    import torch

    from dlx.data.imagefolder import ImageFiles
    from dlx.data.pixels import ImageBytes

    parts = (data.train, data.val, data.test)
    if isinstance(data.test, ImageBytes):
        rows = torch.cat([p.rows for p in parts])
        order = torch.argsort(rows)
        y = torch.cat([p.y for p in parts])[order]
        return ImageBytes(data.test.pixels, rows[order], y, data.test.mean, data.test.std)
    if isinstance(data.test, ImageFiles):
        indices = sorted(i for p in parts for i in p.indices)
        t = data.test
        return ImageFiles(t.samples, indices, t.size, t.finish)
    from torch.utils.data import ConcatDataset

    return ConcatDataset(parts)
