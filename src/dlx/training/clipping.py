"""Gradient clipping by norm (`grad_clip`): torch's `clip_grad_norm_`, with the norm it saw.

All gradients are treated as one vector; when its L2 norm exceeds `max_norm` every gradient
is scaled by max_norm / norm (the direction is kept, the step is bounded). The norm before
clipping is what tells a user whether clipping does anything: it is summed on the device at
each step and read once per epoch (mean, max, share of clipped steps).
"""

from __future__ import annotations

import torch


class GradClip:
    """Clip the gradients of the optimizer's parameters to `max_norm` (call after backward)."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_norm: float) -> None:
        self.optimizer, self.max_norm = optimizer, float(max_norm)
        self._params: list[torch.Tensor] = []
        self._groups = -1
        self._reset()

    def _reset(self) -> None:
        self.norm_sum: torch.Tensor | float = 0.0
        self.norm_max: torch.Tensor | float = 0.0
        self.clipped: torch.Tensor | float = 0.0
        self.steps = 0

    def params(self) -> list[torch.Tensor]:
        # refreshed only when a group joins (model.unfreeze_at_epoch), not rebuilt every step
        if len(self.optimizer.param_groups) != self._groups:
            self._groups = len(self.optimizer.param_groups)
            self._params = [p for g in self.optimizer.param_groups for p in g["params"]]
        return self._params

    def __call__(self, scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
        """Clip in place; returns the pre-clip total norm (a device tensor: no host sync)."""
        if scaler is not None:
            # fp16: the gradients still carry the loss scale; clip the true ones. The scaler
            # remembers the unscale, so its step does not divide a second time.
            scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.params(), self.max_norm, foreach=True)
        # an fp16 overflow step (inf norm) is skipped by the scaler: keep it out of the stats
        finite = torch.where(torch.isfinite(norm), norm, torch.zeros_like(norm))
        self.norm_sum = self.norm_sum + finite
        self.norm_max = torch.maximum(torch.as_tensor(self.norm_max, device=norm.device), finite)
        self.clipped = self.clipped + (finite > self.max_norm).float()
        self.steps += 1
        return norm

    def epoch_stats(self) -> dict[str, float]:
        """This epoch's pre-clip norms (one host sync, at the epoch's end), then a fresh start."""
        if not self.steps:
            return {}
        n = self.steps
        stats = torch.stack([self.norm_sum, self.norm_max, self.clipped]).tolist()
        self._reset()
        return {
            "grad_clip/norm_mean": stats[0] / n,  # the gradient norm before clipping
            "grad_clip/norm_max": stats[1],
            "grad_clip/clipped_fraction": stats[2] / n,  # share of steps that were clipped
        }
