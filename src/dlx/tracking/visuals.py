"""What a run logs once at its start: the model summary and graph, sample images."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from dlx.models import count_parameters


def model_summary(model: nn.Module) -> str:
    """Layers, parameters, trainable vs frozen, as a markdown table (TensorBoard renders it)."""
    rows = ["| layer | type | parameters | trainable |", "| --- | --- | ---: | --- |"]
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if not own:
            continue
        n = sum(p.numel() for p in own)
        trainable = "yes" if all(p.requires_grad for p in own) else ("no" if not any(p.requires_grad for p in own) else "partly")
        rows.append(f"| {name} | {type(module).__name__} | {n:,} | {trainable} |")
    t, f = count_parameters(model)
    rows.append(f"| **total** | | {t + f:,} | {t:,} trainable, {f:,} frozen |")
    return "\n".join(rows)


def block_summary(model: nn.Module, max_rows: int = 16) -> list[tuple[str, int, int]]:
    """(block, trainable, frozen) parameter counts per block, two name levels deep
    (`features.0`, `backbone.layer1`, `head`), or one level when that would be too many rows."""
    for depth in (2, 1):
        blocks: dict[str, list[int]] = {}
        for name, p in model.named_parameters():
            block = ".".join(name.split(".")[:-1][:depth]) or name
            counts = blocks.setdefault(block, [0, 0])
            counts[0 if p.requires_grad else 1] += p.numel()
        if len(blocks) <= max_rows:
            break
    return [(b, t, f) for b, (t, f) in blocks.items()]


def log_start(tracker, console, model: nn.Module, data, example: torch.Tensor, cfg: Any) -> None:
    t, f = count_parameters(model)
    console.print(f"model [bold]{type(model).__name__}[/]: {t + f:,} parameters ({t:,} trainable, {f:,} frozen)")
    for block, n_t, n_f in block_summary(model):
        state = "trainable" if not n_f else "frozen" if not n_t else f"{n_t:,} trainable"
        console.print(f"  {block:<24} {n_t + n_f:>12,}  {state}")
    if getattr(model, "weights_source", None):
        console.print(f"  weights: {model.weights_source}")
    tracker.text("model/summary", model_summary(model))
    tracker.loss_layout()
    if cfg.log.get("graph", True):
        try:
            was_training = model.training
            model.eval()
            with warnings.catch_warnings():  # add_graph traces with torch.jit, which warns
                warnings.simplefilter("ignore")
                tracker.graph(model, example[:2])
            model.train(was_training)
        except Exception as exc:  # tracing can fail on exotic models; the run goes on
            console.warn(f"could not add the model graph to TensorBoard ({type(exc).__name__})")
    if getattr(data, "augmentation", ""):
        console.print(f"augmentation: {data.augmentation}")
    for note in getattr(data, "notes", ()):
        console.warn(note)
    if data.is_image and getattr(tracker, "enabled", True):
        from dlx.data.augment import sample_grid  # training images as the model sees them

        tracker.image("aug/train_samples", sample_grid(data, cfg.get("aug")))
