"""MixUp and CutMix (`aug.mixup`, `aug.cutmix`: the Beta distribution's alpha, 0 = off).

Both work on a whole training batch, after the per-image augmentation: MixUp blends each
image with another one of the batch (x = lam * x_i + (1 - lam) * x_j), CutMix pastes a
random box of the other image in; the target becomes the same mix of the two one-hot labels
(a soft target, which cross-entropy takes as probabilities). With both on, each batch gets
one of the two at random, as in torchvision's reference scripts. torchvision's v2 classes do
it; they draw from torch's global RNG, which the checkpoints save (resume stays exact).
Training split only: validation and test see the images as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dlx.errors import UserError

Mix = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def build_mixing(aug_cfg: Any, data) -> Mix | None:
    """The batch mixer for this run, or None when `aug.mixup` and `aug.cutmix` are 0."""
    mixup = float((aug_cfg.get("mixup") if aug_cfg is not None else 0) or 0)
    cutmix = float((aug_cfg.get("cutmix") if aug_cfg is not None else 0) or 0)
    if not mixup and not cutmix:
        return None
    key = "aug.mixup" if mixup else "aug.cutmix"
    if data.task != "classification":
        raise UserError(
            f"`{key}` mixes class labels: it needs a classification dataset "
            f"(data={data.name} is regression). Use {key}=0.",
            key=key,
        )
    if cutmix and not data.is_image:
        raise UserError(
            f"`aug.cutmix` pastes image patches: data={data.name} has no images. Use "
            "aug.mixup instead, or aug.cutmix=0.",
            key="aug.cutmix",
        )
    from torchvision.transforms import v2

    ops = []
    if mixup:
        ops.append(v2.MixUp(alpha=mixup, num_classes=data.num_classes))
    if cutmix:
        ops.append(v2.CutMix(alpha=cutmix, num_classes=data.num_classes))
    mix = ops[0] if len(ops) == 1 else v2.RandomChoice(ops)

    def apply(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mix(x, y)

    apply.__doc__ = " or ".join(type(op).__name__ for op in ops)
    return apply
