"""Your own images: `data.root` holds one sub-folder per class (torchvision's ImageFolder).

Images are read from disk per sample through a DataLoader (workers, pinned memory), resized
(shorter side) and centre-cropped to `data.image_size`, and normalized with `data.mean`/
`data.std`, or with statistics measured on (up to 256 of) the training images. The
train/val/test split is a seeded permutation, like every other dataset's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from dlx.data import DataBundle
from dlx.data.augment import SampleAugment
from dlx.data.splits import channel_stats, configured_stats, split_indices
from dlx.errors import UserError

STATS_SAMPLE = 256  # training images read to measure the mean/std when the config gives none


class ImageFiles(Dataset):
    """A split of an image folder: (path, class) samples picked by `indices`, each read as RGB,
    resized to `size`, then `finish` (augmentation for the training split, then normalization)."""

    def __init__(
        self,
        samples: list[tuple[str, int]],
        indices: list[int],
        size: int,
        finish: SampleAugment,
        augmented: bool = False,
    ) -> None:
        self.samples, self.indices, self.size = samples, indices, size
        self.finish = finish
        self.augmented = augmented

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, i: int):
        from torchvision.datasets.folder import default_loader
        from torchvision.transforms import functional as TF

        path, _ = self.samples[self.indices[i]]
        img = default_loader(path)  # PIL, RGB
        return TF.center_crop(TF.resize(img, self.size), [self.size, self.size])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.finish(self.image(i)), self.samples[self.indices[i]][1]

    def with_augment(self, ops: list) -> ImageFiles:
        finish = SampleAugment(ops, self.finish.mean, self.finish.std)
        return ImageFiles(self.samples, self.indices, self.size, finish, augmented=True)


def find_images(root: Path):
    from torchvision.datasets import ImageFolder

    where = (
        f"`data.root` must be a folder with one sub-folder per class, e.g. {root}/cat/1.png, "
        f"{root}/dog/2.jpg"
    )
    if not root.is_dir():
        raise UserError(f"data=imagefolder: {root} is not a folder. {where}.", key="data.root")
    try:
        return ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise UserError(
            f"data=imagefolder: {str(exc).splitlines()[0]} {where}.", key="data.root"
        ) from None


def load(cfg: Any, seed: int, min_size: int | None = None) -> DataBundle:
    if not cfg.get("root"):
        raise UserError(
            "data=imagefolder needs `data.root`: a folder with one sub-folder per class.",
            key="data.root",
        )
    root = Path(str(cfg.root)).expanduser()
    folder = find_images(root)
    if not cfg.get("image_size"):
        raise UserError(
            "data=imagefolder needs `data.image_size` (the images are resized to it). "
            "Allowed: an integer >= 1, e.g. 64, or 224 for ImageNet-sized inputs.",
            key="data.image_size",
        )
    size = max(int(cfg.image_size), min_size or 0)
    samples = [(str(p), int(c)) for p, c in folder.samples]
    if len(samples) < 3:
        raise UserError(
            f"data=imagefolder: {root} has {len(samples)} image(s); a train, val and "
            "test split need at least 3.",
            key="data.root",
        )
    tr, va, te = (
        i.tolist()
        for i in split_indices(
            len(samples), cfg.val_fraction, cfg.test_fraction, seed, cfg.get("limit")
        )
    )
    stats = configured_stats(cfg, 3)
    if stats is None:
        plain = ImageFiles(samples, tr, size, SampleAugment([], (0.0,) * 3, (1.0,) * 3))
        sample = torch.stack([plain[i][0] for i in range(min(STATS_SAMPLE, len(plain)))])
        stats = channel_stats(sample)
    mean, std = stats
    splits = [ImageFiles(samples, idx, size, SampleAugment([], mean, std)) for idx in (tr, va, te)]
    return DataBundle(
        train=splits[0],
        val=splits[1],
        test=splits[2],
        task="classification",
        in_shape=(3, size, size),
        num_classes=len(folder.classes),
        classes=list(folder.classes),
        mean=mean,
        std=std,
        name="imagefolder",
    )
