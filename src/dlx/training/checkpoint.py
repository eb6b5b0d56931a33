"""Checkpoints: a plain dict, written atomically, read back with `weights_only=True`.

A write goes to a temporary file in the same folder, is fsynced, then renamed over
the old one, so a kill at any moment leaves the previous checkpoint intact. Loading
never unpickles code: a file that needs more than tensors and plain containers is
refused with a clear message.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from dlx.errors import UserError

FORMAT = "dlx-checkpoint/1"


def atomic_write(path: Path, write) -> None:
    """Call `write(fileobj)` on a temp file next to `path`, fsync, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save(path: Path, state: dict[str, Any]) -> None:
    atomic_write(Path(path), lambda f: torch.save({"format": FORMAT, **state}, f))


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a dlx checkpoint safely; every failure is a UserError (exit 2)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"No checkpoint at {path}.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserError(
            f"Refused to load {path}: it holds more than tensors and plain data "
            f"(weights_only=True blocks code in checkpoints). Detail: {str(exc).splitlines()[0]}"
        ) from None
    except Exception as exc:  # truncated zip, foreign format, ...
        raise UserError(f"{path} is not a readable checkpoint (truncated or corrupt?): {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a dlx checkpoint (no '{FORMAT}' marker).")
    return state


def load_model_state(model: torch.nn.Module, state_dict: dict[str, Any], path: Path) -> None:
    """Load weights, turning a shape/key mismatch into a message about the model config."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = [line.strip() for line in str(exc).splitlines() if line.strip()][:3]
        raise UserError(
            f"The checkpoint {path} was made by a different model config than this one "
            f"(check `model=...` and its keys): {' '.join(first)}"
        ) from None


def rng_state() -> dict[str, Any]:
    """Every RNG a run draws from, as tensors and plain data (weights_only-safe)."""
    import random

    import numpy as np

    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
