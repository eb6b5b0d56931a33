"""Finding the images of an image folder: class folders, then every image file in them, once.

An image folder may come from someone else (a course, a download), so the walk is bounded:
- links to folders are followed (a dataset made of links is common) but every folder is
  entered once, by (device, inode): `ln -s . cats/loop` ends instead of running forever;
- every file is taken once, by (device, inode): a link that points into another class (or
  the same one) does not duplicate images, which would leak one split's images into another;
- a Ctrl-C or SIGTERM during the walk stops it (the launcher's stop flag is polled).
"""

from __future__ import annotations

import os
from pathlib import Path

from dlx.errors import UserError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MAX_FILES = 20_000_000


def _check_stop() -> None:
    from dlx.training import signals

    active = signals._active
    if active is not None and active.requested:
        raise KeyboardInterrupt


def _class_files(
    top: Path, root: Path, label: int, seen_dirs: set, seen_files: set
) -> list[tuple[str, int, int, int]]:
    """(relative path, label, bytes, mtime_ns) of the images under `top`, each once."""
    found = []
    stack = [str(top)]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            continue  # a link loop, or a folder already walked through another link
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        _check_stop()
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir():  # follows a link
                    subdirs.append(e.path)
                    continue
                if not e.name.lower().endswith(EXTENSIONS):
                    continue
                fst = e.stat()  # follows a link; a broken one is skipped
            except OSError:
                continue
            if (fst.st_dev, fst.st_ino) in seen_files:
                continue
            seen_files.add((fst.st_dev, fst.st_ino))
            found.append((os.path.relpath(e.path, root), label, fst.st_size, fst.st_mtime_ns))
            if len(seen_files) > MAX_FILES:
                raise UserError(
                    f"data=imagefolder: {root} holds more than {MAX_FILES:,} images.",
                    key="data.root",
                )
        stack.extend(reversed(subdirs))
    return found


def scan(root: Path) -> tuple[list[str], list[tuple[str, int, int, int]]]:
    """Class folders (sorted, hidden ones left out) and every image file in them as
    (relative path, class, bytes, mtime_ns), sorted like torchvision's ImageFolder."""
    from dlx.record.text import plain_text

    where = (
        f"`data.root` must be a folder with one sub-folder per class, e.g. {root}/cat/1.png, "
        f"{root}/dog/2.jpg"
    )
    if not root.is_dir():
        raise UserError(f"data=imagefolder: {root} is not a folder. {where}.", key="data.root")
    with os.scandir(root) as it:
        classes = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise UserError(f"data=imagefolder: {root} has no class folders. {where}.", key="data.root")
    if len(classes) == 1:
        raise UserError(
            f"data=imagefolder: {root} has one class folder ({plain_text(classes[0])}): a "
            f"classifier needs at least 2 (with one, every prediction is right). {where}.",
            key="data.root",
        )
    files: list[tuple[str, int, int, int]] = []
    seen_dirs: set = {(s.st_dev, s.st_ino) for s in [os.stat(root)]}
    seen_files: set = set()
    for label, name in enumerate(classes):
        found = _class_files(root / name, root, label, seen_dirs, seen_files)
        if not found:
            raise UserError(
                f"data=imagefolder: the class folder {root / plain_text(name)} has no images "
                f"({', '.join(EXTENSIONS)}) of its own. {where}.",
                key="data.root",
            )
        files.extend(sorted(found))
    return classes, files
