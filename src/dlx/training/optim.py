"""Optimizer, scheduler, loss and L1 penalty, all built from the config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlx.config.rules import to_plain
from dlx.errors import UserError


def param_groups(
    model: nn.Module, lr: float, backbone_lr_mult: float = 1.0
) -> list[dict[str, Any]]:
    """Trainable parameters only; a model with a `head` gets the backbone at lr * mult."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = getattr(model, "head", None)
    if head is None or backbone_lr_mult == 1.0:
        return [{"params": [p for _, p in trainable], "name": "all"}]
    head_ids = {id(p) for p in head.parameters()}
    groups = [
        {
            "params": [p for _, p in trainable if id(p) not in head_ids],
            "lr": lr * backbone_lr_mult,
            "name": "backbone",
        },
        {"params": [p for _, p in trainable if id(p) in head_ids], "lr": lr, "name": "head"},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(opt_cfg: Any, reg_cfg: Any, model: nn.Module) -> torch.optim.Optimizer:
    """`hydra.utils.instantiate` the `_partial_` optimizer, then hand it the param groups."""
    from hydra.utils import instantiate

    kwargs = to_plain(opt_cfg)
    mult = float(kwargs.pop("backbone_lr_mult", 1.0))
    factory = instantiate(kwargs)
    groups = param_groups(model, float(opt_cfg.lr), mult)
    if not any(g["params"] for g in groups):
        raise UserError(
            "Every parameter is frozen: nothing to train (see `model.freeze`).", key="model.freeze"
        )
    try:
        return factory(groups, weight_decay=float(reg_cfg.get("weight_decay", 0.0)))
    except TypeError as exc:  # `+opt.lrr=0.1`: a keyword this optimizer does not take
        import inspect
        import re

        bad = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if not bad:
            raise
        target = getattr(factory, "func", factory)
        allowed = [
            p
            for p in inspect.signature(target).parameters
            if p not in ("self", "params", "weight_decay")
        ]
        raise UserError(
            f"`opt.{bad.group(1)}`: {getattr(target, '__name__', 'the optimizer')} takes no "
            f"argument `{bad.group(1)}`. Allowed: {', '.join(allowed)} "
            "(weight decay comes from `reg.weight_decay`).",
            key=f"opt.{bad.group(1)}",
        ) from None


def unfreeze(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    backbone_lr_mult: float = 1.0,
) -> int:
    """Make every parameter trainable (`model.unfreeze_at_epoch`) and hand the newly trainable
    ones to the optimizer as one more group at the head's lr * `backbone_lr_mult`.

    The scheduler learns about the group too (its base lr, OneCycle's max/min lr), so the
    schedule goes on for it. Returns how many tensors joined (0: nothing was frozen).
    """
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    if hasattr(model, "unfreeze"):
        model.unfreeze()
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    new = [p for p in model.parameters() if p.requires_grad and id(p) not in held]
    if not new:
        return 0
    ref = next(
        (g for g in optimizer.param_groups if g.get("name") == "head"), optimizer.param_groups[-1]
    )
    group: dict[str, Any] = {"params": new, "name": "unfrozen", "lr": ref["lr"] * backbone_lr_mult}
    for key in ("initial_lr", "max_lr", "min_lr", "warmup_target"):  # what schedulers keep
        if key in ref:
            group[key] = ref[key] * backbone_lr_mult
    for key, value in ref.items():  # betas, momentum, weight decay, ...: as for the rest
        group.setdefault(key, value)
    optimizer.add_param_group(group)
    if scheduler is not None:
        if hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs.append(group.get("initial_lr", group["lr"]))
        if hasattr(scheduler, "_last_lr"):
            scheduler._last_lr.append(group["lr"])
        if isinstance(getattr(scheduler, "min_lrs", None), list):  # ReduceLROnPlateau
            scheduler.min_lrs.append(scheduler.min_lrs[-1])
    return len(new)


def head_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate the run reports as `lr`: the head's (the whole net's if one group)."""
    for g in optimizer.param_groups:
        if g.get("name") in ("head", "all"):
            return g["lr"]
    return optimizer.param_groups[-1]["lr"]


def build_scheduler(
    sched_cfg: Any, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
):
    """Returns (scheduler or None, when): when is 'epoch', 'batch' or 'plateau'."""
    from hydra.utils import instantiate

    kwargs = to_plain(sched_cfg)
    name = kwargs.pop("name", "none")
    kwargs.pop("warmup_epochs", None)  # dlx's (dlx.training.warmup), not the scheduler's
    if name == "none" or "_target_" not in kwargs:
        return None, None
    if "T_max" in kwargs and kwargs["T_max"] is None:  # cosine: over the epochs it is given
        kwargs["T_max"] = max(1, epochs)
    if name == "onecycle":
        kwargs.update(epochs=epochs, steps_per_epoch=steps_per_epoch)
        return instantiate(kwargs)(optimizer), "batch"
    return instantiate(kwargs)(optimizer), ("plateau" if name == "plateau" else "epoch")


def build_loss(
    name: str, task: str, label_smoothing: float = 0.0, num_classes: int | None = None
) -> nn.Module:
    """The training loss; `label_smoothing` > 0 moves that share of each target's mass onto
    all classes evenly (cross-entropy only). Validation and test use it unsmoothed.
    `bce`: binary cross-entropy on the model's one output unit (dlx.models.binary)."""
    if name == "auto":
        name = "cross_entropy" if task == "classification" else "mse"
    if name == "bce" and (task != "classification" or (num_classes or 2) != 2):
        what = f"{num_classes} classes" if task == "classification" else "a regression dataset"
        raise UserError(
            f"`loss=bce` (binary cross-entropy, one output unit) needs two classes; this data "
            f"has {what}. Use loss=cross_entropy (data=moons|circles|spiral have two).",
            key="loss",
        )
    if name == "cross_entropy" and task != "classification":
        raise UserError(
            "`loss=cross_entropy` needs a classification dataset; use loss=mse.", key="loss"
        )
    if label_smoothing and name != "cross_entropy":
        raise UserError(
            f"`label_smoothing={label_smoothing:g}` smooths class targets: it needs a "
            f"classification dataset with loss=cross_entropy (this run uses loss={name}). "
            "Use label_smoothing=0.",
            key="label_smoothing",
        )
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(label_smoothing=float(label_smoothing))
    if name == "bce":
        from dlx.models.binary import BinaryCrossEntropy

        return BinaryCrossEntropy()
    return _MSE()


class _MSE(nn.Module):
    """MSE that accepts (N,) or (N, 1) targets."""

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(
            out.view_as(target) if out.numel() == target.numel() else out, target
        )


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """sum |w| over weight matrices and kernels (not biases or norm scales)."""
    return sum(
        p.abs().sum() for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1
    )
