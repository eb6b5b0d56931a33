"""Synthetic in-memory data for the benchmarks, as dlx data targets (`conf/data/bench_*.yaml`).

The tensors are made once per process and cached, so dlx's run and the hand-written
loops it is compared with train on the very same tensors (no copy, no second build).
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from dlx.data import DataBundle

_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def tensors(n: int, shape: tuple[int, ...], classes: int = 10, seed: int = 0):
    """`n` random images of `shape` (standard normal, already "normalized") and labels."""
    key = (n, tuple(shape), classes, seed)
    if key not in _CACHE:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, *shape, generator=g)
        y = torch.randint(0, classes, (n,), generator=g)
        _CACHE[key] = (x, y)
    return _CACHE[key]


def _bundle(cfg, shape: tuple[int, ...], name: str) -> DataBundle:
    x, y = tensors(int(cfg.n), shape)
    xe, ye = tensors(
        int(cfg.n_eval), shape, seed=1
    )  # val and test: small, so the epoch is training
    held_out = TensorDataset(xe, ye)
    return DataBundle(
        train=TensorDataset(x, y),
        val=held_out,
        test=held_out,
        task="classification",
        in_shape=tuple(shape),
        num_classes=10,
        classes=[str(i) for i in range(10)],
        mean=(0.0,) * shape[0],
        std=(1.0,) * shape[0],
        name=name,
    )


def mnist_like(cfg, seed: int, min_size: int | None = None) -> DataBundle:
    """MNIST-sized: N x 1x28x28."""
    return _bundle(cfg, (1, 28, 28), "bench_mnist")


def cifar_like(cfg, seed: int, min_size: int | None = None) -> DataBundle:
    """CIFAR-shaped: N x 3x32x32."""
    return _bundle(cfg, (3, 32, 32), "bench_cifar")


def easy(cfg, seed: int, min_size: int | None = None) -> DataBundle:
    """A task a net solves: class c is a bright pixel at position c of an 8x8 image, plus a
    little noise (the advice benchmark's "solved" situation: the loss reaches its floor)."""
    key = ("easy", int(cfg.n), int(cfg.n_eval))
    if key not in _CACHE:
        g = torch.Generator().manual_seed(0)

        def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.randint(0, 10, (n,), generator=g)
            x = 0.1 * torch.randn(n, 1, 8, 8, generator=g)
            x.view(n, -1)[torch.arange(n), 3 * y + 10] += 3.0
            return x, y

        _CACHE[key] = (*make(int(cfg.n)), *make(int(cfg.n_eval)))
    x, y, xe, ye = _CACHE[key]
    return DataBundle(
        train=TensorDataset(x, y),
        val=TensorDataset(xe, ye),
        test=TensorDataset(xe, ye),
        task="classification",
        in_shape=(1, 8, 8),
        num_classes=10,
        classes=[str(i) for i in range(10)],
        mean=(0.0,),
        std=(1.0,),
        name="bench_easy",
    )
