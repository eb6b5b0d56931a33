"""Augmentation: torchvision transforms from `conf/aug/*.yaml`, for the training split only.

`aug.transforms` is a list of `_target_` torchvision transforms composed in order: the
lecture's `transforms.Compose([...])` written as YAML (`build_transform`). Normalization is
preprocessing, not augmentation: every split is normalized with the dataset's mean/std; a
`ToTensor`/`Normalize` in the list only marks where that happens (a Normalize with other
values than the dataset's gets a warning; cifar10's values are the lecture's).

The same list runs one of two ways (`build_batch_augment` picks):
- in-memory data, the fast path: `BatchAugment` maps each known transform to an operation
  on a whole batch on the training device, with its own random draw for every sample
  (RandomCrop, RandomHorizontalFlip/VerticalFlip, RandomAffine/RandomRotation via
  affine_grid + grid_sample);
- anything else (a transform it cannot batch, or a DataLoader dataset such as imagefolder):
  `SampleAugment`, the torchvision transforms themselves on one image at a time, in the
  DataLoader's workers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from dlx.data.batch_augment import BatchAugment, NotBatchable, is_transform, uses_pil
from dlx.data.splits import denormalize, resize_to
from dlx.errors import UserError

__all__ = [
    "AugmentedTensors",
    "BatchAugment",
    "NotBatchable",
    "SampleAugment",
    "build_batch_augment",
]

# ---------------------------------------------------------------------------- the pipeline


def build_transform(aug_cfg: Any):
    """The `aug` group's torchvision `Compose`, or None when it has no transforms."""
    items = list(aug_cfg.get("transforms") or []) if aug_cfg is not None else []
    if not items:
        return None  # no torchvision import (~0.1-2 s) for a run without augmentation
    from hydra.utils import instantiate
    from torchvision import transforms as T

    ops = []
    for i, item in enumerate(items):
        target = item.get("_target_") if hasattr(item, "get") else None
        if not target:
            raise UserError(
                f"`aug.transforms[{i}]` needs a `_target_`, e.g. "
                "{_target_: torchvision.transforms.RandomHorizontalFlip, p: 0.5}.",
                key="aug.transforms",
            )
        try:
            ops.append(instantiate(item, _convert_="all"))
        except Exception as exc:
            cause = exc.__cause__ or exc
            raise UserError(
                f"`aug.transforms[{i}]` ({target}) could not be built: "
                f"{str(cause).splitlines()[0][:300]}",
                key="aug.transforms",
            ) from None
    return T.Compose(ops)


def _to_tensor(img: Any) -> torch.Tensor:
    if isinstance(img, torch.Tensor):
        return img if img.is_floating_point() else img.float() / 255.0
    from torchvision.transforms.functional import to_tensor

    return to_tensor(img)


class SampleAugment:
    """One image (PIL, or a [0, 1] tensor) -> the transforms -> a normalized tensor.

    ToTensor converts, Normalize applies the dataset's mean/std (as does the end of the
    list when there is no Normalize): normalization is the same for every split.
    """

    def __init__(self, ops: list, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.ops, self.mean, self.std = list(ops), tuple(mean), tuple(std)
        self.wants_pil = uses_pil(self.ops)

    def __call__(self, img: Any) -> torch.Tensor:
        if self.wants_pil and isinstance(img, torch.Tensor):
            from torchvision.transforms.functional import to_pil_image

            img = to_pil_image(img.clamp(0, 1))
        normalized = False
        for op in self.ops:
            if is_transform(op, "ToTensor", "PILToTensor"):
                img = _to_tensor(img)
            elif is_transform(op, "Normalize"):
                img, normalized = self._normalize(_to_tensor(img)), True
            else:
                img = op(img)
        img = _to_tensor(img)
        return img if normalized else self._normalize(img)

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        m = torch.tensor(self.mean, dtype=x.dtype).view(-1, 1, 1)
        s = torch.tensor(self.std, dtype=x.dtype).view(-1, 1, 1)
        return (x - m) / s


class AugmentedTensors(Dataset):
    """The per-sample path for in-memory data: each read un-normalizes one image, runs the
    torchvision transforms on it and normalizes it again (for transforms `BatchAugment`
    cannot run on whole batches)."""

    augmented = True

    def __init__(self, base: TensorDataset, augment: SampleAugment) -> None:
        self.base, self.augment = base, augment

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]  # normalized, at the model's size (ImageTensors, ImageBytes)
        pixels = denormalize(x, self.augment.mean, self.augment.std).clamp(0, 1)
        return self.augment(pixels), y

    def with_augment(self, ops: list) -> AugmentedTensors:
        return AugmentedTensors(self.base, SampleAugment(ops, self.augment.mean, self.augment.std))


