"""Forward and backward of one batch, in `grad_accum` micro-batches when asked.

`batch_size` stays the effective batch: the loader hands over the whole batch, it is cut
into `grad_accum` micro-batches, each one's mean loss is weighted by its share of the batch
and backpropagated, and the gradients add up in `.grad`. The sum of the weighted means is the
big batch's mean loss, so the gradient (and the optimizer step) is the big batch's: exactly
so, up to float rounding, for a model without batch norm (batch norm sees each micro-batch's
statistics instead of the batch's). Only one micro-batch's activations are held at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from dlx.training.device import autocast


def micro_batches(
    x: torch.Tensor, y: torch.Tensor, n: int
) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(x, y, weight) for up to `n` near-equal slices; the weights (shares of the batch) sum
    to 1. A last batch smaller than `n` gives fewer slices, none empty."""
    if n == 1:
        return [(x, y, 1.0)]
    total = len(x)
    return [
        (xs, ys, len(xs) / total)
        for xs, ys in zip(x.tensor_split(n), y.tensor_split(n), strict=True)
        if len(xs)
    ]


def forward_backward(
    net: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    xb: torch.Tensor,
    yb: torch.Tensor,
    *,
    device: torch.device,
    precision: str = "fp32",
    micro: int = 1,
    penalty: Callable[[], torch.Tensor] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    classify: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Backpropagate the batch's loss (gradients accumulate: zero them before). Returns the
    batch's mean data loss and, when `classify`, how many it got right: device tensors, so
    nothing here waits for the device."""
    parts = micro_batches(xb, yb, micro)
    # DDP all-reduces the gradients at each backward; with micro-batches only the last one
    # needs to (the earlier ones just add to .grad locally)
    no_sync = getattr(net, "no_sync", None)
    data_loss: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    for i, (x, y, weight) in enumerate(parts):
        quiet = (
            no_sync() if no_sync is not None and i < len(parts) - 1 else contextlib.nullcontext()
        )
        with quiet:
            with autocast(device, precision):
                out = net(x)
                part_loss = loss_fn(out, y)
            loss = part_loss * weight if weight != 1.0 else part_loss
            if penalty is not None and i == 0:  # a penalty on the weights counts once per step
                loss = loss + penalty()
            (scaler.scale(loss) if scaler is not None else loss).backward()
        # one micro-batch (the default): no extra kernels on the hot path
        d = part_loss.detach().float()
        d = d * weight if weight != 1.0 else d
        data_loss = d if data_loss is None else data_loss + d
        if classify:
            # MixUp/CutMix give soft targets: the dominant label counts as the right answer
            labels = y.argmax(1) if y.dim() > 1 else y
            c = (out.argmax(1) == labels).sum()
            correct = c if correct is None else correct + c
    return data_loss, correct
