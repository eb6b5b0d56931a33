"""Early stopping: stop when the monitored validation metric stops improving."""

from __future__ import annotations

import math
from typing import Any

from dlx.errors import UserError


class EarlyStopping:
    """Tracks the best epoch always (for best.pt); fires only when `enabled`.

    An epoch improves when the metric beats the best by more than `min_delta`
    (lower for a loss, higher for an accuracy). After `patience` epochs without
    improvement, `fired` turns true.
    """

    def __init__(
        self,
        enabled: bool,
        monitor: str,
        patience: int,
        min_delta: float,
        restore_best: bool = True,
    ) -> None:
        self.enabled, self.monitor, self.patience = enabled, monitor, patience
        self.min_delta, self.restore_best = min_delta, restore_best
        self.mode = "max" if monitor.endswith("acc") else "min"
        self.best = -math.inf if self.mode == "max" else math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.fired = False
        self.fired_epoch: int | None = None

    @classmethod
    def from_cfg(cls, cfg: Any, task: str) -> EarlyStopping:
        if task != "classification" and cfg.monitor == "val/acc":
            raise UserError(
                "`early_stopping.monitor=val/acc` needs a classification dataset; use val/loss.",
                key="early_stopping.monitor",
            )
        return cls(cfg.enabled, cfg.monitor, cfg.patience, cfg.min_delta, cfg.restore_best)

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch: int, value: float) -> bool:
        """Record one epoch's value; return True when it is the new best."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        if self.enabled and self.bad_epochs >= self.patience and not self.fired:
            self.fired, self.fired_epoch = True, epoch
        return False

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "fired": self.fired,
            "fired_epoch": self.fired_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Only the fields `state_dict` writes, each of its type (ValueError otherwise): a
        checkpoint never sets any other attribute."""
        kinds = {
            "best": (float, int, type(None)),
            "best_epoch": (int, type(None)),
            "bad_epochs": (int,),
            "fired": (bool,),
            "fired_epoch": (int, type(None)),
        }
        for key, allowed in kinds.items():
            value = state.get(key) if isinstance(state, dict) else None
            if key not in (state if isinstance(state, dict) else {}) or not isinstance(
                value, allowed
            ):
                raise ValueError(f"early stopping: `{key}` is missing or of the wrong type")
            if isinstance(value, bool) and key != "fired":
                raise ValueError(f"early stopping: `{key}` is of the wrong type")
        for key in kinds:
            setattr(self, key, state[key])
