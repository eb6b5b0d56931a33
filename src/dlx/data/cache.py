"""The decode cache for image folders: every image decoded once, kept as uint8 pixels.

The first run decodes the folder in parallel (one process per core, PIL), resized to
`data.image_size`, into one raw (N, C, H, W) uint8 file plus a JSON description, both next to
the images (`DATA_ROOT/.dlx-cache-*`, hidden files at the top, where torchvision's ImageFolder
does not look) or in `~/.cache/dlx` when the folder is read-only. The key is the file list,
each file's size and mtime, and the size setting: any change gives a new cache, an unchanged
folder reuses it. Writes go to a temp file renamed into place (`os.replace`) under a file
lock, so two runs started together decode once and neither sees half a file.

`data/pixels.py` serves what is stored here, in memory or memory-mapped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlx.errors import UserError

VERSION = 1  # bump when the stored layout or the decode changes
CHUNK = 64  # images per task sent to a decode process
SERIAL_BELOW = 1024  # fewer images: decoded in this process (a pool costs more than it saves)
MAX_ASPECT = 50  # wider (or taller) images are refused: their resize would be unbounded


# ---------------------------------------------------------------------------- one image


def decode(path: str, size: int) -> np.ndarray:
    """One image as (3, size, size) uint8: RGB, shorter side resized to `size` (bilinear, as
    torchvision's Resize on PIL images), centre-cropped square; untouched when already that size.
    Raises on anything that is not a whole, sane image (PIL's decompression-bomb warning too)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            _check_shape(img.size)  # from the header, before a pixel is decoded
            img.load()  # the whole file: a truncated image fails here, not in an epoch
            img = img.convert("RGB")
    w, h = img.size
    if (w, h) != (size, size):
        if min(w, h) != size:
            if w <= h:
                nw, nh = size, int(size * h / w)
            else:
                nw, nh = int(size * w / h), size
            img = img.resize((nw, nh), Image.BILINEAR)
            w, h = nw, nh
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))


def _check_shape(size: tuple[int, int]) -> None:
    """Refuse a shape whose resize would be huge however small the file: the shorter side
    goes to `image_size`, so a 2,000,000 x 1 PNG (2 KB) would become 32,000,000 x 16."""
    w, h = size
    if min(w, h) < 1 or max(w, h) > MAX_ASPECT * min(w, h):
        raise ValueError(f"{w}x{h} pixels: an aspect ratio beyond {MAX_ASPECT}:1")


def problem(exc: BaseException) -> str:
    """Why a file is not a usable image, in a few words."""
    name = type(exc).__name__
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    if "DecompressionBomb" in name:
        return f"decompression bomb ({text})"
    if name == "UnidentifiedImageError":
        return "not an image PIL can read (empty, or another format under an image name)"
    return f"{name}: {text}" if text else name


def header_problem(path: str) -> str | None:
    """A cheap check (header only, no decode) for the uncached path."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_shape(img.size)
    except Exception as exc:  # noqa: BLE001 - any failure makes the file unusable
        return problem(exc)
    return None


def _decode_chunk(args: tuple[list[str], int]) -> list[tuple[bytes | None, str | None]]:
    paths, size = args
    out = []
    for p in paths:
        try:
            out.append((decode(p, size).tobytes(), None))
        except Exception as exc:  # noqa: BLE001 - named and counted by the caller
            out.append((None, problem(exc)))
    return out


def _quiet_worker() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def workers(requested: int | None = None) -> int:
    if requested:
        return int(requested)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------- where, which key


def cache_key(root: Path, files: list[tuple[str, int, int, int]], size: int) -> str:
    """Hash of (relative path, class, bytes, mtime_ns) for every file, and the size setting."""
    h = hashlib.sha256(f"dlx-imagefolder v{VERSION} size={size}\n".encode())
    for rel, label, nbytes, mtime in files:
        h.update(f"{rel}\0{label}\0{nbytes}\0{mtime}\n".encode())
    return h.hexdigest()[:20]


def cache_dir(root: Path, in_root: bool = True) -> tuple[Path, str]:
    """Where the cache goes and its name prefix: the image folder itself when writable (and
    `in_root`), else ~/.cache/dlx (XDG_CACHE_HOME), named after the folder. A root named by
    a run folder's config (eval, --resume) is never written: `in_root=False`."""
    if in_root and os.access(root, os.W_OK):
        return root, ".dlx-cache-"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlx"
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return base, f"imagefolder-{root.name[:40]}-{tag}-"


