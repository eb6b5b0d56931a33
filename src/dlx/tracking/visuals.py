"""Pictures of a run: the model summary and graph at its start, the training images as the
model sees them (augmented), the first conv layer's filters and feature maps."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from dlx.data.augment import build_transform, images_of, per_sample
from dlx.data.batch_augment import BatchAugment, NotBatchable
from dlx.data.splits import denormalize
from dlx.models import count_parameters
from dlx.models.shapes import output_shapes, shape_text, table_modules


def model_summary(model: nn.Module) -> str:
    """Layers, parameters, trainable vs frozen, as a markdown table (TensorBoard renders it)."""
    rows = ["| layer | type | parameters | trainable |", "| --- | --- | ---: | --- |"]
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if not own:
            continue
        n = sum(p.numel() for p in own)
        trainable = (
            "yes"
            if all(p.requires_grad for p in own)
            else ("no" if not any(p.requires_grad for p in own) else "partly")
        )
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


def model_table(model: nn.Module, example: torch.Tensor | None) -> list[str]:
    """The model at the start of a run, a row per layer (two name levels deep): its type, the
    shape it outputs for one example (what stride 2 does to an 8x8 digit), its parameters.
    Layers without parameters that keep the shape (activations, dropout) are left out."""
    shapes = output_shapes(model, example) if example is not None else {}
    lines = [f"  {'layer':<22} {'type':<18} {'output':>12} {'parameters':>12}"]
    if shapes and example is not None:
        lines.append(f"  {'input':<22} {'':<18} {shape_text(example.shape[1:]):>12}")
    last = tuple(example.shape[1:]) if example is not None else None
    for name, module in table_modules(model):
        n_t = sum(p.numel() for p in module.parameters() if p.requires_grad)
        n_f = sum(p.numel() for p in module.parameters() if not p.requires_grad)
        shape = shapes.get(name)
        if shapes and not (n_t + n_f) and (shape is None or shape == last):
            continue
        last = shape if shape is not None else last
        state = "" if not n_t + n_f else "frozen" if not n_t else "" if not n_f else "partly"
        out = shape_text(shape) if shape is not None else ""
        params = f"{n_t + n_f:,}" if n_t + n_f else ""
        lines.append(f"  {name:<22} {type(module).__name__:<18} {out:>12} {params:>12}  {state}")
    return [line.rstrip() for line in lines]


def log_start(tracker, console, model: nn.Module, data, example: torch.Tensor, cfg: Any) -> None:
    t, f = count_parameters(model)
    console.print(
        f"model [bold]{type(model).__name__}[/]: {t + f:,} parameters "
        f"({t:,} trainable, {f:,} frozen)"
    )
    for line in model_table(model, example):
        console.print(line)
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
    augmented = bool((cfg.get("aug") or {}).get("transforms"))  # aug=none: no grid to show
    if data.is_image and augmented and getattr(tracker, "enabled", True):
        tracker.image("aug/train_samples", sample_grid(data, cfg.get("aug")))


def image_grid(
    images: torch.Tensor | list[torch.Tensor],
    nrow: int = 8,
    padding: int = 2,
    pad_value: float = 1.0,
) -> torch.Tensor:
    """(N, C, H, W) images, C 1 or 3, as one (3, H', W') picture, `nrow` per row: what
    `torchvision.utils.make_grid` draws (a test holds them equal), without importing torchvision,
    which pulls in torch._dynamo (over a second of every run's start-up)."""
    x = torch.stack(list(images)) if isinstance(images, list) else images
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    if n == 1:
        return x[0]  # as make_grid: one image, no frame
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = x.new_full(
        (3, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value
    )
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = r * (h + padding) + padding, c * (w + padding) + padding
        grid[:, top : top + h, left : left + w] = x[i]
    return grid


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The first 2-D convolution of a model (LeNet's `features.0`, ResNet's `conv1`), if any."""
    return next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def _tiles(x: torch.Tensor, side: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, side, side): each tile scaled to [0, 1] (its own min and max) and
    resized (nearest up, area down) so small filters and 8x8 digits can be seen."""
    x = x.detach().float().cpu()
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    x = (x - lo) / (hi - lo).clamp_min(1e-12)
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    mode = "nearest" if side >= x.shape[-1] else "area"
    return F.interpolate(x, size=(side, side), mode=mode)


def conv_layers(model: nn.Module, most: int = 8) -> list[tuple[str, nn.Conv2d]]:
    """Every 2-D convolution of a model, in order (LeNet's two, AlexNet's five); for deeper
    ones (ResNet's twenty) `most` of them spread evenly from the first to the last."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if len(convs) <= most:
        return convs
    picks = sorted({round(i * (len(convs) - 1) / (most - 1)) for i in range(most)})
    return [convs[i] for i in picks]


@torch.no_grad()
def log_conv_layer(
    tracker,
    model: nn.Module,
    images: torch.Tensor,
    step: int,
    n_images: int = 4,
    max_maps: int = 16,
) -> None:
    """The first conv layer's filters (`filters/<layer>`) and the feature maps of every conv
    layer for a few fixed validation images (`feature_maps/<layer>`: a row per image, the input
    then one map per filter), as TensorBoard images. Logged at the start and the end: what the
    filters learned, and how each layer's maps grow more abstract than the last's."""
    convs = conv_layers(model)
    if not convs or not getattr(tracker, "enabled", True):
        return
    name, conv = convs[0]
    w = conv.weight.detach()  # (out, in, kh, kw); RGB filters show as colour, others as gray
    filters = w if w.shape[1] in (1, 3) else w.mean(dim=1, keepdim=True)
    grid = image_grid(_tiles(filters, 48), nrow=min(8, len(filters)), padding=2, pad_value=1.0)
    tracker.image(f"filters/{name}", grid, step)

    maps: dict[str, torch.Tensor] = {}
    handles = [
        layer.register_forward_hook(lambda m, i, o, n=n: maps.setdefault(n, o.detach()))
        for n, layer in convs
    ]
    was_training = model.training
    model.eval()
    try:
        x = images[:n_images]
        model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for n, _ in convs:
        if n in maps:
            tracker.image(f"feature_maps/{n}", _map_grid(x, maps[n][:, :max_maps].float()), step)


def _map_grid(x: torch.Tensor, fmap: torch.Tensor) -> torch.Tensor:
    """A row per image: the input, then its maps (images, maps, h, w), each tile scaled up."""
    side = min(64, max(48, fmap.shape[-1]))
    inputs = _tiles(x if x.shape[1] in (1, 3) else x[:, :1], side).expand(-1, 3, -1, -1)
    tiles = []
    for img, m in zip(inputs, fmap, strict=True):
        tiles += [img, *_tiles(m.unsqueeze(1), side).expand(-1, 3, -1, -1)]
    return image_grid(tiles, nrow=fmap.shape[1] + 1, padding=2, pad_value=1.0)


def sample_grid(data, aug_cfg: Any, images: int = 8, draws: int = 4) -> torch.Tensor:
    """A (3, H, W) grid in [0, 1] of training images as the model sees them: with augmentation,
    `images` columns each drawn `draws` times (one row per draw); without, 32 images.

    Call after `build_batch_augment` (a per-sample training split is already augmented). Draws
    come from a fixed seed and leave the run's random state untouched.
    """
    ds = data.train
    compose = build_transform(aug_cfg)
    augmented = compose is not None
    k = min(images if augmented else images * draws, len(ds))
    idx = list(range(k)) * (draws if augmented else 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if isinstance(ds, TensorDataset):
            x = images_of(ds, idx)
            if augmented:
                transforms = list(compose.transforms)
                try:
                    batch = BatchAugment.build(transforms, data.mean, data.std, torch.device("cpu"))
                    x = batch(x, torch.Generator().manual_seed(0))
                except NotBatchable:
                    one_by_one = per_sample(ds, transforms, data)
                    x = torch.stack([one_by_one[i][0] for i in idx])
        else:
            x = torch.stack([ds[i][0] for i in idx])
    x = denormalize(x.float(), data.mean, data.std).clamp(0, 1)
    if x.shape[-1] < 48:  # tiny images (digits' 8x8) become visible
        x = F.interpolate(x, scale_factor=math.ceil(48 / x.shape[-1]), mode="nearest")
    return image_grid(x, nrow=k if augmented else images, padding=2, pad_value=1.0)
