"""The in-memory fast path against a per-sample DataLoader, on the same CIFAR-shaped data.

Side by side in this process, interleaved, each repeated (medians, paired ratios):
- no augmentation: dlx's `TensorLoader` (one tensor, a seeded permutation sliced into
  batches) vs `DataLoader(TensorDataset, shuffle=True)` with dlx's default workers
  (per-sample indexing and collate);
- aug=cifar (the lecture's RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor +
  Normalize): `TensorLoader` with `BatchAugment` (whole batches, a random draw per sample)
  vs the lecture's code: a dataset of uint8 HWC images like torchvision's CIFAR10, the
  `transforms.Compose` run per image (PIL), in DataLoader workers;
- the same two, each feeding one epoch of LeNet training (Adam), which is what a run waits for.

An epoch is timed after one warm-up epoch (workers started, persistent) so start-up is not
counted against either side.
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F
from benchlib import Row, median, rotated, spread
from torch.utils.data import DataLoader, Dataset, TensorDataset

BATCH = 128
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def cifar_shaped(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n, 32, 32, 3) images (torchvision CIFAR10's `.data` layout) and labels."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g), torch.randint(
        0, 10, (n,), generator=g
    )


class LectureCIFAR(Dataset):
    """What the lecture's code does per image: PIL image -> `transforms.Compose` -> tensor."""

    def __init__(self, hwc: torch.Tensor, y: torch.Tensor, transform) -> None:
        self.hwc, self.y, self.transform = hwc.numpy(), y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.hwc[i])), self.y[i]


def lecture_transform():
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(CIFAR_MEAN, CIFAR_STD),
        ]
    )


def workers() -> int:
    return min(4, max(0, (os.cpu_count() or 1) - 1))  # dlx's default (data/loader.py)


def loaders(hwc: torch.Tensor, y: torch.Tensor) -> dict[str, object]:
    """The four pipelines over the same images."""
    from omegaconf import OmegaConf

    from dlx.config.compose import conf_dir
    from dlx.data import DataBundle
    from dlx.data.augment import build_batch_augment
    from dlx.data.loader import make_loader
    from dlx.data.splits import normalize

    x = normalize(hwc.permute(0, 3, 1, 2).float().div(255), CIFAR_MEAN, CIFAR_STD).contiguous()
    tensors = TensorDataset(x, y)
    cpu = torch.device("cpu")
    bundle = DataBundle(
        tensors,
        tensors,
        tensors,
        "classification",
        (3, 32, 32),
        10,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        name="bench",
    )
    batch_aug = build_batch_augment(OmegaConf.load(conf_dir() / "aug" / "cifar.yaml"), bundle, cpu)
    assert batch_aug is not None, "aug=cifar runs on whole batches"
    w = workers()

    def per_sample(ds: Dataset) -> DataLoader:
        return DataLoader(
            ds,
            batch_size=BATCH,
            shuffle=True,
            num_workers=w,
            persistent_workers=w > 0,
            generator=torch.Generator().manual_seed(0),
        )

    return {
        "fast": make_loader(tensors, BATCH, True, cpu, torch.Generator().manual_seed(0)),
        "dataloader": per_sample(tensors),
        "fast+aug": make_loader(
            tensors, BATCH, True, cpu, torch.Generator().manual_seed(0), batch_aug
        ),
        "dataloader+aug": per_sample(LectureCIFAR(hwc, y, lecture_transform())),
    }


def epoch(loader, model=None, opt=None) -> float:
    """One pass over the loader (and a training step per batch when a model is given)."""
    start = time.perf_counter()
    for xb, yb in loader:
        if model is not None:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def run(quick: bool = False, repeats: int | None = None, log=print) -> list[Row]:
    from dlx.models.cnn import LeNet

    n = 5_000 if quick else 20_000
    n_train = 1_000 if quick else 4_000
    repeats = repeats or (1 if quick else 3)
    hwc, y = cifar_shaped(n)
    pipes = loaders(hwc, y)
    train_pipes = loaders(hwc[:n_train], y[:n_train])
    names = list(pipes)
    times: dict[str, list[float]] = {k: [] for k in names}
    train_times: dict[str, list[float]] = {k: [] for k in ("fast+aug", "dataloader+aug")}
    for name in names:  # warm-up: workers started, kernels and allocator ready
        epoch(pipes[name])
    for name in train_times:
        epoch(train_pipes[name])
    for r in range(repeats):
        for name in rotated(names, r):
            times[name].append(epoch(pipes[name]))
            log(f"  fast path repeat {r + 1}/{repeats} {name}: {times[name][-1]:.2f} s")
        for name in rotated(list(train_times), r):
            torch.manual_seed(0)
            model = LeNet((3, 32, 32), 10)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            train_times[name].append(epoch(train_pipes[name], model, opt))
            seconds = train_times[name][-1]
            log(f"  fast path repeat {r + 1}/{repeats} {name} + LeNet: {seconds:.2f} s")

    def ratio(t: dict[str, list[float]], a: str, b: str) -> float:
        return median([p / q for p, q in zip(t[a], t[b], strict=True)])

    bench = (
        f"fast path vs per-sample DataLoader ({n:,} x 3x32x32, batch {BATCH}, {workers()} workers)"
    )
    no_aug, aug = ratio(times, "dataloader", "fast"), ratio(times, "dataloader+aug", "fast+aug")
    trained = ratio(train_times, "dataloader+aug", "fast+aug")
    return [
        Row(
            bench,
            "no aug, batches only: TensorLoader s/epoch",
            spread(times["fast"], digits=3),
            runs=repeats,
        ),
        Row(
            bench,
            "no aug, batches only: DataLoader(TensorDataset) s/epoch",
            spread(times["dataloader"], digits=3),
            runs=repeats,
        ),
        Row(
            bench,
            "no aug: DataLoader / fast path",
            f"{no_aug:.1f}x",
            "> 1 (fast path faster)",
            no_aug > 1,
            repeats,
        ),
        Row(
            bench,
            "aug=cifar, batches only: fast path + BatchAugment s/epoch",
            spread(times["fast+aug"], digits=3),
            runs=repeats,
        ),
        Row(
            bench,
            "aug=cifar, batches only: lecture Compose per image in DataLoader s/epoch",
            spread(times["dataloader+aug"], digits=3),
            runs=repeats,
        ),
        Row(
            bench,
            "aug=cifar: DataLoader / fast path",
            f"{aug:.1f}x",
            "> 1 (fast path faster)",
            aug > 1,
            repeats,
        ),
        Row(
            bench,
            f"aug=cifar + LeNet training ({n_train:,} images): fast path s/epoch",
            spread(train_times["fast+aug"]),
            runs=repeats,
        ),
        Row(
            bench,
            f"aug=cifar + LeNet training ({n_train:,} images): DataLoader s/epoch",
            spread(train_times["dataloader+aug"]),
            runs=repeats,
        ),
        Row(
            bench,
            "aug=cifar + LeNet: DataLoader / fast path",
            f"{trained:.2f}x",
            "> 1 (fast path faster)",
            trained > 1,
            repeats,
        ),
    ]


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
