"""Per-epoch hooks: how features plug into the training loop without touching `fit()`.

A hook is any object with an `on_epoch_end(end: EpochEnd) -> str | None` method. The loop
calls every hook once per epoch, after validation, the scheduler step and the checkpoints
(so `last.pt` already holds the epoch a hook looks at). A hook returns None to let training
go on, or a status string to stop the run with that status (e.g. "stopped_early",
"pruned"): the loop stops after that epoch, tests the model as for early stopping, and
writes the status to metrics.json. Every hook is called each epoch, in order; the first
status returned wins. A hook may also have `on_epoch_start(epoch: int) -> None`, called
before the epoch trains (unfreezing a backbone uses it).

Code outside the loop registers a factory with `register(factory)`: the factory gets the
run's config and returns a hook for that run, or None when it does not apply (the sweep's
pruning reporter returns None outside an Optuna trial). `hooks_for(cfg)` builds them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig


@dataclass
class EpochEnd:
    """What a hook sees at the end of an epoch."""

    epoch: int  # 1-based, the epoch just finished
    epochs: int  # the run's planned number of epochs
    train: dict[str, float]  # this epoch's training stats: loss (and acc)
    val: dict[str, float]  # this epoch's validation stats: loss (and acc or mse)
    monitor: str  # the monitored metric's name, e.g. "val/loss"
    value: float  # the monitored metric's value this epoch
    run_dir: Path
    cfg: DictConfig
    extra: dict[str, Any] = field(default_factory=dict)


class EpochHook(Protocol):
    def on_epoch_end(self, end: EpochEnd) -> str | None: ...


def epoch_start(hooks: list[EpochHook], epoch: int) -> None:
    """Call each hook's optional `on_epoch_start`."""
    for h in hooks:
        start = getattr(h, "on_epoch_start", None)
        if start is not None:
            start(epoch)


def epoch_end(hooks: list[EpochHook], end: EpochEnd) -> str | None:
    """Call every hook's `on_epoch_end`; the first status returned (None: train on)."""
    statuses = [h.on_epoch_end(end) for h in hooks]
    return next((s for s in statuses if s), None)


HookFactory = Callable[[DictConfig], "EpochHook | None"]
_FACTORIES: list[HookFactory] = []


def register(factory: HookFactory) -> HookFactory:
    """Add a factory (usable as a decorator); registering the same one twice is a no-op."""
    if factory not in _FACTORIES:
        _FACTORIES.append(factory)
    return factory


def hooks_for(cfg: DictConfig) -> list[EpochHook]:
    """The registered hooks that apply to this run, in registration order."""
    return [h for h in (f(cfg) for f in _FACTORIES) if h is not None]
