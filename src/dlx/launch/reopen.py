"""Reopening a run folder: what `dlx eval`, `dlx train --resume`, `dlx predict` and
`dlx export` all do before they build anything from a folder that may not be theirs.

`open_run` checks the folder, reads its config through the trust boundary, applies what the
caller changes, validates it, refuses symlinks where dlx writes, picks the device and checks
the run fits in its memory. It builds nothing: the caller builds the model (and the data)
from `OpenedRun.cfg` on `OpenedRun.device`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from dlx.errors import UserError
from dlx.record import names

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class OpenedRun:
    """A run folder whose config passed every check."""

    path: Path
    cfg: DictConfig  # the run's config, trust-checked, changed by `edit`, validated
    device: torch.device  # where to build it (capacity checked there)


def open_run(
    run_dir: str | Path,
    *,
    key: str = "RUN_DIR",
    config_dir: str | None = None,
    trust_config: bool = False,
    edit: Callable[[DictConfig], DictConfig] | None = None,
    device: str | None = None,
    device_hint: str | None = None,
    for_training: bool = False,
) -> OpenedRun:
    """Open RUN_DIR for eval, resume, predict or export; every refusal is a UserError (exit 2)
    naming `key` (the argument that gave the folder: `RUN_DIR`, `--resume`).

    - the folder exists and is a dlx run folder (`.hydra/config.yaml`), and nothing dlx
      writes in it is a symlink;
    - its config comes through `config.trust.load_run_config`: only targets dlx ships, those
      of `config_dir` (the run's own --config-dir given again), or all with `trust_config`;
    - `edit(cfg)` changes it (resume's `epochs=20`) before `validate` checks it;
    - `device` (auto|cpu|cuda|mps; None: the run's own `device.type`) must be available:
      `device_hint` says what to do when it is not (else the device check's own message).
      Unless `for_training`, an fp16 run is opened in fp32 on a CPU (same weights; fp16 has
      no CPU kernels);
    - the run's sizes must fit that device's memory (`launch.capacity`).
    """
    from dlx.config.rules import validate
    from dlx.config.trust import load_run_config, refuse_symlinks
    from dlx.data.roots import resolve_data_root
    from dlx.launch.capacity import check_capacity

    path = Path(run_dir)
    where = f"`{key} {run_dir}`" if key.startswith("-") else f"`{run_dir}`"
    if not path.is_dir():
        raise UserError(f"{where}: there is no such run folder.", key=key)
    if not names.is_run_folder(path):
        raise UserError(
            f"{where}: not a dlx run folder (no .hydra/config.yaml). Give the folder of one "
            "run, e.g. outputs/DATE/TIME.",
            key=key,
        )
    refuse_symlinks(path)
    cfg = load_run_config(path, config_dir, trust_config)
    if edit is not None:
        cfg = edit(cfg)
    validate(cfg)  # a folder's config with a group missing, or values out of range
    resolve_data_root(cfg)  # its data.root is read, never written there (data/roots.py)
    on = _device(cfg, device, device_hint)
    if not for_training and cfg.precision == "fp16" and on.type == "cpu":
        cfg.precision = "fp32"
    check_capacity(cfg, on)  # a folder's config asking for more memory than there is
    return OpenedRun(path, cfg, on)


def _device(cfg: DictConfig, device: str | None, hint: str | None) -> torch.device:
    """`device` (else the run's own) resolved; not available here: `hint` says what to do."""
    from dlx.training.device import resolve_device

    if device is not None:
        if device not in DEVICES:
            raise UserError(
                f"`--device {device}`: unknown device. Allowed: {' | '.join(DEVICES)}.",
                key="--device",
            )
        cfg.device.type = device
    try:
        return resolve_device(cfg.device.type)
    except UserError:  # a GPU run on a machine without that GPU
        if hint is None:
            raise
        said = (
            f"`--device {device}`: that device"
            if device
            else f"This run was trained with device={cfg.device.type}, which"
        )
        raise UserError(f"{said} is not available here. {hint}", key="--device") from None
