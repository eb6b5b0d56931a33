"""Augmentation on whole batches, the fast path for in-memory data: each known torchvision
transform becomes an operation on an (N, C, H, W) batch on the training device, with its own
random draw for every sample (RandomCrop, RandomHorizontalFlip/VerticalFlip,
RandomAffine/RandomRotation via affine_grid + grid_sample). `dlx.data.augment` picks this
path or the per-sample one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from dlx.errors import UserError

Op = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


class NotBatchable(Exception):
    """A transform (or a setting of one) that has no whole-batch version here."""


def is_transform(op: Any, *names: str) -> bool:
    """A torchvision v1 transform of one of these class names."""
    from torchvision import transforms as T

    return any(type(op) is getattr(T, n) for n in names)


def uses_pil(ops: list) -> bool:
    """torchvision's convention: transforms before a ToTensor get PIL images."""
    return any(is_transform(op, "ToTensor", "PILToTensor") for op in ops)


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
        pil = uses_pil(transforms)
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
            if is_transform(t, "ToTensor", "PILToTensor"):
                continue
            if is_transform(t, "Normalize"):
                pixel_space = False
                continue
            if is_transform(t, "RandomCrop"):
                ops.append(_crop_op(t, fill_of(t.fill)))
            elif is_transform(t, "RandomHorizontalFlip"):
                ops.append(_flip_op(float(t.p), -1))
            elif is_transform(t, "RandomVerticalFlip"):
                ops.append(_flip_op(float(t.p), -2))
            elif is_transform(t, "RandomAffine"):
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
            elif is_transform(t, "RandomRotation"):
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
