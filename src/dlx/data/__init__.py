"""Datasets as one `DataBundle`: three splits plus what the model and the loss need to know.

Each `conf/data/*.yaml` names a loader with `_target_`; `build_data(cfg)` calls it.
In-memory splits are `TensorDataset`s (the fast path, batched by index: digits, function,
mnist, fashion_mnist, cifar10); everything else (imagefolder) is a regular `Dataset` read
through a `DataLoader`. Every split is normalized the same way; augmentation
(`data/augment.py`) touches the training split only.

May import `record`, `config`, `errors`, `training.signals` (Ctrl-C in loader workers) and
`tracking.console` (messages); never `launch`, `sweeps`, `runs`, `cli`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset


@dataclass
class DataBundle:
    train: Dataset
    val: Dataset
    test: Dataset
    task: str  # "classification" | "regression"
    in_shape: tuple[int, ...]  # (C, H, W) for images, (features,) otherwise
    num_classes: int | None = None
    classes: list[str] = field(default_factory=list)
    mean: tuple[float, ...] = ()  # per-channel normalization (images), to undo it for display
    std: tuple[float, ...] = ()
    true_fn: Callable[[torch.Tensor], torch.Tensor] | None = None  # regression: the truth
    name: str = ""
    augmentation: str = ""  # what augments the training split, and how (set by build_batch_augment)
    notes: list[str] = field(default_factory=list)  # warnings for the start of the run
    native_size: tuple[int, ...] = ()  # (H, W) as stored before any resize (in-memory images)

    @property
    def out_dim(self) -> int:
        return self.num_classes if self.task == "classification" else 1

    @property
    def is_image(self) -> bool:
        return len(self.in_shape) == 3

    @property
    def in_memory(self) -> bool:
        return all(isinstance(s, TensorDataset) for s in (self.train, self.val, self.test))


def data_seed(cfg: Any) -> int:
    """The seed of the split: `data.seed`, or `seed` when the data config has none (or null)."""
    value = cfg.data.get("seed") if "data" in cfg else None
    return int(cfg.seed if value is None else value)


def build_data(data_cfg: Any, seed: int, min_size: int | None = None, cv: Any = None) -> DataBundle:
    """Instantiate the data group's loader: `load(cfg, seed=..., min_size=...)`; `cv` (the
    config's `cv` node): validate on fold `cv.fold` of `cv.folds`."""
    from hydra.utils import get_method

    from dlx.data.folds import cross_validation
    from dlx.errors import UserError

    folds = cv.get("folds") if cv is not None else None
    fold = int(cv.get("fold") or 0) if folds else 0
    if folds and not 0 <= fold < int(folds):
        raise UserError(
            f"`cv.fold={fold}` with `cv.folds={folds}`: allowed are 0..{int(folds) - 1}.",
            key="cv.fold",
        )
    loader = get_method(data_cfg._target_)
    with cross_validation(folds, fold) as used:
        data = loader(data_cfg, seed=seed, min_size=min_size)
    if folds and not used:
        raise UserError(
            f"`cv.folds={folds}`: data={data.name or data_cfg.get('name')} does not split "
            "through dlx's seeded splits, so it cannot rotate validation folds.",
            key="cv.folds",
        )
    return data
