"""One training step, the lecture's backpropagation slide: forward, loss, backward, update.

`train_step` is the only place dlx takes an optimizer step; `fit()` and `dlx lr-find` both
call it. What varies between runs is read once into a `Step` (an OmegaConf lookup costs
~10 us, the step itself well under a millisecond on a small model), and features plug in
at the two points a trainer needs without rewriting the step:

- `on_grads`: after backward, before the update: the gradients are complete (and, with fp16,
  still scaled). The gradient monitor reads them here; clipping belongs here too.
- `on_update`: after the optimizer step: a per-batch scheduler steps here; an EMA of the
  weights would update here.

`accum` > 1 splits each batch into that many micro-batches whose gradients add up before
one update, so the update equals the whole batch's (on a model without batch norm).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from dlx.training.device import autocast
from dlx.training.optim import l1_penalty


@dataclass(slots=True)
class Step:
    """How one optimizer step is taken. `net` runs the forward (the model, or its DDP /
    compiled wrapper); `model` is the plain module the L1 penalty reads."""

    net: torch.nn.Module
    model: torch.nn.Module
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    scaler: torch.amp.GradScaler | None = None  # fp16 only: loss scaling against underflow
    precision: str = "fp32"
    channels_last: bool = False
    l1: float = 0.0
    accum: int = 1  # micro-batches per update
    on_grads: list[Callable[[], None]] = field(default_factory=list)
    on_update: list[Callable[[], None]] = field(default_factory=list)


def train_step(s: Step, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, loss, backward and one optimizer step on the batch (xb, yb), already on the
    device. Returns the model's output and the data loss (without the L1 term), both still on
    the device: reading them is the caller's choice, since `.item()` waits for the device."""
    if s.channels_last and xb.dim() == 4:
        xb = xb.contiguous(memory_format=torch.channels_last)
    s.optimizer.zero_grad(set_to_none=True)
    if s.accum == 1:  # the common case: no chunking, no extra tensors
        out, data_loss = _forward_backward(s, xb, yb, 1.0)
    else:
        outs, data_loss = [], torch.zeros((), device=xb.device)
        chunks = list(zip(xb.chunk(s.accum), yb.chunk(s.accum), strict=True))
        for i, (xc, yc) in enumerate(chunks):
            share = len(yc) / len(yb)  # each micro-batch's part of the batch's mean loss
            # DDP all-reduces gradients at every backward: only the last one needs it
            no_sync = getattr(s.net, "no_sync", None)
            sync = i == len(chunks) - 1 or no_sync is None
            with contextlib.nullcontext() if sync else no_sync():
                o, loss = _forward_backward(s, xc, yc, share)
            outs.append(o)
            data_loss = data_loss + loss.detach().float() * share
        out = torch.cat(outs)
    for f in s.on_grads:
        f()
    # update: theta <- theta - lr * update(grad)
    if s.scaler is not None:
        s.scaler.step(s.optimizer)  # skipped when fp16 gradients overflowed
        s.scaler.update()
    else:
        s.optimizer.step()
    for f in s.on_update:
        f()
    return out, data_loss


def _forward_backward(
    s: Step, xb: torch.Tensor, yb: torch.Tensor, share: float
) -> tuple[torch.Tensor, torch.Tensor]:
    # forward: prediction and loss (plus the L1 penalty on the weights)
    with autocast(s.device, s.precision):
        out = s.net(xb)
        data_loss = s.loss_fn(out, yb)
    loss = data_loss + s.l1 * l1_penalty(s.model) if s.l1 else data_loss
    if share != 1.0:
        loss = loss * share
    # backward: gradients of the loss w.r.t. every trainable parameter (added to .grad)
    if s.scaler is not None:
        s.scaler.scale(loss).backward()
    else:
        loss.backward()
    return out, data_loss
