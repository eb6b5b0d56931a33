"""Dataset files on disk: use what is in `data.root`, unpack archives a user put there, or
download into a staging folder that is moved into place only once complete.

A failed or interrupted download never leaves half-written files among the real ones: the
staging folder (`data.root/.dlx-download-*`) is removed, and so is `data.root` itself when
this call created it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dlx.errors import UserError


@dataclass(frozen=True)
class Source:
    """Where one torchvision dataset keeps its files under `data.root`, and where they come from."""

    title: str  # how messages name it
    dataset: str  # torchvision.datasets class name
    folder: str  # the sub-folder of data.root torchvision reads
    files: tuple[str, ...]  # what must be in that folder
    archive: str | None = None  # a single archive holding `folder` (CIFAR), if any

    def present(self, root: Path) -> bool:
        return all((root / self.folder / f).is_file() for f in self.files)

    def urls(self) -> list[str]:
        cls = torchvision_class(self.dataset)
        if hasattr(cls, "mirrors"):  # MNIST-style: one .gz per file
            return [f"{cls.mirrors[0]}{name}" for name, _ in cls.resources]
        return [cls.url]

    def where(self, root: Path) -> str:
        """What to put where, for an offline machine."""
        if self.archive:
            return (
                f"Put {self.archive} (from {self.urls()[0]}) into {root}, or its extracted folder "
                f"{self.folder}/ ({', '.join(self.files)})."
            )
        gz = ", ".join(f"{f}.gz" for f in self.files)
        base = self.urls()[0].rsplit("/", 1)[0]
        return f"Put {gz} (from {base}/; gzipped or extracted) into {root / self.folder}/."


MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
SOURCES = {
    "mnist": Source("MNIST", "MNIST", "MNIST/raw", MNIST_FILES),
    "fashion_mnist": Source("Fashion-MNIST", "FashionMNIST", "FashionMNIST/raw", MNIST_FILES),
    "cifar10": Source(
        "CIFAR-10",
        "CIFAR10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
        archive="cifar-10-python.tar.gz",
    ),
}


def torchvision_class(name: str):
    import torchvision.datasets

    return getattr(torchvision.datasets, name)


def ensure(source: Source, root: Path, download: bool) -> None:
    """Make `root` hold `source`'s files, or raise a UserError saying where to put them."""
    if source.present(root):
        return
    unpack_local(source, root)
    if source.present(root):
        return
    if not download:
        raise UserError(
            f"{source.title} is not in {root} and `data.download=false`. {source.where(root)} "
            "Or set data.download=true to download it (needs the internet).",
            key="data.root",
        )
    try:
        with staging(root) as tmp:
            torchvision_class(source.dataset)(str(tmp), train=True, download=True)
            if not source.present(tmp):
                raise RuntimeError(f"the download did not produce {source.folder}/")
    except UserError:
        raise
    except Exception as exc:  # URLError, HTTPError, a bad checksum, a full disk, ...
        lines = str(getattr(exc, "reason", exc)).strip().splitlines()
        reason = lines[-1][:200] if lines else type(exc).__name__
        raise UserError(
            f"Could not download {source.title} into {root} ({reason}). "
            f"Offline? {source.where(root)} "
            "Or point `data.root` at a folder that has them.",
            key="data.root",
        ) from None


def unpack_local(source: Source, root: Path) -> None:
    """Archives a user put into `root` by hand: gunzip MNIST's .gz, extract CIFAR's tarball."""
    folder = root / source.folder
    if source.archive:
        archive = root / source.archive
        if archive.is_file():
            from torchvision.datasets.utils import extract_archive

            with staging(root) as tmp:
                try:
                    extract_archive(str(archive), str(tmp))
                except Exception as exc:
                    raise UserError(
                        f"{archive} could not be extracted ({exc}); delete it and try again. "
                        f"{source.where(root)}",
                        key="data.root",
                    ) from None
        return
    for name in source.files:
        plain, gz = folder / name, folder / f"{name}.gz"
        if not plain.is_file() and gz.is_file():
            _gunzip(gz, plain)


def _gunzip(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with gzip.open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, dst)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(
            f"{src} is not a readable gzip file ({exc}); replace it.", key="data.root"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staging(root: Path) -> Iterator[Path]:
    """A temporary folder inside `root`; on success its contents are moved into `root`.

    On failure (or Ctrl-C) it is deleted, and so are the folders this call created for `root`.
    """
    created = [p for p in (root, *root.parents) if not p.exists()]
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".dlx-download-", dir=root))
    ok = False
    try:
        yield tmp
        for entry in tmp.iterdir():
            _merge_move(entry, root / entry.name)
        ok = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not ok:
            for p in created:  # innermost first
                try:
                    p.rmdir()  # only if empty
                except OSError:
                    break


def _merge_move(src: Path, dst: Path) -> None:
    """Move `src` to `dst`, merging into an existing folder (files are replaced atomically)."""
    if src.is_dir() and dst.is_dir():
        for child in src.iterdir():
            _merge_move(child, dst / child.name)
        return
    if dst.is_dir():
        shutil.rmtree(dst)
    os.replace(src, dst)
