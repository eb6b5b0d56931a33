"""Your own images: `data.root` holds one sub-folder per class (root/cat/1.png, root/dog/2.jpg).

`data.cache` (auto | memory | mmap | none) picks how the images reach the model:
- auto/memory/mmap: the first run decodes every image once, in parallel, into the decode
  cache (`data/cache.py`: uint8 pixels resized to `data.image_size`); every later epoch and
  run reads that. `memory` holds it as one tensor (the in-memory fast path: batches are
  slices of a seeded permutation, augmentation on whole batches on the training device);
  `mmap` serves it from the memory-mapped file with bounded resident memory; `auto` takes
  memory when the pixels fit in `data.memory_limit_mb` (default: half the available memory).
- none: every epoch reads the files through a DataLoader (workers from the cores).

Either way bad files (empty, truncated, corrupt, not an image, a decompression bomb) are
found before training: skipped and counted, or refused (`data.bad_files=skip|refuse`).
The train/val/test split is a seeded permutation, like every other dataset's; normalization
uses `data.mean`/`data.std` or statistics measured on (up to 256 of) the training images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from dlx.data import DataBundle
from dlx.data.augment import SampleAugment
from dlx.data.autosize import resolve as resolve_size
from dlx.data.scan import EXTENSIONS, scan  # noqa: F401 (scan: the walk, loops and links safe)
from dlx.data.splits import channel_stats, configured_stats, split_indices
from dlx.errors import UserError

STATS_SAMPLE = 256  # training images read to measure the mean/std when the config gives none
CACHE_MODES = ("auto", "memory", "mmap", "none")
BAD_FILES = ("skip", "refuse")
SHOW_BAD = 3  # names listed when bad files are skipped


class ImageFiles(Dataset):
    """A split of an image folder read from disk (`data.cache=none`): (path, class) samples
    picked by `indices`, each decoded as the cache does (`cache.decode`), then `finish`
    (augmentation for the training split, then normalization)."""

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
        from dlx.data.cache import decode, problem

        path = self.samples[self.indices[i]][0]
        try:
            pixels = torch.from_numpy(decode(path, self.size))
        except Exception as exc:  # noqa: BLE001 - the header check passed; the body did not
            raise UserError(
                f"data=imagefolder: {path} is not a usable image ({problem(exc)}); with "
                "data.cache=none only the headers are checked before training. Fix or remove "
                "it, or use data.cache=auto (every image checked once, bad ones skipped).",
                key="data.cache",
            ) from None
        if self.finish.wants_pil:
            from PIL import Image

            return Image.fromarray(pixels.permute(1, 2, 0).numpy())
        return pixels.float().div_(255.0)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.finish(self.image(i)), self.samples[self.indices[i]][1]

    def with_augment(self, ops: list) -> ImageFiles:
        finish = SampleAugment(ops, self.finish.mean, self.finish.std)
        return ImageFiles(self.samples, self.indices, self.size, finish, augmented=True)


# ---------------------------------------------------------------------------- the folder


def _choice(cfg: Any, key: str, allowed: tuple[str, ...]) -> str:
    value = str(cfg.get(key, allowed[0]))
    if value not in allowed:
        raise UserError(
            f"Invalid value for `data.{key}`: {value!r}. Allowed: {' | '.join(allowed)}.",
            key=f"data.{key}",
        )
    return value


def _say(message: str) -> None:
    """One line on the console and in train.log (rank 0 of a multi-process job only)."""
    if os.environ.get("RANK", "0") != "0":
        return
    from dlx.record.text import plain_text
    from dlx.tracking.console import console, log

    message = plain_text(message, 20000)  # file and class names: control characters escaped
    console.print(message, soft_wrap=True, markup=False, highlight=False)
    log.info(message)


def _bad_files(bad: list[list[str]], total: int, policy: str, root: Path) -> str | None:
    """Refuse (UserError naming the first bad file) or a note saying what was skipped."""
    if not bad:
        return None
    first = "; ".join(f"{p} ({why})" for p, why in bad[:SHOW_BAD])
    if policy == "refuse":
        raise UserError(
            f"data=imagefolder: {len(bad)} of {total} files in {root} are not usable images "
            f"(data.bad_files=refuse): {first}. Fix or remove them, or set data.bad_files=skip.",
            key="data.bad_files",
        )
    more = f" and {len(bad) - SHOW_BAD} more" if len(bad) > SHOW_BAD else ""
    return (
        f"data=imagefolder: skipped {len(bad)} of {total} files that are not usable images "
        f"(data.bad_files=skip): {first}{more}."
    )


def load(cfg: Any, seed: int, min_size: int | None = None) -> DataBundle:
    if not cfg.get("root"):
        raise UserError(
            "data=imagefolder needs `data.root`: a folder with one sub-folder per class.",
            key="data.root",
        )
    root = Path(str(cfg.root)).expanduser()
    if not cfg.get("image_size"):
        raise UserError(
            "data=imagefolder needs `data.image_size` (the images are resized to it). "
            "Allowed: auto, or an integer >= 1, e.g. 64, or 224 for ImageNet-sized inputs.",
            key="data.image_size",
        )
    mode = _choice(cfg, "cache", CACHE_MODES)
    policy = _choice(cfg, "bad_files", BAD_FILES)
    classes, files = scan(root)
    size = max(resolve_size(cfg, root, files), min_size or 0)  # `auto`: from the images
    if mode == "none":
        return _uncached(cfg, root, classes, files, size, seed, policy)
    return _cached(cfg, root, classes, files, size, seed, mode, policy)


def splits_of(n: int, cfg: Any, seed: int, root: Path) -> tuple[list[int], list[int], list[int]]:
    if n < 3:
        raise UserError(
            f"data=imagefolder: {root} has {n} usable image(s); a train, val and "
            "test split need at least 3.",
            key="data.root",
        )
    tr, va, te = split_indices(n, cfg.val_fraction, cfg.test_fraction, seed, cfg.get("limit"))
    return tr.tolist(), va.tolist(), te.tolist()


def _uncached(cfg, root, classes, files, size, seed, policy) -> DataBundle:
    """`data.cache=none`: headers checked up front (in parallel), pixels read every epoch."""
    from dlx.data.cache import header_problem, workers

    paths = [str(root / rel) for rel, *_ in files]
    n = workers(cfg.get("workers"))
    if n > 1 and len(paths) > 256:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(n) as pool:
            problems = list(pool.map(header_problem, paths, chunksize=64))
    else:
        problems = [header_problem(p) for p in paths]
    bad = [[p, why] for p, why in zip(paths, problems, strict=True) if why]
    note = _bad_files(bad, len(paths), policy, root)
    samples = [(p, f[1]) for p, f, why in zip(paths, files, problems, strict=True) if not why]
    tr, va, te = splits_of(len(samples), cfg, seed, root)
    stats = configured_stats(cfg, 3)
    if stats is None:
        plain = ImageFiles(samples, tr, size, SampleAugment([], (0.0,) * 3, (1.0,) * 3))
        sample = torch.stack([plain[i][0] for i in range(min(STATS_SAMPLE, len(plain)))])
        stats = channel_stats(sample)
    mean, std = stats
    splits = [ImageFiles(samples, idx, size, SampleAugment([], mean, std)) for idx in (tr, va, te)]
    _say(
        f"data: {len(samples):,} images from {root}, read from disk every epoch "
        f"(data.cache=none, {size}x{size})"
    )
    return DataBundle(
        train=splits[0],
        val=splits[1],
        test=splits[2],
        task="classification",
        in_shape=(3, size, size),
        num_classes=len(classes),
        classes=list(classes),
        mean=mean,
        std=std,
        name="imagefolder",
        notes=[note] if note else [],
    )


def _progress(total: int):
    """A rich progress bar for the decode in a terminal; a line at the start and end when piped."""
    import contextlib
    import time

    from dlx.tracking.console import console
    from dlx.tracking.decodebar import decode_bar

    @contextlib.contextmanager
    def show():
        start = time.perf_counter()
        _say(f"decoding {total:,} images once into the decode cache ...")
        if console.is_terminal and os.environ.get("RANK", "0") == "0":
            with decode_bar(console, total) as advance:
                yield advance
        else:
            yield lambda k: None
        _say(f"decoded {total:,} images in {time.perf_counter() - start:.1f} s")

    return show()


def _cached(cfg, root, classes, files, size, seed, mode, policy) -> DataBundle:
    """The decode cache: built once (locked, atomic), then in memory or memory-mapped."""
    from dlx.data import cache
    from dlx.data import pixels as pixels_mod

    folder, prefix = cache.cache_dir(root, in_root=cfg.get("cache_in_root", True) is not False)
    entry = cache.Entry.at(folder, prefix, size, cache.cache_key(root, files, size))
    paths = [str(root / rel) for rel, *_ in files]
    meta = entry.read_meta(paths, size)
    how = f"reused (built {meta['built']})" if meta else ""
    if meta is None:
        n_workers = cache.workers(cfg.get("workers"))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with cache.locked(entry.lock, _say):
                meta = entry.read_meta(paths, size)  # another run may have filled it meanwhile
                if meta is None:
                    cache.remove_temp(folder, prefix, size)  # a killed build's
                    meta = cache.build(entry, paths, size, n_workers, _progress)
                    cache.remove_stale(folder, prefix, size, entry)
                    how = f"built now by {meta['workers']} process(es) in {meta['decode_s']} s"
                else:
                    how = "filled by another run just now"
        except OSError as exc:
            raise UserError(
                f"data=imagefolder: cannot write the decode cache in {folder} "
                f"({exc.strerror or exc}). Free some space there, or use data.cache=none "
                "(reads the files every epoch).",
                key="data.cache",
            ) from None
    note = _bad_files(meta["bad"], meta["files"], policy, root)
    shape = tuple(meta["shape"])
    nbytes = shape[0] * shape[1] * shape[2] * shape[3]
    limit = cfg.get("memory_limit_mb")
    budget = int(limit * 2**20) if limit else pixels_mod.available_bytes() // 2
    chosen = mode
    if mode == "auto":
        chosen = "memory" if nbytes <= budget else "mmap"
    window = min(256 * 2**20, max(16 * 2**20, budget // 4))
    pixels = pixels_mod.Pixels(entry.pixels, shape, mapped=chosen == "mmap", window=window)
    labels = torch.tensor([files[k][1] for k in meta["kept"]], dtype=torch.long)
    tr, va, te = (torch.tensor(i, dtype=torch.long) for i in splits_of(shape[0], cfg, seed, root))
    stats = configured_stats(cfg, 3)
    if stats is None:
        stats = channel_stats(pixels.x[tr[:STATS_SAMPLE]].float().div_(255.0))
    mean, std = stats
    sets = [pixels_mod.ImageBytes(pixels, rows, labels[rows], mean, std) for rows in (tr, va, te)]
    why = {
        "auto": f"auto: {_mib(nbytes)} of pixels {'<=' if chosen == 'memory' else '>'} "
        f"budget {_mib(budget)}",
        "memory": "data.cache=memory",
        "mmap": "data.cache=mmap",
    }[mode]
    served = "in memory" if chosen == "memory" else f"memory-mapped, {_mib(window)} resident window"
    _say(
        f"data: {shape[0]:,} images from {root}, {shape[2]}x{shape[3]}, decode cache {chosen} "
        f"({why}; {served}); cache {how}: {entry.pixels}"
    )
    return DataBundle(
        train=sets[0],
        val=sets[1],
        test=sets[2],
        task="classification",
        in_shape=(3, size, size),
        num_classes=len(classes),
        classes=list(classes),
        mean=mean,
        std=std,
        name="imagefolder",
        notes=[note] if note else [],
    )


def _mib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
