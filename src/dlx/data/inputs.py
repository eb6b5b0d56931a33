"""New inputs for a trained model, prepared exactly as its training data was.

The model card (`training/card.py`, a run's `model.json`) names the preprocessing; this module
applies it with the training code's own functions, never a second copy: `cache.decode` (the
image folder's decode: RGB, shorter side resized bilinear, centre crop), then
`splits.resize_to` and `splits.normalize` (what every in-memory image set does), so an image
file predicted here gets the values its training split had.

- image runs: files are decoded to the size the data set stored them at (the image folder's
  `data.image_size`; digits 8, MNIST 28, CIFAR-10 32), in parallel for many files (the decode
  cache's process pool); one-channel runs take the luminance (PIL's "L" weights; a grey image
  is unchanged). Arrays (`.npy`, `.csv`: one image per row, C*H*W values at the data set's
  own scale, 0..16 for digits) skip the decode.
- feature runs (`data=function`): numbers, one row per input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.data.splits import normalize, resize_to

ARRAY_EXTENSIONS = (".npy", ".csv")
PARALLEL_ABOVE = 256  # files: decoded by a process pool above this many


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 -> (1, H, W) uint8 with PIL's RGB -> L weights (ITU-R 601-2, rounded as
    PIL rounds them): a grey image comes back unchanged."""
    r, g, b = (rgb[i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[None]


def decode_file(path: str, pre: dict[str, Any]) -> np.ndarray:
    """One image file as (C, H, W) uint8 at the size the run's data set stored its images."""
    from dlx.data.cache import decode

    rgb = decode(path, int(pre["decode_size"]))
    return luminance(rgb) if int(pre["channels"]) == 1 else rgb


def _decode_chunk(args: tuple[list[str], dict[str, Any]]) -> list[tuple[bytes | None, str | None]]:
    from dlx.data.cache import problem

    paths, pre = args
    out = []
    for p in paths:
        try:
            out.append((decode_file(p, pre).tobytes(), None))
        except Exception as exc:  # noqa: BLE001 - named and counted by the caller
            out.append((None, problem(exc)))
    return out


def decode_files(
    paths: list[str], pre: dict[str, Any], workers: int | None = None, advance=None
) -> tuple[list[tuple[int, np.ndarray]], list[tuple[int, str]]]:
    """Decode `paths`: ([(position, pixels)], [(position, why unreadable)]), in order. Many
    files go through the decode cache's own process pool (`cache._results`)."""
    from dlx.data import cache

    c, s = int(pre["channels"]), int(pre["decode_size"])
    tasks = [(paths[i : i + cache.CHUNK], pre) for i in range(0, len(paths), cache.CHUNK)]
    n = cache.workers(workers) if len(paths) > PARALLEL_ABOVE else 1
    good, bad = [], []
    for i, results in enumerate(cache._results(tasks, min(n, len(tasks)), _decode_chunk)):
        for j, (raw, why) in enumerate(results):
            k = i * cache.CHUNK + j
            if raw is None:
                bad.append((k, str(why)))
            else:
                good.append((k, np.frombuffer(raw, dtype=np.uint8).reshape(c, s, s)))
        if advance is not None:
            advance(len(results))
    return good, bad


def read_array(path: str, pre: dict[str, Any]) -> np.ndarray:
    """A `.npy` or `.csv` file as float rows: (N, C, H, W) for image runs (values at the data
    set's own scale), (N, features) for feature runs. Raises ValueError saying what is wrong."""
    if path.lower().endswith(".npy"):
        a = np.load(path, allow_pickle=False)
    else:
        a = np.loadtxt(path, delimiter=",", ndmin=2)
    a = np.asarray(a, dtype=np.float32)
    if pre["kind"] == "features":
        f = int(pre["features"])
        if a.ndim == 1:
            a = a.reshape(-1, 1) if f == 1 else a.reshape(1, -1)
        if a.ndim != 2 or a.shape[1] != f:
            raise ValueError(f"has shape {a.shape}; the run takes {f} number(s) per row")
        return a
    c, s = int(pre["channels"]), int(pre["decode_size"])
    per = c * s * s
    if a.size == per:
        return a.reshape(1, c, s, s)
    if a.ndim >= 2 and int(np.prod(a.shape[1:])) == per:
        return a.reshape(-1, c, s, s)
    raise ValueError(
        f"has shape {a.shape}; the run takes images of {c}x{s}x{s} = {per} values per row"
    )


def to_model(x: torch.Tensor, pre: dict[str, Any], scale: float | None = None) -> torch.Tensor:
    """Decoded pixels (uint8, or floats at `scale`) -> the model's input: / scale, resized to
    the run's image size, normalized with the run's mean/std (training's functions)."""
    if pre["kind"] == "features":
        return x.float()
    x = x.float().div_(float(scale if scale is not None else pre["scale"]))
    x = resize_to(x, int(pre["size"]))
    if pre.get("mean"):
        x = normalize(x, tuple(pre["mean"]), tuple(pre["std"]))
    return x


def is_array(path: str | Path) -> bool:
    return str(path).lower().endswith(ARRAY_EXTENSIONS)
