"""Device, precision and the other speed knobs: what was asked for vs what is there."""

from __future__ import annotations

import contextlib
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
        raise UserError("`device=cuda` was asked for, but no CUDA GPU is visible here. "
                        "Use device=cpu or device=auto.", key="device")
    if kind == "mps" and not has_mps:
        raise UserError("`device=mps` was asked for, but Apple's MPS backend is not available here. "
                        "Use device=cpu or device=auto.", key="device")
    return torch.device(kind)


def check_speed_options(cfg: Any, device: torch.device) -> None:
    """Explain options that mean nothing on this device (exit 2), instead of ignoring them."""
    if cfg.precision == "fp16" and device.type == "cpu":
        raise UserError("`precision=fp16` needs a GPU (CPU autocast runs in bf16): use precision=bf16 "
                        "or precision=fp32 on the CPU.", key="precision")


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