@dataclass
class Entry:
    """One cache: `pixels` (raw uint8, N x C x H x W) and `meta` (JSON) next to each other."""

    pixels: Path
    meta: Path
    lock: Path

    @classmethod
    def at(cls, folder: Path, prefix: str, size: int, key: str) -> Entry:
        stem = folder / f"{prefix}s{size}-{key}"
        return cls(Path(f"{stem}.u8"), Path(f"{stem}.json"), folder / f"{prefix}s{size}.lock")

    def read_meta(self, paths: list[str], size: int) -> dict[str, Any] | None:
        """The description, if a complete cache of exactly these files is there (else None:
        build it). Nothing in it is trusted: its shape, `kept` and `bad` must match the files
        the scan found, and a few stored images must equal their files decoded again (edited
        `kept` entries would relabel every image)."""
        try:
            if self.meta.is_symlink() or self.pixels.is_symlink():
                return None
            from dlx.data.cachecheck import consistent, spot_check
            from dlx.record.read import load_json

            meta = load_json(self.meta, 64 << 20)
            if not consistent(meta, paths, size, VERSION):
                return None
            n, c, h, w = meta["shape"]
            if self.pixels.stat().st_size != n * c * h * w:
                return None
            return meta if spot_check(self.pixels, meta["kept"], paths, size, decode) else None
        except (OSError, ValueError, KeyError, TypeError, UserError):
            return None


@contextlib.contextmanager
def locked(path: Path, say) -> Any:
    """An exclusive lock on `path` (fcntl); where there is none, runs unlocked (the rename
    still makes the last complete writer win)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another run that is filling the cache ({path.name})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- the first run


def build(entry: Entry, paths: list[str], size: int, n_workers: int, show) -> dict[str, Any]:
    """Decode `paths` into `entry` (temp file + os.replace); returns its description.
    Unreadable files are left out and listed in the description's `bad`."""
    start = time.perf_counter()
    bad: list[list[str]] = []
    kept: list[int] = []
    folder = entry.pixels.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=entry.pixels.name + ".", suffix=".tmp", dir=folder)
    _readable(fd)
    tasks = [(paths[i : i + CHUNK], size) for i in range(0, len(paths), CHUNK)]
    n_workers = 1 if len(paths) < SERIAL_BELOW else max(1, min(n_workers, len(tasks)))
    try:
        with os.fdopen(fd, "wb") as out, show(len(paths)) as advance:
            for i, results in enumerate(_results(tasks, n_workers)):
                _check_stop()
                for j, (pixels, why) in enumerate(results):
                    k = i * CHUNK + j
                    if pixels is None:
                        bad.append([paths[k], str(why)])
                    else:
                        out.write(pixels)
                        kept.append(k)
                advance(len(results))
            out.flush()
            os.fsync(out.fileno())
        meta = {
            "version": VERSION,
            "shape": [len(kept), 3, size, size],
            "kept": kept,
            "bad": bad,
            "files": len(paths),
            "decode_s": round(time.perf_counter() - start, 2),
            "workers": n_workers,
            "built": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.replace(tmp, entry.pixels)
        _write_json(entry.meta, meta)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return meta


def _results(tasks: list, n_workers: int, work=None):
    """Decoded chunks in order: in a pool of processes (fork: nothing to re-import).
    `work`: the per-chunk function (default `_decode_chunk`; `data/inputs.py` passes its own)."""
    work = work or _decode_chunk
    if n_workers <= 1:
        yield from map(work, tasks)
        return
    import multiprocessing as mp

    method = "fork" if "fork" in mp.get_all_start_methods() else None
    ctx = mp.get_context(method)
    pool = ctx.Pool(n_workers, initializer=_quiet_worker)
    try:
        yield from pool.imap(work, tasks)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _check_stop() -> None:
    """A Ctrl-C that arrived during the decode (the launcher's handler keeps it as a flag)."""
    from dlx.training import signals

    active = signals._active
    if active is not None and active.requested:
        raise KeyboardInterrupt


def _write_json(path: Path, obj: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    _readable(fd)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _readable(fd: int) -> None:
    """mkstemp makes 0600 files; a cache is as readable as the images (0644 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o644 & ~umask)


def remove_temp(folder: Path, prefix: str, size: int) -> None:
    """The temp files a killed build left (dlx's own names, regular files only); call it
    holding the lock, so no build of this size is running."""
    for p in folder.glob(f"{prefix}s{size}-*.tmp"):
        if p.is_file() and not p.is_symlink():
            with contextlib.suppress(OSError):
                p.unlink()


def remove_stale(folder: Path, prefix: str, size: int, keep: Entry) -> None:
    """Older caches of this folder at this size (a file changed since): deleted. A run still
    reading one keeps its open mapping (POSIX)."""
    for p in folder.glob(f"{prefix}s{size}-*"):
        if p.is_symlink() or not p.is_file():
            continue
        if p not in (keep.pixels, keep.meta) and p.suffix in (".u8", ".json"):
            with contextlib.suppress(OSError):
                p.unlink()
