"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, held in memory as one tensor.

torchvision reads (and, with `data.download=true`, downloads) the files into `data.root`;
its `.data`/`.targets` become one float tensor per split, so training takes the fast path
(batched by index, augmented on whole batches). The official test set is the test split;
`data.val_fraction` of the training set, fixed by `seed`, is the validation split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dlx.data import DataBundle
from dlx.data.download import SOURCES, ensure, torchvision_class
from dlx.data.splits import image_bundle
from dlx.errors import UserError


def data_root(cfg) -> Path:
    if not cfg.get("root"):
        raise UserError(
            f"data={cfg.name} needs `data.root`: the folder its files go into.", key="data.root"
        )
    return Path(str(cfg.root)).expanduser()


def as_images(data) -> torch.Tensor:
    """torchvision's `.data` as (N, C, H, W) floats in [0, 1]: MNIST's (N, H, W) uint8 tensor,
    CIFAR's (N, H, W, C) uint8 array."""
    x = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return x.float().div_(255.0)


def read_split(cls, root: Path, train: bool, source) -> tuple[torch.Tensor, torch.Tensor, list]:
    try:
        ds = cls(str(root), train=train, download=False)
    except Exception as exc:  # a truncated or corrupted file
        raise UserError(
            f"The {source.title} files in {root / source.folder} are incomplete or corrupted "
            f"({str(exc).splitlines()[0][:200]}). Delete that folder and run again with "
            f"data.download=true, or put fresh copies there. {source.where(root)}",
            key="data.root",
        ) from None
    return as_images(ds.data), torch.as_tensor(ds.targets, dtype=torch.long), list(ds.classes)


def load(cfg, seed: int, min_size: int | None = None) -> DataBundle:
    """`data=mnist|fashion_mnist|cifar10`: which one is `data.name`."""
    name = str(cfg.name)
    if name not in SOURCES:
        raise UserError(
            f"`data.name={name}` is not a torchvision set dlx knows. "
            f"Allowed: {' | '.join(SOURCES)}.",
            key="data.name",
        )
    source = SOURCES[name]
    root = data_root(cfg)
    ensure(source, root, bool(cfg.get("download", True)))
    cls = torchvision_class(source.dataset)
    x, y, classes = read_split(cls, root, True, source)
    x_test, y_test, _ = read_split(cls, root, False, source)
    return image_bundle(
        x, y, cfg, seed, min_size, [str(c) for c in classes], name, test=(x_test, y_test)
    )
