"""Optimizer, scheduler, loss and L1 penalty, all built from the config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlx.config import to_plain
from dlx.errors import UserError

# opt.* keys that are dlx's, not the optimizer's.
OPT_RUN_KEYS = ("backbone_lr_mult",)


def param_groups(model: nn.Module, lr: float, backbone_lr_mult: float = 1.0) -> list[dict[str, Any]]:
    """Trainable parameters only; a model with a `head` gets the backbone at lr * mult."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = getattr(model, "head", None)
    if head is None or backbone_lr_mult == 1.0:
        return [{"params": [p for _, p in trainable], "name": "all"}]
    head_ids = {id(p) for p in head.parameters()}
    groups = [
        {"params": [p for _, p in trainable if id(p) not in head_ids], "lr": lr * backbone_lr_mult,
         "name": "backbone"},
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
        raise UserError("Every parameter is frozen: nothing to train (see `model.freeze`).", key="model.freeze")
    return factory(groups, weight_decay=float(reg_cfg.get("weight_decay", 0.0)))


def build_scheduler(sched_cfg: Any, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int):
    """Returns (scheduler or None, when): when is 'epoch', 'batch' or 'plateau'."""
    from hydra.utils import instantiate

    kwargs = to_plain(sched_cfg)
    name = kwargs.pop("name", "none")
    if name == "none" or "_target_" not in kwargs:
        return None, None
    if name == "onecycle":
        kwargs.update(epochs=epochs, steps_per_epoch=steps_per_epoch)
        return instantiate(kwargs)(optimizer), "batch"
    return instantiate(kwargs)(optimizer), ("plateau" if name == "plateau" else "epoch")


def build_loss(name: str, task: str) -> nn.Module:
    if name == "auto":
        name = "cross_entropy" if task == "classification" else "mse"
    if name == "cross_entropy" and task != "classification":
        raise UserError("`loss=cross_entropy` needs a classification dataset; use loss=mse.", key="loss")
    return nn.CrossEntropyLoss() if name == "cross_entropy" else _MSE()


class _MSE(nn.Module):
    """MSE that accepts (N,) or (N, 1) targets."""

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(out.view_as(target) if out.numel() == target.numel() else out, target)


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """sum |w| over weight matrices and kernels (not biases or norm scales)."""
    return sum(p.abs().sum() for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1)
