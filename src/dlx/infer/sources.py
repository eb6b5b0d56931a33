"""What `dlx predict` was given, turned into named model inputs (and named refusals).

An image run takes image files, folders (every image and `.npy`/`.csv` in them, recursively,
sorted) and globs (`'new/*.png'`, `'new/**/*.jpg'`); a feature run (`data=function`) takes
numbers and `.csv`/`.npy` files of rows. Whatever cannot be used is named with the reason
and skipped; the caller decides what to do when nothing is left.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.data.imagefolder import EXTENSIONS
from dlx.data.inputs import ARRAY_EXTENSIONS, decode_files, is_array, read_array, to_model


@dataclass
class Batch:
    """The inputs that could be used, as the model's tensor, and those that could not."""

    names: list[str] = field(default_factory=list)
    x: torch.Tensor | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, why)
    given: int = 0  # inputs after expanding folders and globs


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def expand(inputs: list[Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files named, found in folders, or matched by globs; plus what matched nothing."""
    wanted = EXTENSIONS + ARRAY_EXTENSIONS
    files, missing = [], []
    for raw in inputs:
        item = str(raw)
        if os.path.isdir(item):
            found = []
            for dirpath, dirnames, filenames in os.walk(item, followlinks=False):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found += [
                    os.path.join(dirpath, f)
                    for f in sorted(filenames)
                    if f.lower().endswith(wanted) and not f.startswith(".")
                ]
            if not found:
                missing.append((item, "a folder with no images or .npy/.csv files in it"))
            files += found
        elif os.path.exists(item):
            files.append(item)
        elif any(ch in item for ch in "*?["):
            matched = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            files += matched
            if not matched:
                missing.append((item, "no file matches this pattern"))
        elif _number(item) is not None:
            files.append(item)  # a number: for a feature run (an image run names it below)
        else:
            missing.append((item, "no such file or folder"))
    return files, missing


def _array_rows(path: str, pre: dict[str, Any], names, parts, skipped) -> None:
    try:
        rows = read_array(path, pre)
    except Exception as exc:  # noqa: BLE001 - the file is named with why
        why = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        skipped.append((path, f"not a usable array file ({why[:200]})"))
        return
    scale = pre.get("array_scale", 1.0)
    parts.append(to_model(torch.from_numpy(rows), pre, scale))
    names += [path] if len(rows) == 1 else [f"{path}:{i + 1}" for i in range(len(rows))]


def gather(inputs: list[Any], pre: dict[str, Any], data: str = "", advance=None) -> Batch:
    """Every input the run can take, prepared as its training data was."""
    out = Batch()
    items, out.skipped = expand(inputs)
    out.given = len(items) + len(out.skipped)
    parts: list[torch.Tensor] = []
    names: list[str] = []
    if pre["kind"] == "features":
        for item in items:  # in the order given
            if _number(item) is not None and not os.path.exists(item):
                if int(pre["features"]) != 1:
                    out.skipped.append((item, f"the run takes {pre['features']} numbers a row"))
                    continue
                names.append(item)
                parts.append(torch.tensor([[float(item)]], dtype=torch.float32))
            elif is_array(item):
                _array_rows(item, pre, names, parts, out.skipped)
            else:
                why = f"this run (data={data}) takes numbers or a .csv/.npy of rows, not images"
                out.skipped.append((item, why))
    else:
        images = []
        for item in items:
            if is_array(item):
                _array_rows(item, pre, names, parts, out.skipped)
            elif _number(item) is not None and not os.path.exists(item):
                out.skipped.append((item, f"this run (data={data}) takes images, not numbers"))
            else:
                images.append(item)
        good, bad = decode_files(images, pre, advance=advance)
        out.skipped += [(images[k], why) for k, why in bad]
        if good:
            pixels = torch.from_numpy(np.stack([px for _, px in good]))
            parts.append(to_model(pixels, pre))
            names += [images[k] for k, _ in good]
    out.names = names
    out.x = torch.cat(parts) if parts else None
    return out


def display(name: str) -> str:
    """A name as shown: relative to the working folder when inside it."""
    try:
        return str(Path(name).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return name
