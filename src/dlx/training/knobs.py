"""The optional parts of a run, built once from the config: the training knobs (clipping,
label smoothing, MixUp/CutMix, the weight EMA, warmup + schedule) and the `debug` group's
aids. Each is None (or a no-op) when off, so the training step pays nothing for it.

The loop's code reaches them through `run.knobs`; the step takes them at its two plug-in
points (`Step.on_grads`: clipping; `Step.on_update`: warmup/per-batch schedule, EMA, profiler).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from dlx.data.mixing import Mix, build_mixing
from dlx.training.clipping import GradClip
from dlx.training.debug import Anomaly, DebugOptions, FixedBatches, limit_loader
from dlx.training.ema import EMA, build_ema
from dlx.training.optim import build_loss
from dlx.training.profiling import StepProfiler
from dlx.training.warmup import LRSchedule


@dataclass
class Knobs:
    train_loss_fn: torch.nn.Module  # label smoothing here only: val/test report plain loss
    schedule: LRSchedule
    debug: DebugOptions
    clip: GradClip | None = None
    mix: Mix | None = None
    ema: EMA | None = None
    anomaly: Anomaly | None = None
    profiler: StepProfiler | None = None
    throughput: list[float] = field(default_factory=list)  # samples/s of each epoch trained

    def on_grads(self, scaler: Any) -> list:
        return [lambda: self.clip(scaler)] if self.clip is not None else []

    def on_update(self, model: torch.nn.Module) -> list:
        """What runs after each optimizer step, only what is on."""
        s = self.schedule
        steps = [s.after_step] if s.warmup is not None or s.when == "batch" else []
        if self.ema is not None:
            steps.append(lambda: self.ema.update(model))
        if self.profiler is not None:
            steps.append(self.profiler.step)
        return steps

    def detecting(self) -> contextlib.AbstractContextManager:
        """Around the epochs: autograd anomaly detection under debug=anomaly."""
        return self.anomaly.detecting() if self.anomaly else contextlib.nullcontext()


def debug_loaders(debug: DebugOptions, train: Any, val: Any, test: Any) -> tuple[Any, Any, Any]:
    """debug.overfit_batches (the same first N every epoch), then debug.limit_batches."""
    if debug.overfit_batches:
        train = FixedBatches(train, debug.overfit_batches)
    return tuple(limit_loader(loader, debug.limit_batches) for loader in (train, val, test))


def build_knobs(
    cfg: DictConfig,
    data: Any,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    debug: DebugOptions,
) -> Knobs:
    return Knobs(
        train_loss_fn=build_loss(
            cfg.loss, data.task, float(cfg.get("label_smoothing", 0.0)), data.num_classes
        ),
        schedule=schedule,
        debug=debug,
        clip=GradClip(optimizer, cfg.grad_clip) if cfg.get("grad_clip") else None,
        mix=build_mixing(cfg.get("aug"), data),
        ema=build_ema(cfg, model),
        anomaly=Anomaly() if debug.anomaly else None,
    )


def start_profiler(knobs: Knobs, run_dir: Path, device: torch.device, console: Any) -> None:
    """debug=profiler: profile the first training steps (rank 0, when epochs are left)."""
    if knobs.debug.profile_steps:
        knobs.profiler = StepProfiler(
            knobs.debug.profile_steps, run_dir / "profiler", device, console
        )
