"""Where a data-parallel job runs: torchrun's environment, the backend for a device, and
whether the asked-for devices are there (preflight's check). Nothing here reaches the
training loop, so preflight can use it without an import circle."""

from __future__ import annotations

import os

from omegaconf import DictConfig

from dlx.errors import UserError


def torchrun_env() -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) when this process is one of torchrun's ranks (world > 1)."""
    try:
        world = int(os.environ.get("WORLD_SIZE") or 1)
        rank = int(os.environ["RANK"])
    except (KeyError, ValueError):
        return None
    if world <= 1:
        return None
    return rank, world, int(os.environ.get("LOCAL_RANK") or 0)


def backend_for(device) -> str:
    """nccl between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def check_devices(cfg: DictConfig, multirun: bool = False) -> None:
    """Say up front (exit 2, before any run folder) what a data-parallel request cannot do here."""
    from dlx.training.device import resolve_device

    env = torchrun_env()
    n = int(cfg.trainer.devices)
    if env is not None:
        if multirun:
            raise UserError(
                "Sweeps do not run under torchrun: start `dlx sweep` once, and give each "
                "trial its own processes with trainer.devices=N.",
                key="trainer.devices",
            )
        if n not in (1, env[1]):
            raise UserError(
                f"`trainer.devices`={n} under torchrun with {env[1]} processes: torchrun "
                "already starts the processes. Leave trainer.devices at 1 (or set it "
                f"to {env[1]}).",
                key="trainer.devices",
            )
        n = env[1]
    if n <= 1:
        return
    device = resolve_device(cfg.device.type)
    if device.type == "mps":
        raise UserError(
            "`trainer.devices` > 1 needs CUDA GPUs (nccl) or the CPU (gloo); Apple's MPS has "
            "no torch.distributed backend. Use device=cpu or trainer.devices=1.",
            key="trainer.devices",
        )
    if device.type == "cuda" and env is None:
        import torch

        if n > torch.cuda.device_count():
            raise UserError(
                f"`trainer.devices`={n} but only {torch.cuda.device_count()} CUDA GPU(s) are "
                f"visible. Allowed: 1..{torch.cuda.device_count()}.",
                key="trainer.devices",
            )
