"""The lecture's 1-D regression target, sampled on a grid in [-1, 1]."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from dlx.data import DataBundle
from dlx.data.splits import split_indices


def lecture_function(x: torch.Tensor) -> torch.Tensor:
    """f(x) = 0.2 + 0.4x^3 + 0.3x sin(15x) + 0.05 cos(20x)."""
    return 0.2 + 0.4 * x**3 + 0.3 * x * torch.sin(15 * x) + 0.05 * torch.cos(20 * x)


def load(cfg, seed: int, min_size: int | None = None) -> DataBundle:
    x = torch.linspace(-1.0, 1.0, cfg.get("n_points", 1024)).unsqueeze(1)
    y = lecture_function(x)
    tr, va, te = split_indices(len(x), cfg.val_fraction, cfg.test_fraction, seed, cfg.get("limit"))
    y_train = y[tr]
    if cfg.get("noise", 0.0):
        gen = torch.Generator().manual_seed(seed + 1)
        y_train = y_train + cfg.noise * torch.randn(y_train.shape, generator=gen)
    return DataBundle(
        train=TensorDataset(x[tr], y_train),
        val=TensorDataset(x[va], y[va]),
        test=TensorDataset(x[te], y[te]),
        task="regression",
        in_shape=(1,),
        true_fn=lecture_function,
        name="function",
    )
