"""`deterministic=true`: the same config gives the same numbers, run after run.

torch's deterministic algorithms (`torch.use_deterministic_algorithms`), cuDNN without its
autotuner, and the cuBLAS workspace setting its reproducible reductions need. Ops that have
no deterministic version (on CUDA, e.g. some pooling and scatter backward passes) then raise;
`refusal` turns torch's error into one message that names the op. The setting is process-wide,
so `deterministic_mode` puts back what was there (sweeps run many trials in one process).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from dlx.errors import UserError

_NO_DETERMINISTIC = re.compile(r"(\S+) does not have a deterministic implementation")


@contextmanager
def deterministic_mode(on: bool) -> Iterator[None]:
    """Deterministic algorithms inside the block (when `on`); torch's refusal becomes a
    UserError naming the op."""
    if not on:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    # cuBLAS reads this when its handle is created: before the first matmul on the GPU
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False  # the autotuner may pick another algorithm per run
    torch.backends.cudnn.deterministic = True
    try:
        yield
    except RuntimeError as exc:
        user = refusal(exc)
        if user is None:
            raise
        raise user from None
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[1:]


def refusal(exc: BaseException) -> UserError | None:
    """torch's "X does not have a deterministic implementation" as a message naming X."""
    found = _NO_DETERMINISTIC.search(str(exc))
    if found is None:
        return None
    return UserError(
        f"`deterministic=true`: the op `{found.group(1)}` has no deterministic implementation "
        "in torch, so this run cannot be made reproducible as configured. Use "
        "deterministic=false, or a model/device that avoids the op (e.g. device=cpu).",
        key="deterministic",
    )


def deterministic_if_asked(fit: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate `fit(cfg, ...)`: the whole run under `deterministic_mode(cfg.deterministic)`."""

    @functools.wraps(fit)
    def run(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        with deterministic_mode(bool(cfg.get("deterministic", False))):
            return fit(cfg, *args, **kwargs)

    return run