# ---------------------------------------------------------------------------- the training split


def images_of(ds: TensorDataset, idx) -> torch.Tensor:
    """Normalized images of an in-memory split at the model's size (a cached image folder's
    uint8 pixels are normalized on the way out)."""
    if hasattr(ds, "pixels"):  # data/pixels.py's ImageBytes
        return ds.batch(idx)
    return resize_to(ds.tensors[0][idx], getattr(ds, "size", None))


def _names(transforms: list) -> str:
    return ", ".join(type(t).__name__ for t in transforms)


def normalize_notes(transforms: list, data) -> list[str]:
    """A Normalize in the list whose values differ from the dataset's (which every split uses)."""
    notes = []
    for t in transforms:
        if is_transform(t, "Normalize"):
            m = [float(v) for v in torch.as_tensor(t.mean).flatten()]
            s = [float(v) for v in torch.as_tensor(t.std).flatten()]
            ours = list(data.mean) + list(data.std)
            same = (
                len(m) == len(data.mean)
                and len(m + s) == len(ours)
                and all(abs(a - b) < 1e-4 for a, b in zip(m + s, ours, strict=True))
            )
            if not same:
                mean = tuple(round(v, 4) for v in data.mean)
                std = tuple(round(v, 4) for v in data.std)
                notes.append(
                    f"aug's Normalize(mean={tuple(m)}, std={tuple(s)}) differs from "
                    f"data={data.name}'s normalization (mean={mean}, std={std}). Normalization is "
                    "preprocessing: "
                    "every split uses the dataset's values (set data.mean/data.std to change them)."
                )
    return notes


def _check_shape(shape: tuple[int, ...], data) -> None:
    if tuple(shape) != tuple(data.in_shape):
        raise UserError(
            f"The augmentation turns {tuple(data.in_shape)} images into {tuple(shape)}: the model "
            f"needs the size it was built for. Match the transforms' sizes to the images "
            f"(data.image_size, e.g. RandomCrop's size) or pick another `aug`.",
            key="aug.transforms",
        )


def per_sample(dataset: Dataset, transforms: list, data) -> Dataset:
    """The training split read through the torchvision transforms, one sample at a time."""
    if isinstance(dataset, TensorDataset):
        return AugmentedTensors(dataset, SampleAugment(transforms, data.mean, data.std))
    if hasattr(dataset, "with_augment"):
        return dataset.with_augment(transforms)
    raise UserError(
        f"data={data.name} cannot be augmented (its training split is "
        f"{type(dataset).__name__}). Use aug=none.",
        key="aug",
    )


def build_batch_augment(aug_cfg: Any, data, device: torch.device):
    """A callable (N, C, H, W) -> (N, C, H, W) for the fast path, or None for no augmentation.

    A training split the batch path cannot serve (a transform with no batch version, or a
    DataLoader dataset such as imagefolder) is replaced in `data.train` by one that runs the
    torchvision transforms per sample; then the result is None. Either way
    `data.augmentation` says what happens and `data.notes` holds warnings for the run.
    """
    compose = build_transform(aug_cfg)
    if compose is None:
        data.augmentation = ""
        return None
    transforms = list(compose.transforms)
    if not data.is_image:
        raise UserError(
            f"`aug` transforms work on images; data={data.name} has none. Use aug=none.", key="aug"
        )
    data.notes.extend(normalize_notes(transforms, data))
    reason = "a DataLoader dataset"
    if isinstance(data.train, TensorDataset):
        try:
            batch = BatchAugment.build(transforms, data.mean, data.std, device)
        except NotBatchable as exc:
            reason = str(exc)
        else:
            probe = batch(images_of(data.train, slice(0, 2)).to(device))
            _check_shape(probe.shape[1:], data)
            data.augmentation = f"{_names(transforms)} (whole batches on {device})"
            return batch
    data.train = per_sample(data.train, transforms, data)
    _check_shape(data.train[0][0].shape, data)
    data.augmentation = f"{_names(transforms)} (per sample in the DataLoader: {reason})"
    return None
