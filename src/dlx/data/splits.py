"""Seeded train/val/test splits and per-channel normalization for in-memory image tensors.

Normalization is preprocessing, not augmentation: every split is normalized with the same
mean/std (the dataset's published values from `data.mean`/`data.std`, or else the training
split's own statistics).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from dlx.data.folds import train_val as _train_val
from dlx.errors import UserError

# An in-memory split resized up front past this size (all splits together, float32) is kept
# at its native size and resized per batch instead (e.g. CIFAR-10 at 224x224 would need 36 GB).
MAX_RESIZED_BYTES = 2 * 1024**3


class ImageTensors(TensorDataset):
    """Images in memory at their native size, resized to `size` x `size` when read (per batch on
    the fast path, per sample through a DataLoader). `size=None`: used as stored."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, size: int | None = None) -> None:
        super().__init__(x, y)
        self.size = size

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        if self.size is not None:
            x = resize_to(x.unsqueeze(0), self.size).squeeze(0)
        return x, y


def split_indices(
    n: int, val_fraction: float, test_fraction: float, seed: int, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A permutation fixed by `seed`, cut into test | val | train; `limit` trims train only.
    Under `cross_validation`, val is a fold of everything but the test split."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    test = perm[:n_test]
    train, val = _train_val(perm[n_test:], n_val)
    if limit is not None:
        train = train[:limit]
    return train, val, test


def split_train_val(
    n: int, val_fraction: float, seed: int, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For sets with an official test split: a seeded val | train cut of the training pool
    (under `cross_validation`, val is a fold of the pool)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train, val = _train_val(perm, max(1, round(n * val_fraction)))
    if limit is not None:
        train = train[:limit]
    return train, val


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of an (N, C, H, W) tensor."""
    dims = [0, 2, 3]
    mean = x.mean(dim=dims)
    std = x.std(dim=dims).clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


def configured_stats(cfg, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """`data.mean`/`data.std` from the config (one value per channel, or one for all), or None."""
    mean, std = cfg.get("mean"), cfg.get("std")
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        missing = "data.std" if std is None else "data.mean"
        raise UserError(
            f"`data.mean` and `data.std` go together: set `{missing}` too (or both null).",
            key=missing,
        )
    out = []
    for key, values in (("data.mean", list(mean)), ("data.std", list(std))):
        if len(values) == 1:
            values = values * channels
        if len(values) != channels:
            raise UserError(
                f"`{key}` has {len(values)} values but the images have {channels} channel(s). "
                f"Allowed: one value per channel (or a single value), or null to compute it.",
                key=key,
            )
        out.append(tuple(float(v) for v in values))
    return out[0], out[1]


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def denormalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Back to pixel values in [0, 1] (for display and for per-sample torchvision transforms)."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return x * s + m


def resize_to(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize (N, C, H, W) images to `size` x `size` (bilinear), if a size is asked for."""
    if size is None or x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def target_size(cfg, native: int, min_size: int | None) -> int | None:
    """`data.image_size`, raised to the model's minimum; None keeps the native size."""
    size = cfg.get("image_size") or None
    if min_size and (size or native) < min_size:
        size = min_size
    return None if size == native else size


def image_splits(
    x: torch.Tensor,
    y: torch.Tensor,
    cfg,
    seed: int,
    min_size: int | None,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[ImageTensors, ImageTensors, ImageTensors, tuple, tuple]:
    """Split images in [0, 1], resize (config or the model's minimum), normalize every split.

    `test`: an official test set (x, y); then `x` is only cut into train | val. Splits that
    would be too big resized are kept native and resized when read (`ImageTensors.size`).
    """
    size = target_size(cfg, x.shape[-1], min_size)
    n_total = len(x) + (len(test[0]) if test is not None else 0)
    lazy = size is not None and n_total * x.shape[1] * size * size * 4 > MAX_RESIZED_BYTES
    if not lazy:
        x = resize_to(x, size)
        if test is not None:
            test = (resize_to(test[0], size), test[1])
    if test is None:
        tr, va, te = split_indices(
            len(x), cfg.val_fraction, cfg.test_fraction, seed, cfg.get("limit")
        )
        parts = [(x[i], y[i]) for i in (tr, va, te)]
    else:
        tr, va = split_train_val(len(x), cfg.val_fraction, seed, cfg.get("limit"))
        parts = [(x[tr], y[tr]), (x[va], y[va]), test]
    del x
    stats = configured_stats(cfg, parts[0][0].shape[1]) or channel_stats(parts[0][0])
    mean, std = stats
    sets = [
        ImageTensors(normalize(a, mean, std).contiguous(), b.contiguous(), size if lazy else None)
        for a, b in parts
    ]
    return sets[0], sets[1], sets[2], mean, std


def image_shape(ds: TensorDataset) -> tuple[int, ...]:
    """(C, H, W) as the model sees it (after a per-batch resize, if any)."""
    c, h, w = ds.tensors[0].shape[1:]
    size = getattr(ds, "size", None)
    return (c, size, size) if size else (c, h, w)


def image_bundle(
    x, y, cfg, seed: int, min_size: int | None, classes: list[str], name: str, test=None
):
    """Split, resize and normalize in-memory images into a classification DataBundle."""
    from dlx.data import DataBundle

    native = tuple(x.shape[-2:])
    train, val, test_ds, mean, std = image_splits(x, y, cfg, seed, min_size, test=test)
    return DataBundle(
        train=train,
        val=val,
        test=test_ds,
        task="classification",
        in_shape=image_shape(train),
        num_classes=len(classes),
        classes=classes,
        mean=mean,
        std=std,
        name=name,
        native_size=native,
    )
