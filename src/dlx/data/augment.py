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

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from dlx.data.splits import denormalize, resize_to
from dlx.errors import UserError

Op = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


class NotBatchable(Exception):
    """A transform (or a setting of one) that has no whole-batch version here."""


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


def _is(op: Any, *names: str) -> bool:
    """A torchvision v1 transform of one of these class names."""
    from torchvision import transforms as T

    return any(type(op) is getattr(T, n) for n in names)


def _to_tensor(img: Any) -> torch.Tensor:
    if isinstance(img, torch.Tensor):
        return img if img.is_floating_point() else img.float() / 255.0
    from torchvision.transforms.functional import to_tensor

    return to_tensor(img)


def _uses_pil(ops: list) -> bool:
    """torchvision's convention: transforms before a ToTensor get PIL images."""
    return any(_is(op, "ToTensor", "PILToTensor") for op in ops)


class SampleAugment:
    """One image (PIL, or a [0, 1] tensor) -> the transforms -> a normalized tensor.

    ToTensor converts, Normalize applies the dataset's mean/std (as does the end of the
    list when there is no Normalize): normalization is the same for every split.
    """

    def __init__(self, ops: list, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.ops, self.mean, self.std = list(ops), tuple(mean), tuple(std)
        self.wants_pil = _uses_pil(self.ops)

    def __call__(self, img: Any) -> torch.Tensor:
        if self.wants_pil and isinstance(img, torch.Tensor):
            from torchvision.transforms.functional import to_pil_image

            img = to_pil_image(img.clamp(0, 1))
        normalized = False
        for op in self.ops:
            if _is(op, "ToTensor", "PILToTensor"):
                img = _to_tensor(img)
            elif _is(op, "Normalize"):
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


# ---------------------------------------------------------------------------- whole batches


class BatchAugment:
    """(N, C, H, W) normalized images -> the same, each sample with its own random draw.

    Runs on whatever device the batch is on; `generator` (optional) makes the draws
    independent of the global RNG.
    """

    def __init__(self, ops: list[Op], names: list[str]) -> None:
        self.ops, self.names = ops, names

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for op in self.ops:
            x = op(x, generator)
        return x

    def __repr__(self) -> str:
        return f"BatchAugment({', '.join(self.names)})"

    @classmethod
    def build(cls, transforms: list, mean, std, device: torch.device) -> BatchAugment:
        """Map torchvision transforms to batch operations; NotBatchable for anything else."""
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        pil = _uses_pil(transforms)
        pixel_space = True  # before the Normalize marker, fills are pixel values
        ops: list[Op] = []
        names: list[str] = []

        def fill_of(value: Any) -> torch.Tensor:
            """A transform's fill (pixel value, 0..255 for PIL pipelines) in normalized units."""
            v = torch.as_tensor(0.0 if value is None else value, dtype=torch.float32, device=device)
            v = v.view(1, -1, 1, 1)
            if not pixel_space:
                return v
            return ((v / 255.0 if pil else v) - mean_t) / std_t

        for t in transforms:
            name = type(t).__name__
            if _is(t, "ToTensor", "PILToTensor"):
                continue
            if _is(t, "Normalize"):
                pixel_space = False
                continue
            if _is(t, "RandomCrop"):
                ops.append(_crop_op(t, fill_of(t.fill)))
            elif _is(t, "RandomHorizontalFlip"):
                ops.append(_flip_op(float(t.p), -1))
            elif _is(t, "RandomVerticalFlip"):
                ops.append(_flip_op(float(t.p), -2))
            elif _is(t, "RandomAffine"):
                if t.center is not None:
                    raise NotBatchable(f"{name} with a center")
                ops.append(
                    _affine_op(
                        t.degrees,
                        t.translate,
                        t.scale,
                        t.shear,
                        t.interpolation,
                        fill_of(t.fill),
                        flip_angle=False,
                    )
                )
            elif _is(t, "RandomRotation"):
                if t.center is not None or t.expand:
                    raise NotBatchable(f"{name} with a center or expand=True")
                ops.append(
                    _affine_op(
                        t.degrees,
                        None,
                        None,
                        None,
                        t.interpolation,
                        fill_of(t.fill),
                        flip_angle=True,
                    )
                )
            else:
                raise NotBatchable(f"{type(t).__module__}.{name} has no batch version")
            names.append(name)
        return cls(ops, names)


def _pad_amounts(padding: Any) -> tuple[int, int, int, int]:
    """torchvision's padding (int, [lr, tb] or [l, t, r, b]) as (left, right, top, bottom)."""
    if padding is None:
        return 0, 0, 0, 0
    if isinstance(padding, int):
        return padding, padding, padding, padding
    p = [int(v) for v in padding]
    if len(p) == 1:
        return p[0], p[0], p[0], p[0]
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    return p[0], p[2], p[1], p[3]


def _crop_op(t: Any, fill: torch.Tensor) -> Op:
    """RandomCrop(size, padding): pad (constant fill, edge or reflect), then every sample its
    own crop window, gathered with one `gather`."""
    modes = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}
    if t.padding_mode not in modes:
        raise NotBatchable(f"RandomCrop with padding_mode={t.padding_mode}")
    if t.pad_if_needed:
        raise NotBatchable("RandomCrop with pad_if_needed=True")
    left, right, top, bottom = _pad_amounts(t.padding)
    th, tw = (int(v) for v in t.size)
    mode = modes[t.padding_mode]

    def op(x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        n, c, h, w = x.shape
        if left or right or top or bottom:
            if mode == "constant":  # a canvas of the fill, the images pasted in
                canvas = fill.to(x.dtype).expand(n, c, h + top + bottom, w + left + right)
                canvas = canvas.contiguous()
                canvas[:, :, top : top + h, left : left + w] = x
                x = canvas
            else:
                x = F.pad(x, (left, right, top, bottom), mode=mode)
        h, w = x.shape[-2:]
        if h < th or w < tw:
            raise UserError(
                f"aug RandomCrop size {th}x{tw} is larger than the (padded) images, {h}x{w}.",
                key="aug.transforms",
            )
        i = torch.randint(
            0, h - th + 1, (n,), generator=gen, device=gen.device if gen else x.device
        )
        j = torch.randint(
            0, w - tw + 1, (n,), generator=gen, device=gen.device if gen else x.device
        )
        i, j = i.to(x.device), j.to(x.device)
        rows = i[:, None, None] + torch.arange(th, device=x.device)[None, :, None]  # (N, th, 1)
        cols = j[:, None, None] + torch.arange(tw, device=x.device)[None, None, :]  # (N, 1, tw)
        flat = (rows * w + cols).view(n, 1, th * tw).expand(n, c, th * tw)  # each sample's window
        return x.reshape(n, c, h * w).gather(2, flat).view(n, c, th, tw)

    return op


def _rand(n: int, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=gen.device if gen else device).to(device)


def _flip_op(p: float, dim: int) -> Op:
    def op(x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        flip = _rand(x.shape[0], gen, x.device) < p
        return torch.where(flip.view(-1, 1, 1, 1), x.flip(dim), x)

    return op


def _affine_op(
    degrees, translate, scale, shear, interpolation, fill: torch.Tensor, flip_angle: bool
) -> Op:
    """RandomAffine / RandomRotation on a batch: torchvision's inverse affine matrix per sample
    (rotation, translation in whole pixels, scale, shear about the centre), sampled with
    affine_grid + grid_sample; uncovered pixels get the transform's fill."""
    from torchvision.transforms import InterpolationMode

    modes = {InterpolationMode.NEAREST: "nearest", InterpolationMode.BILINEAR: "bilinear"}
    if interpolation not in modes:
        raise NotBatchable(f"affine interpolation {interpolation}")
    mode = modes[interpolation]
    shear = list(shear) if shear is not None else None

    def op(x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        n, _, h, w = x.shape
        dev = x.device

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return _rand(n, gen, dev) * (float(hi) - float(lo)) + float(lo)

        zeros = torch.zeros(n, device=dev)
        angle = uniform(degrees[0], degrees[1])
        if flip_angle:  # torchvision's rotate() turns the other way than affine()
            angle = -angle
        if translate is not None:
            tx = torch.round(uniform(-translate[0] * w, translate[0] * w))
            ty = torch.round(uniform(-translate[1] * h, translate[1] * h))
        else:
            tx = ty = zeros
        s = uniform(scale[0], scale[1]) if scale is not None else torch.ones(n, device=dev)
        sx = uniform(shear[0], shear[1]) if shear is not None else zeros
        sy = uniform(shear[2], shear[3]) if shear is not None and len(shear) == 4 else zeros
        rot, sx, sy = (torch.deg2rad(v) for v in (angle, sx, sy))
        # torchvision's _get_inverse_affine_matrix, centre (0, 0), in pixel units
        a = torch.cos(rot - sy) / torch.cos(sy)
        b = -torch.cos(rot - sy) * torch.tan(sx) / torch.cos(sy) - torch.sin(rot)
        c = torch.sin(rot - sy) / torch.cos(sy)
        d = -torch.sin(rot - sy) * torch.tan(sx) / torch.cos(sy) + torch.cos(rot)
        m00, m01, m10, m11 = d / s, -b / s, -c / s, a / s
        e0 = m00 * -tx + m01 * -ty
        e1 = m10 * -tx + m11 * -ty
        # pixel units -> affine_grid's [-1, 1] (align_corners=False: x_norm = 2 x_pix / w)
        theta = torch.stack(
            [
                torch.stack([m00, m01 * h / w, e0 * 2 / w], 1),
                torch.stack([m10 * w / h, m11, e1 * 2 / h], 1),
            ],
            1,
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        f = fill.to(x.dtype)
        out = F.grid_sample(x - f, grid, mode=mode, padding_mode="zeros", align_corners=False)
        return out + f

    return op


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
        if _is(t, "Normalize"):
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


# ---------------------------------------------------------------------------- a picture of it


def sample_grid(data, aug_cfg: Any, images: int = 8, draws: int = 4) -> torch.Tensor:
    """A (3, H, W) grid in [0, 1] of training images as the model sees them: with augmentation,
    `images` columns each drawn `draws` times (one row per draw); without, 32 images.

    Call after `build_batch_augment` (a per-sample training split is already augmented). Draws
    come from a fixed seed and leave the run's random state untouched.
    """
    from dlx.tracking.visuals import image_grid

    ds = data.train
    compose = build_transform(aug_cfg)
    augmented = compose is not None
    k = min(images if augmented else images * draws, len(ds))
    idx = list(range(k)) * (draws if augmented else 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if isinstance(ds, TensorDataset):
            x = images_of(ds, idx)
            if augmented:
                transforms = list(compose.transforms)
                try:
                    batch = BatchAugment.build(transforms, data.mean, data.std, torch.device("cpu"))
                    x = batch(x, torch.Generator().manual_seed(0))
                except NotBatchable:
                    one_by_one = per_sample(ds, transforms, data)
                    x = torch.stack([one_by_one[i][0] for i in idx])
        else:
            x = torch.stack([ds[i][0] for i in idx])
    x = denormalize(x.float(), data.mean, data.std).clamp(0, 1)
    if x.shape[-1] < 48:  # tiny images (digits' 8x8) become visible
        x = F.interpolate(x, scale_factor=math.ceil(48 / x.shape[-1]), mode="nearest")
    return image_grid(x, nrow=k if augmented else images, padding=2, pad_value=1.0)
