"""Models: every `conf/model/*.yaml` names a class with `_target_`; `build_model` builds it.

`mlp` (MLP), `shallow` (ShallowNN), `cnn` (LeNet), `alexnet` (AlexNet), `resnet` (torchvision's
ResNet for transfer learning). Every model takes the same constructor arguments (timm-style):
`in_shape`, `out_dim`, `activation`, `dropout`, `batchnorm`, plus its own keys from the YAML.
Keys that are about the run rather than the architecture are listed in `RUN_KEYS` and kept out.

May import `config` (the allowed values are `config.choices`), `data`, `errors`; nothing above.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from dlx.config.rules import to_plain
from dlx.data import DataBundle
from dlx.errors import UserError
from dlx.models.init import apply_init

# model.* keys read by the pipeline, not passed to the constructor.
RUN_KEYS = ("init", "min_input_size", "unfreeze_at_epoch")


def build_model(model_cfg: Any, reg_cfg: Any, data: DataBundle, binary: bool = False) -> nn.Module:
    """`binary` (loss=bce): one output unit, seen by the rest of dlx as two classes' logits
    (dlx.models.binary)."""
    from hydra.utils import instantiate

    kwargs = to_plain(model_cfg)
    run = {k: kwargs.pop(k, None) for k in RUN_KEYS}
    # batch norm: `reg=batchnorm` for any model, or the model's own default (cnn: model.batchnorm)
    norm = bool(reg_cfg.get("batchnorm", False)) or bool(kwargs.pop("batchnorm", False))
    try:
        model = instantiate(
            kwargs,
            in_shape=tuple(data.in_shape),
            out_dim=1 if binary else data.out_dim,
            dropout=float(reg_cfg.get("dropout", 0.0)),
            batchnorm=norm,
            _convert_="all",
        )
    except Exception as exc:  # Hydra wraps what the constructor raised: show the user's error
        cause = exc.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        raise _model_error(exc, kwargs.get("_target_")) from None
    apply_init(model, run["init"] or "default")
    if binary:
        from dlx.models.binary import one_logit

        one_logit(model)
    return model


def _model_error(exc: Exception, target: Any) -> Exception:
    """`+model.foo=1`, a --config-dir model with the wrong constructor or that does not import:
    one message naming the key (the rest, e.g. cnn on 1-D data, is left to the caller)."""
    import re

    cause = exc.__cause__ or exc
    text = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else type(cause).__name__
    bad = re.search(r"unexpected keyword argument '(\w+)'", text)
    if bad and bad.group(1) not in ("in_shape", "out_dim", "activation", "dropout", "batchnorm"):
        return UserError(
            f"`model.{bad.group(1)}`: {target} takes no argument `{bad.group(1)}`. Remove it "
            "(`dlx config` shows the model's keys).",
            key=f"model.{bad.group(1)}",
        )
    if isinstance(cause, ImportError) or "Error locating target" in str(exc):
        return UserError(
            f"`model._target_`: {target} cannot be imported ({text}). Is its module on the "
            "Python path (the folder you run dlx from, or an installed package)?",
            key="model._target_",
        )
    if isinstance(cause, TypeError):
        return UserError(
            f"`model._target_`: {target} does not take dlx's model arguments ({text}). A model "
            "gets in_shape, out_dim, activation, dropout, batchnorm and its own model.* keys.",
            key="model._target_",
        )
    return exc


def min_input_size(model_cfg: Any) -> int | None:
    """The smallest image side the model accepts (the data pipeline resizes up to it)."""
    return model_cfg.get("min_input_size", None)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, frozen) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen
