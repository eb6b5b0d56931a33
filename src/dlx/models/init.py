"""Weight initialization (the lecture's slide): naive N(0, 1), Xavier, He."""

from __future__ import annotations

from torch import nn

from dlx.config import INITS
from dlx.errors import UserError


def apply_init(model: nn.Module, scheme: str) -> None:
    """Re-initialize every Linear/Conv weight of `model` (biases to 0) with `scheme`.

    default: PyTorch's own (Kaiming-uniform with a=sqrt(5)); xavier: N(0, 2/(fan_in+fan_out));
    he: N(0, 2/fan_in); normal: the naive N(0, 1), to watch it fail.
    Frozen (pretrained) parameters are left alone.
    """
    if scheme not in INITS:
        raise UserError(
            f"Invalid value for `model.init`: {scheme!r}. Allowed: {' | '.join(INITS)}.", key="model.init"
        )
    if scheme == "default":
        return
    for module in model.modules():
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            continue
        if not module.weight.requires_grad:
            continue
        if scheme == "xavier":
            nn.init.xavier_normal_(module.weight)
        elif scheme == "he":
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        else:
            nn.init.normal_(module.weight, mean=0.0, std=1.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
