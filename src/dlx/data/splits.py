"""Seeded train/val/test splits and per-channel normalization for in-memory tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset


def split_indices(
    n: int, val_fraction: float, test_fraction: float, seed: int, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A permutation fixed by `seed`, cut into test | val | train; `limit` trims train only."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    if limit is not None:
        train = train[:limit]
    return train, val, test


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of an (N, C, H, W) tensor."""
    dims = [0, 2, 3]
    mean = x.mean(dim=dims)
    std = x.std(dim=dims).clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def resize_to(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize (N, C, H, W) images to `size` x `size` (bilinear), if a size is asked for."""
    if size is None or x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def image_splits(
    x: torch.Tensor, y: torch.Tensor, cfg, seed: int, min_size: int | None
) -> tuple[TensorDataset, TensorDataset, TensorDataset, tuple, tuple]:
    """Split images in [0, 1], resize (config or the model's minimum), normalize by train stats."""
    size = cfg.get("image_size") or None
    if min_size and (size or x.shape[-1]) < min_size:
        size = min_size
    x = resize_to(x, size)
    tr, va, te = split_indices(len(x), cfg.val_fraction, cfg.test_fraction, seed, cfg.get("limit"))
    mean, std = channel_stats(x[tr])
    x = normalize(x, mean, std)
    parts = [TensorDataset(x[i].contiguous(), y[i].contiguous()) for i in (tr, va, te)]
    return parts[0], parts[1], parts[2], mean, std
