"""The `debug` config group: fast dev runs, fewer batches, the overfit check, anomaly detection
(the profiler is in `dlx.training.profiling`).

- `debug.limit_batches`: a count (>= 1) or a share in (0, 1] of each split's batches;
  `debug=fdr` uses 1 (one batch of train, val and test) and `debug.checkpoints=false`.
- `debug.overfit_batches`: train on the same first N batches every epoch; at the end, say
  whether the training loss went to ~0 (a model and loss that cannot fit a handful of batches
  have a bug, or the lr is wrong: the standard sanity check before a long run).
- `debug.anomaly`: autograd anomaly detection; a NaN in the backward pass stops the run with
  the op that made it and the line of the forward call.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any

import torch

# The overfit check passes when the last epoch's training loss is below this share of the
# first batch's loss (2.30 -> 0.12 for ten classes): "~0" relative to where it started.
OVERFIT_SHARE = 0.05


@dataclass(frozen=True)
class DebugOptions:
    limit_batches: float | int | None = None
    checkpoints: bool = True
    overfit_batches: int = 0
    profile_steps: int = 0
    anomaly: bool = False

    @classmethod
    def from_cfg(cls, cfg: Any) -> DebugOptions:
        node = cfg.get("debug") if hasattr(cfg, "get") else None
        if node is None:
            return DebugOptions()
        return DebugOptions(
            limit_batches=node.get("limit_batches"),
            checkpoints=bool(node.get("checkpoints", True)),
            overfit_batches=int(node.get("overfit_batches", 0) or 0),
            profile_steps=int(node.get("profile_steps", 0) or 0),
            anomaly=bool(node.get("anomaly", False)),
        )


def batches_kept(total: int, limit: float | int | None) -> int:
    """How many of `total` batches `debug.limit_batches` keeps (at least one)."""
    if limit is None:
        return total
    if isinstance(limit, float) and limit <= 1.0:
        return max(1, min(total, math.ceil(total * limit)))
    return max(1, min(total, int(limit)))


class Limited:
    """The first `n` batches of a loader, each epoch (the shuffle still draws the full order)."""

    def __init__(self, loader: Any, n: int) -> None:
        self.loader, self.n = loader, int(n)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Any]:
        return islice(iter(self.loader), self.n)


class FixedBatches:
    """The same first `n` batches every epoch, drawn once (with their augmentation)."""

    def __init__(self, loader: Any, n: int) -> None:
        self.batches = list(islice(iter(loader), int(n)))

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)


def limit_loader(loader: Any, limit: float | int | None) -> Any:
    kept = batches_kept(len(loader), limit)
    return loader if kept >= len(loader) else Limited(loader, kept)


def overfit_verdict(first_loss: float | None, last_loss: float | None, batches: int) -> dict:
    """Did training drive the loss on `batches` batches to ~0? (a dict for metrics.json, with
    the line to print)."""
    passed = (
        first_loss is not None
        and last_loss is not None
        and math.isfinite(last_loss)
        and last_loss <= OVERFIT_SHARE * first_loss
    )
    if first_loss is None or last_loss is None:
        line = "overfit check: no epoch finished, nothing to judge."
    elif passed:
        line = (
            f"overfit check PASSED: the training loss on {batches} batches went from "
            f"{first_loss:.4g} to {last_loss:.4g} (~0): the model, the loss and the labels "
            "can learn. Now train on the full data."
        )
    else:
        line = (
            f"overfit check FAILED: the training loss on {batches} batches went from "
            f"{first_loss:.4g} only to {last_loss:.4g} (not below {OVERFIT_SHARE:.0%} of the "
            "start). A model that cannot memorize a few batches has a bug or a wrong lr: try "
            "more epochs, another opt.lr (dlx lr-find), less regularization, and check the "
            "labels and the loss."
        )
    return {
        "passed": bool(passed),
        "batches": batches,
        "first_loss": first_loss,
        "last_loss": last_loss,
        "line": line,
    }


# ---------------------------------------------------------------------------- anomaly

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_NAN = re.compile(r"Function '(\w+)' returned nan values in its (\d+)\w* output")


class Anomaly:
    """Autograd anomaly detection for the run; keeps the forward traceback torch warns with."""

    def __init__(self) -> None:
        self.forward_trace = ""

    @contextmanager
    def detecting(self) -> Iterator[Anomaly]:
        with warnings.catch_warnings(), torch.autograd.detect_anomaly(check_nan=True):
            shown = warnings.showwarning

            def keep(message, category, filename, lineno, file=None, line=None):
                text = str(message)
                if text.startswith("Error detected in"):
                    self.forward_trace = text
                shown(message, category, filename, lineno, file, line)

            warnings.showwarning = keep
            # seen even where warnings are silenced: it is the forward trace the message needs
            warnings.filterwarnings("always", message="Error detected in")
            yield self

    def message(self, exc: BaseException, step: int) -> str | None:
        """The NaN's op and the forward line that made it, or None for other errors."""
        found = _NAN.search(str(exc))
        if found is None:
            return None
        op = found.group(1)
        name = re.sub(r"Backward\d*$", "", op)  # LogSoftmaxBackward0 -> log_softmax
        forward = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        frames = _FRAME.findall(self.forward_trace)
        where = ""
        if frames:
            path, line, func = frames[-1]
            where = f"; its forward call: {func} ({path}:{line})"
            own = [f for f in frames[:-1] if "/torch/" not in f[0]]
            if own:
                where += f", called from {own[-1][2]} ({own[-1][0]}:{own[-1][1]})"
        return (
            f"anomaly detection (debug=anomaly): the backward of `{forward}` ({op}) made NaN "
            f"gradients at step {step}{where}. A NaN in the forward pass (inf - inf, 0 * inf, "
            "log of 0, an overflowing lr) flows into it."
        )
