"""`loss=bce`: the lecture's binary cross-entropy, -[y log p + (1 - y) log(1 - p)] with
p = sigmoid(z), for two-class data. The model has one output unit z.

So that everything else in dlx (accuracy by argmax, `dlx eval`'s per-class table and
confusion matrix, softmax probabilities) works unchanged, the model's output is shown as the
two logits [0, z]: softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)], and argmax picks class 1
exactly when sigmoid(z) > 0.5. The loss reads z back (column 1) and applies
BCEWithLogits to it, which is the slide's formula, computed stably.
"""

from __future__ import annotations

import torch
from torch import nn


def _two_logits(_module: nn.Module, _inputs, out: torch.Tensor) -> torch.Tensor:
    """(N, 1) -> (N, 2): [0, z]."""
    return torch.cat([torch.zeros_like(out), out], dim=1)


def one_logit(model: nn.Module) -> nn.Module:
    """Make a one-output model's forward return [0, z] (a forward hook: the weights, the state
    dict and the layer names stay the model's own)."""
    model.register_forward_hook(_two_logits)
    model.binary_output = True
    return model


class BinaryCrossEntropy(nn.Module):
    """BCEWithLogits on z = output[:, 1] (the one unit) against the class 0/1. Soft targets
    (MixUp/CutMix: one row per sample over the two classes) use their class-1 share."""

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        z = out[:, 1] if out.dim() == 2 and out.shape[1] == 2 else out.reshape(-1)
        y = target[:, 1] if target.dim() == 2 else target
        return nn.functional.binary_cross_entropy_with_logits(z, y.to(z.dtype))
