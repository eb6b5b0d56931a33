"""Batches for the training loop.

`TensorLoader` is the in-memory fast path: the split is one tensor (on the training
device when it is a GPU), each epoch draws one permutation from a seeded generator and
slices it, so there is no per-sample Python and no collate. Augmentation for it runs on
whole batches. Any other dataset goes through a `DataLoader` with workers and pinned
memory. Both draw the permutation from the same seeded generator: the same seed gives
the same batches either way.

Cached image folders (`data/pixels.py`'s `ImageBytes`) take the fast path too: uint8 pixels
(on the device, or memory-mapped on the host), each batch gathered, copied over and
normalized there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from dlx.data.splits import resize_to
from dlx.training.signals import ignore_ctrl_c_in_worker

Batch = tuple[torch.Tensor, torch.Tensor]


class TensorLoader:
    def __init__(
        self,
        dataset: TensorDataset,
        batch_size: int,
        shuffle: bool,
        device: torch.device,
        generator: torch.Generator | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images = dataset if hasattr(dataset, "pixels") else None  # pixels.ImageBytes
        if self.images is not None:
            self.n, self.y, self.device = len(dataset), dataset.y.to(device), device
        else:
            x, y = dataset.tensors
            self.x = x.to(device)
            self.y = y.to(device)
            self.n = len(self.x)
        self.size = getattr(dataset, "size", None)  # ImageTensors kept native: resize per batch
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.augment = augment
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (
            1 if rest and (not self.shuffle or rest >= _smallest(self.n, self.world_size)) else 0
        )

    def __iter__(self) -> Iterator[Batch]:
        n, bs = self.n, self.batch_size
        if self.shuffle:
            perm = torch.randperm(n, generator=self.generator)
            if self.images is None:
                perm = perm.to(self.x.device)
        for start in range(0, n, bs):
            if self.shuffle:
                idx = perm[start : start + bs]
                if len(idx) < _smallest(n, self.world_size):
                    return  # every rank steps together; batch norm cannot train on one sample
                if self.world_size > 1:
                    idx = idx[self.rank :: self.world_size]
                if self.images is not None:
                    xb, yb = self.images.batch(idx, self.device), self.y[idx.to(self.y.device)]
                else:
                    xb, yb = self.x[idx], self.y[idx]
            elif self.images is not None:
                xb = self.images.batch(slice(start, start + bs), self.device)
                yb = self.y[start : start + bs]
            else:
                xb, yb = self.x[start : start + bs], self.y[start : start + bs]
            if self.size is not None:
                xb = resize_to(xb, self.size)
            if self.augment is not None:
                xb = self.augment(xb)
            yield xb, yb


class _SeededShuffle(Sampler[list[int]]):
    """A shuffling batch sampler that draws from the loop's generator (same batches as the fast
    path). With several ranks each takes its interleaved share of every global batch, one list
    per step, so every rank takes the same number of steps whatever the batch size."""

    def __init__(self, n: int, generator: torch.Generator, batch_size: int, rank: int, world: int):
        self.n, self.generator, self.bs = n, generator, batch_size
        self.rank, self.world = rank, world

    def __iter__(self) -> Iterator[list[int]]:
        perm = torch.randperm(self.n, generator=self.generator)
        for start in range(0, self.n, self.bs):
            idx = perm[start : start + self.bs]
            if len(idx) < _smallest(self.n, self.world):
                return  # every rank steps together; batch norm cannot train on one sample
            if self.world > 1:
                idx = idx[self.rank :: self.world]
            yield idx.tolist()

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.bs)
        return full + (1 if rest and rest >= _smallest(self.n, self.world) else 0)


def _smallest(n: int, world: int) -> int:
    """The smallest training batch taken: one per rank, and never a last batch of a single
    sample (batch norm's training mode needs two; the next epoch's shuffle places it elsewhere),
    unless the data is that one sample."""
    return max(world, 2 if n > 1 else 1)


def default_workers() -> int:
    """DataLoader workers from the cores this process may use (up to 8; none on one core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(8, cores)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    device: torch.device,
    generator: torch.Generator | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    num_workers: int | None = None,
    rank: int = 0,
    world_size: int = 1,
):
    """The fast path for in-memory tensors, a DataLoader for everything else."""
    if isinstance(dataset, TensorDataset):
        return TensorLoader(
            dataset, batch_size, shuffle, device, generator, augment, rank, world_size
        )
    if num_workers is None:
        num_workers = default_workers()
    if not shuffle and len(dataset) <= 2 * batch_size:
        num_workers = 0  # a pool would cost more than the few batches it reads
    batches = None
    if shuffle:
        batches = _SeededShuffle(len(dataset), generator, batch_size, rank, world_size)
    return DataLoader(
        dataset,
        batch_size=1 if shuffle else batch_size,  # shuffled: the batch sampler sizes the batches
        batch_sampler=batches,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        # the training pool lives for the run; val/test pools only while they are read
        persistent_workers=num_workers > 0 and shuffle,
        worker_init_fn=ignore_ctrl_c_in_worker if num_workers > 0 else None,
    )
