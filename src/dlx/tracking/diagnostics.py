"""Diagnostics that teach: what the curves mean (the fit verdict) and how the gradients flow."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class GradientMonitor:
    """Per-layer gradient norms every `every` steps as `grad_norm/<layer>` scalars.

    Warns once when gradients vanish (< 1e-7 in the first layer) or explode (> 1e3).
    """

    VANISH, EXPLODE = 1e-7, 1e3

    def __init__(self, model: nn.Module, tracker, console, every: int) -> None:
        self.tracker, self.console, self.every = tracker, console, every
        self.layers = [
            (name.removesuffix(".weight"), p)
            for name, p in model.named_parameters()
            if p.requires_grad and name.endswith("weight") and p.dim() > 1
        ]
        self.warned = False
        self.last: dict[str, float] = {}

    def after_backward(self, step: int) -> None:
        if not self.every or step % self.every or not self.layers:
            return
        norms = torch.stack(
            [p.grad.detach().norm() if p.grad is not None else torch.zeros(()) for _, p in self.layers]
        ).tolist()
        self.last = {name: n for (name, _), n in zip(self.layers, norms, strict=True)}
        for name, n in self.last.items():
            self.tracker.scalar(f"grad_norm/{name}", n, step)
        self._check(step)

    def _check(self, step: int) -> None:
        if self.warned or not self.last:
            return
        first = next(iter(self.last.values()))
        biggest = max(self.last.values())
        problem = None
        if not math.isfinite(biggest) or biggest > self.EXPLODE:
            problem = f"exploding gradients (largest layer norm {biggest:.3g})"
        elif first < self.VANISH:
            problem = f"vanishing gradients (first layer norm {first:.3g})"
        if problem:
            self.warned = True
            msg = (f"{problem} at step {step}. Try `model.init=he` (or xavier for sigmoid/tanh), "
                   "`reg=batchnorm`, or a smaller `opt.lr`.")
            self.console.warn(msg)
            self.tracker.text("diagnostics/gradients", msg, step)


def diagnose(history: list[dict[str, Any]], task: str, status: str) -> dict[str, Any]:
    """The lecture's verdict from the train/val curves: underfitting, overfitting, good fit,
    or diverged; with the evidence and the dlx overrides that address it."""
    if status == "diverged":
        return {"verdict": "diverged", "evidence": "the loss became NaN/Inf or exploded",
                "try": ["opt.lr=<10x smaller>", "dlx lr-find", "reg=batchnorm"]}
    if not history:
        return {"verdict": "unknown", "evidence": "no completed epoch", "try": []}
    best = min(history, key=lambda h: h["val"]["loss"])
    last = history[-1]
    train_loss, val_loss = last["train"]["loss"], last["val"]["loss"]
    evidence = f"train loss {train_loss:.4g}, val loss {val_loss:.4g} (best {best['val']['loss']:.4g} at epoch {best['epoch']})"
    if task == "classification":
        tr_acc, va_acc = last["train"]["acc"], best["val"]["acc"]
        evidence += f", train acc {tr_acc:.3f}, best val acc {va_acc:.3f}"
        gap = tr_acc - va_acc
        if tr_acc < 0.9 and va_acc < 0.9:
            return {"verdict": "underfitting", "evidence": evidence,
                    "try": ["epochs=<more>", "model.width=<larger>", "model=cnn", "opt.lr=<tune>"]}
        if gap > 0.05 or val_loss > 1.5 * best["val"]["loss"]:
            return {"verdict": "overfitting", "evidence": evidence + f", gap {gap:.3f}",
                    "try": ["reg=[l2,dropout]", "aug=mnist", "early_stopping.patience=3", "data.limit=null"]}
        return {"verdict": "good fit", "evidence": evidence, "try": []}
    if best["val"]["loss"] > 0.5 * (history[0]["val"]["loss"] or 1):
        return {"verdict": "underfitting", "evidence": evidence, "try": ["epochs=<more>", "model=shallow"]}
    if val_loss > 1.5 * best["val"]["loss"] and train_loss < best["train"]["loss"]:
        return {"verdict": "overfitting", "evidence": evidence, "try": ["reg=l2", "early_stopping.patience=3"]}
    return {"verdict": "good fit", "evidence": evidence, "try": []}
