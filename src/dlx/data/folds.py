"""Cross-validation folds (`cv.folds=K`, `cv.fold=F`) for the seeded splits of `data/splits.py`.

`build_data` sets the fold around the dataset's loader, so every loader that splits through
`split_indices` / `split_train_val` validates on fold F of K of its train+val pool (the test
split is held out as always) without knowing about folds.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch

_CV: contextvars.ContextVar[list | None] = contextvars.ContextVar("dlx_cv", default=None)


@contextlib.contextmanager
def cross_validation(folds: int | None, fold: int):
    """Within it, the splits validate on fold `fold` of `folds` of the train+val pool (the
    test split is held out as always); yields a list that says whether a split used it."""
    used: list[bool] = []
    token = _CV.set([int(folds), int(fold), used] if folds else None)
    try:
        yield used
    finally:
        _CV.reset(token)


def train_val(pool: torch.Tensor, n_val: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) of a permuted pool: the first n_val, or the current cv fold."""
    cv = _CV.get()
    if cv is None:
        return pool[n_val:], pool[:n_val]
    folds, fold, used = cv
    used.append(True)
    chunks = list(pool.tensor_split(folds))
    val = chunks.pop(fold)
    return torch.cat(chunks), val
