"""The lecture's "space folding" data: two classes of points in the plane that no straight line
separates, made offline. `moons` and `circles` are scikit-learn's `make_moons` /
`make_circles`; `spiral` is two interleaved arms, r = t, angle = 2 pi turns t (+ pi for the
second arm). `data.n_samples` points in all (half per class), `data.noise` the std of the
Gaussian jitter; the points and the split follow `data.seed`.

A shallow network struggles to separate them; stacking layers folds the plane until it can
(watch the `decision_boundary` figure).
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset

from dlx.data import DataBundle
from dlx.data.splits import split_indices
from dlx.errors import UserError

SHAPES = ("moons", "circles", "spiral")


def spiral(n: int, noise: float, turns: float, gen: torch.Generator) -> tuple:
    """(points (n, 2), labels (n,)): two arms, each from the centre out to radius 1."""
    half = n // 2
    t = torch.linspace(0.05, 1.0, n - half), torch.linspace(0.05, 1.0, half)
    xs, ys = [], []
    for label, ti in enumerate(t):
        angle = 2 * math.pi * turns * ti + label * math.pi
        xs.append(torch.stack([ti * torch.cos(angle), ti * torch.sin(angle)], dim=1))
        ys.append(torch.full((len(ti),), label, dtype=torch.long))
    x = torch.cat(xs)
    return x + noise * torch.randn(x.shape, generator=gen), torch.cat(ys)


def points(cfg, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    name, n = str(cfg.name), int(cfg.get("n_samples", 1000))
    noise = float(cfg.get("noise", 0.0))
    if name == "spiral":
        gen = torch.Generator().manual_seed(seed)
        return spiral(n, noise, float(cfg.get("turns", 1.5)), gen)
    if name not in SHAPES:
        raise UserError(
            f"Invalid value for `data.name`: {name!r}. Allowed: {' | '.join(SHAPES)}.",
            key="data.name",
        )
    from sklearn import datasets

    state = seed % 2**32  # scikit-learn takes 32-bit seeds
    if name == "moons":
        x, y = datasets.make_moons(n, noise=noise, random_state=state)
    else:
        factor = float(cfg.get("factor", 0.5))
        x, y = datasets.make_circles(n, noise=noise, factor=factor, random_state=state)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


def load(cfg, seed: int, min_size: int | None = None) -> DataBundle:
    x, y = points(cfg, seed)
    tr, va, te = split_indices(len(x), cfg.val_fraction, cfg.test_fraction, seed, cfg.get("limit"))
    return DataBundle(
        train=TensorDataset(x[tr], y[tr]),
        val=TensorDataset(x[va], y[va]),
        test=TensorDataset(x[te], y[te]),
        task="classification",
        in_shape=(2,),
        num_classes=2,
        classes=["0", "1"],
        name=str(cfg.name),
    )
