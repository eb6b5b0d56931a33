"""Serving the decode cache (`data/cache.py`): all the images of a folder as one uint8
(N, C, H, W) tensor, in memory (moved once to the training device) or memory-mapped from the
cache file with its resident pages handed back to the kernel every `window` bytes read, so a
folder larger than memory trains with bounded resident memory. `ImageBytes` is one split of
it, normalized when read (per batch on the fast path, `data/loader.py`).
"""

from __future__ import annotations

import mmap
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

FAULT_AROUND = 2 * 64 * 1024  # resident bytes a read of one image may bring in beyond it


class Pixels:
    """All the cached images, (N, C, H, W) uint8: in memory (one tensor, moved once to the
    training device) or memory-mapped from the cache file with bounded resident pages."""

    def __init__(self, path: Path, shape: tuple[int, ...], mapped: bool, window: int) -> None:
        self.shape, self.mapped, self.window = tuple(shape), mapped, window
        count = int(np.prod(shape))
        self._map: mmap.mmap | None = None
        if mapped:
            with open(path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # private
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x = torch.frombuffer(self._map, dtype=torch.uint8, count=count)
        else:
            x = torch.from_numpy(np.fromfile(path, dtype=np.uint8, count=count))
        self.x = x.view(*shape)
        self._on: dict[str, torch.Tensor] = {}
        self._read = 0

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def on(self, device: torch.device) -> torch.Tensor:
        """The tensor on `device` (one copy per device, shared by the splits); a mapped file,
        or one too big for the GPU, stays on the host (batches are copied over)."""
        if self.mapped or device.type == "cpu":
            return self.x
        if str(device) not in self._on:
            if device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(device)
                if self.nbytes > free // 2:
                    return self.x
            self._on[str(device)] = self.x.to(device)
        return self._on[str(device)]

    def take(self, store: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Rows of `store` (from `on`); for a mapped file, the pages read so far are handed
        back every `window` bytes (they stay in the page cache: the next read is fast)."""
        if store.device != rows.device:
            rows = rows.to(store.device)
        out = store[rows]
        if self._map is not None:
            # what a gather can make resident: each image, plus the kernel's fault-around
            # (it maps up to 64 KiB of cached pages around each faulting page) on both ends
            self._read += len(rows) * (out[0].numel() + FAULT_AROUND) if len(rows) else 0
            if self._read >= self.window:
                self._map.madvise(mmap.MADV_DONTNEED)
                self._read = 0
        return out


class ImageBytes(TensorDataset):
    """A split of cached images: `rows` of the shared `Pixels`, normalized when read
    (per batch on the fast path: uint8 -> float / 255 -> (x - mean) / std)."""

    def __init__(self, pixels: Pixels, rows: torch.Tensor, y: torch.Tensor, mean, std) -> None:
        self.pixels, self.rows, self.y = pixels, rows, y
        self.mean, self.std = tuple(mean), tuple(std)
        self.tensors = (pixels.x, y)  # pixels of the whole folder; `rows` picks this split's
        self.size = None
        self._stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def indices(self) -> list[int]:
        return self.rows.tolist()

    def __len__(self) -> int:
        return len(self.rows)

    def finish(self, xb: torch.Tensor) -> torch.Tensor:
        """uint8 -> float / 255 -> (x - mean) / std, in place: the same values as
        `splits.normalize` (and as the uncached path's per-image ToTensor + normalize)."""
        key = str(xb.device)
        if key not in self._stats:
            m = torch.tensor(self.mean, dtype=torch.float32, device=xb.device).view(1, -1, 1, 1)
            s = torch.tensor(self.std, dtype=torch.float32, device=xb.device).view(1, -1, 1, 1)
            self._stats[key] = (m, s)
        m, s = self._stats[key]
        return xb.float().div_(255.0).sub_(m).div_(s)

    def batch(self, idx, device: torch.device | None = None) -> torch.Tensor:
        """Normalized images at positions `idx` of this split (a tensor, list or slice)."""
        rows = self.rows[idx] if not isinstance(idx, list) else self.rows[torch.tensor(idx)]
        store = self.pixels.on(device) if device is not None else self.pixels.x
        xb = self.pixels.take(store, rows)
        if device is not None:
            xb = xb.to(device, non_blocking=True)
        return self.finish(xb)

    def __getitem__(self, i):
        return self.batch(slice(int(i), int(i) + 1))[0], self.y[i]


def resident_mb() -> float:
    """This process's resident memory now (Linux), for the messages and tests."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def available_bytes() -> int:
    """Memory this process can still take: MemAvailable, or the cgroup's limit when lower."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            avail = min(avail or sys.maxsize, int(limit) - used)
    except (OSError, ValueError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 * 1024**3
    return max(0, avail)
