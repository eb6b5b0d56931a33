"""Device, precision and the other speed knobs: what was asked for vs what is there.

The GPU path: `device=cuda` keeps in-memory datasets on the GPU (data/loader.py), other
datasets come through pinned memory with non-blocking copies; `precision=bf16|fp16` runs
the forward pass under autocast (fp16 with a GradScaler); `channels_last=true` stores conv
nets' weights and batches as NHWC; `compile=true` wraps the model in `torch.compile`.
A knob that cannot work here is refused with the reason (exit 2) before the run starts;
one that works but costs more than it saves here gets a note at the start of the run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from typing import Any

import torch

from dlx.errors import UserError


def resolve_device(kind: str) -> torch.device:
    """auto: cuda, then mps, then cpu. Asking for a device that is not there is exit 2."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "`device=cuda` was asked for, but no CUDA GPU is visible here. "
            "Use device=cpu or device=auto.",
            key="device",
        )
    if kind == "mps" and not has_mps:
        raise UserError(
            "`device=mps` was asked for, but Apple's MPS backend is not available "
            "here. Use device=cpu or device=auto.",
            key="device",
        )
    return torch.device(kind)


def _cuda_bf16(device: torch.device) -> bool:
    """Native bf16 (Ampere and newer); older GPUs would only emulate it, slowly."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no `including_emulation`
        return torch.cuda.get_device_capability(device)[0] >= 8


def _compile_blocker(device: torch.device) -> str | None:
    """Why `torch.compile` cannot build kernels for this device, or None when it can."""
    if device.type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "torch.compile builds its GPU kernels with Triton, which is not installed"
        return None
    if device.type == "cpu":
        cxx = os.environ.get("CXX", "g++")
        if not any(shutil.which(c) for c in (cxx, "g++", "clang++")):
            return (
                "torch.compile builds its CPU kernels with a C++ compiler, and none was found "
                "(g++ or clang++ on PATH, or $CXX)"
            )
    return None


def check_speed_options(cfg: Any, device: torch.device) -> None:
    """Explain options that cannot work on this device (exit 2), instead of ignoring them."""
    if cfg.precision == "fp16" and device.type == "cpu":
        raise UserError(
            "`precision=fp16` needs a GPU (CPU autocast runs in bf16): use "
            "precision=bf16 or precision=fp32 on the CPU.",
            key="precision",
        )
    if cfg.precision == "bf16" and device.type == "cuda" and not _cuda_bf16(device):
        name = torch.cuda.get_device_name(device)
        major, minor = torch.cuda.get_device_capability(device)
        raise UserError(
            f"`precision=bf16` needs a GPU with bfloat16 units (compute capability "
            f"8.0+, Ampere or newer); {name} is {major}.{minor}. Use precision=fp16 "
            "(autocast with a GradScaler) or precision=fp32.",
            key="precision",
        )
    if cfg.compile:
        reason = _compile_blocker(device)
        if reason:
            raise UserError(
                f"`compile=true` cannot work here: {reason}. Use compile=false.", key="compile"
            )


def speed_notes(cfg: Any, device: torch.device, is_image: bool) -> list[str]:
    """What the speed knobs do on this device when that is not what one may expect."""
    notes = []
    if cfg.channels_last and not is_image:
        notes.append(
            "channels_last=true changes nothing here: the inputs are not images "
            "(it is a memory layout for conv nets)."
        )
    if device.type == "cpu" and cfg.precision == "bf16":
        notes.append(
            "precision=bf16 on the CPU: autocast runs convolutions and matrix products in "
            "bfloat16; faster only on CPUs with bf16 instructions (AVX512-BF16, AMX), "
            "slower on the others. fp32 is the CPU's fast path."
        )
    if cfg.compile:
        where = "C++ kernels on the CPU" if device.type == "cpu" else f"kernels for {device.type}"
        notes.append(
            f"compile=true: the first steps compile the model ({where}: seconds to "
            "minutes, again for a different last-batch size); it pays off on long runs."
        )
    return notes


def tune_backends(device: torch.device) -> None:
    """cuDNN picks the fastest convolution algorithm for each input shape (a run's batches
    share one shape, so the search is paid once)."""
    # not under deterministic=true: the search may pick another algorithm in the next run
    if device.type == "cuda" and not torch.are_deterministic_algorithms_enabled():
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str):
    """fp16 needs loss scaling so small gradients do not underflow; bf16 and fp32 do not."""
    if precision == "fp16":
        return torch.amp.GradScaler(device.type)
    return None
