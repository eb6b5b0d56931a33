"""scikit-learn's 8x8 digits: 1797 grayscale images, 10 classes, offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from dlx.data import DataBundle
from dlx.data.splits import image_bundle


def read_digits():
    """(images (N, 8, 8) in 0..16, labels): the CSV scikit-learn ships, read directly, because
    importing scikit-learn takes about a second of every run's start; `load_digits` otherwise."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    for root in (spec.submodule_search_locations or []) if spec else []:
        csv = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if csv.is_file():
            import numpy as np

            data = np.loadtxt(csv, delimiter=",")  # what load_digits reads: 64 pixels, label
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target


def load(cfg, seed: int, min_size: int | None = None) -> DataBundle:
    images, labels = read_digits()
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    y = torch.tensor(labels, dtype=torch.long)
    return image_bundle(x, y, cfg, seed, min_size, [str(i) for i in range(10)], "digits")
