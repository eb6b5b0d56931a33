"""Learning-rate warmup (`sched.warmup_epochs`) before any scheduler, and the one object the
loop steps: `LRSchedule`.

Warmup raises every group's lr linearly, step by step, from target/steps to the target over
the first `warmup_epochs` epochs; the target is the lr the schedule starts from (`opt.lr`,
or OneCycle's own starting lr). Then the schedule runs as if the run began there, over the
epochs that are left (torchvision's references do the same with SequentialLR; stepping per
batch keeps the rise smooth and works with every scheduler, ReduceLROnPlateau included).
Each group keeps its target in the optimizer's own state (`warmup_target`), so a resumed
run and a group that joins later (model.unfreeze_at_epoch) warm up to the right value.
"""

from __future__ import annotations

from typing import Any

import torch


class Warmup:
    """Linear warmup over the first `steps` optimizer steps."""

    def __init__(self, optimizer: torch.optim.Optimizer, steps: int) -> None:
        self.optimizer, self.steps, self.done = optimizer, int(steps), 0
        for g in optimizer.param_groups:
            g.setdefault("warmup_target", g["lr"])
        self._apply()

    @property
    def active(self) -> bool:
        return self.done < self.steps

    def step(self) -> None:
        """After an optimizer step: the lr for the next one (the target once warmup is over)."""
        self.done += 1
        self._apply()

    def _apply(self) -> None:
        factor = min(1.0, (self.done + 1) / self.steps)
        for g in self.optimizer.param_groups:
            g["lr"] = g.get("warmup_target", g["lr"]) * factor

    def state_dict(self) -> dict[str, int]:
        return {"done": self.done, "steps": self.steps}

    def load_state_dict(self, state: dict[str, int]) -> None:
        # the optimizer's own state (loaded too) holds the lr the next step uses
        self.done = int(state["done"])


class LRSchedule:
    """The scheduler (or none) with its stepping rule, after an optional warmup.

    `when` is 'batch' (OneCycle), 'epoch' or 'plateau' (ReduceLROnPlateau, on val loss)."""

    def __init__(
        self, scheduler: Any, when: str | None, warmup: Warmup | None, warmup_epochs: int = 0
    ) -> None:
        self.scheduler, self.when, self.warmup = scheduler, when, warmup
        self.warmup_epochs = int(warmup_epochs) if warmup is not None else 0

    def after_step(self) -> None:
        """Call after each optimizer step."""
        if self.warmup is not None and self.warmup.active:
            self.warmup.step()
        elif self.when == "batch":
            self.scheduler.step()

    def after_epoch(self, epoch: int, val_loss: float) -> None:
        """Call after validation; epoch-wise schedules start once warmup's epochs are over."""
        if epoch <= self.warmup_epochs:
            return
        if self.when == "epoch":
            self.scheduler.step()
        elif self.when == "plateau":
            self.scheduler.step(val_loss)

    def state_dict(self) -> dict[str, Any]:
        return {
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "warmup": self.warmup.state_dict() if self.warmup is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        if self.warmup is not None and state.get("warmup"):
            self.warmup.load_state_dict(state["warmup"])


def build_schedule(
    sched_cfg: Any, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
) -> LRSchedule:
    """Warmup (when `sched.warmup_epochs` > 0), then the `sched` group's scheduler over the
    epochs left after it."""
    from dlx.training.optim import build_scheduler

    warmup_epochs = int(sched_cfg.get("warmup_epochs", 0) or 0)
    scheduler, when = build_scheduler(sched_cfg, optimizer, epochs - warmup_epochs, steps_per_epoch)
    warmup = Warmup(optimizer, warmup_epochs * steps_per_epoch) if warmup_epochs else None
    return LRSchedule(scheduler, when, warmup, warmup_epochs)
