"""scikit-learn's 8x8 digits: 1797 grayscale images, 10 classes, offline."""

from __future__ import annotations

import torch

from dlx.data import DataBundle
from dlx.data.splits import image_shape, image_splits


def load(cfg, seed: int, min_size: int | None = None) -> DataBundle:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (
        torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    )  # (N, 1, 8, 8) in [0, 1]
    y = torch.tensor(digits.target, dtype=torch.long)
    train, val, test, mean, std = image_splits(x, y, cfg, seed, min_size)
    return DataBundle(
        train=train,
        val=val,
        test=test,
        task="classification",
        in_shape=image_shape(train),
        num_classes=10,
        classes=[str(i) for i in range(10)],
        mean=mean,
        std=std,
        name="digits",
    )
