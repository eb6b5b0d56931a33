"""Weight initialization (the lecture's slide): naive N(0, 1), Xavier, He."""

from __future__ import annotations

from torch import nn

from dlx.config.choices import INITS
from dlx.errors import UserError

INIT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def apply_init(model: nn.Module, scheme: str) -> None:
    """Re-initialize every Linear/Conv weight of `model` (biases to 0) with `scheme`.

    default: PyTorch's own (Kaiming-uniform with a=sqrt(5)); xavier: N(0, 2/(fan_in+fan_out));
    he: N(0, 2/fan_in); normal: the naive N(0, 1), to watch it fail.
    Loaded (pretrained) weights are left alone: a model that loads some says which of its
    modules are fresh with `init_roots()`.
    """
    if scheme not in INITS:
        raise UserError(
            f"Invalid value for `model.init`: {scheme!r}. Allowed: {' | '.join(INITS)}.",
            key="model.init",
        )
    if scheme == "default":
        return
    roots = model.init_roots() if hasattr(model, "init_roots") else [model]
    for root in roots:
        for module in root.modules():
            if isinstance(module, INIT_LAYERS):
                init_layer(module, scheme)


def init_layer(module: nn.Module, scheme: str) -> None:
    """One layer: weight from the scheme, bias zero."""
    if scheme == "xavier":  # Glorot: keeps the variance of activations and gradients
        nn.init.xavier_normal_(module.weight)
    elif scheme == "he":  # He/Kaiming: ReLU halves the variance, so twice Xavier's fan_in form
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
    else:  # the naive N(0, 1): activations explode or saturate with depth
        nn.init.normal_(module.weight, mean=0.0, std=1.0)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
