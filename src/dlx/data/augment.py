"""Augmentation: torchvision transforms from `conf/aug/*.yaml` (training split only).

For the in-memory fast path the same transforms run on whole batches with per-sample
randomness (`build_batch_augment`).
"""

from __future__ import annotations

from typing import Any

import torch


def build_batch_augment(aug_cfg: Any, data, device: torch.device):
    """A callable (N, C, H, W) -> (N, C, H, W) for the fast path, or None for no augmentation."""
    if aug_cfg is None or not aug_cfg.get("transforms"):
        return None
    raise NotImplementedError("batch augmentation comes with the data issue")
