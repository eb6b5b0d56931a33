"""A run's trained model, opened for inference: config, model card, weights.

The config comes through the trust boundary (`config.trust.load_run_config`: only targets dlx
builds), the weights from `checkpoints/{best,last}.pt` (read with `weights_only=True`; an EMA
run's average, as `dlx eval` and the run's own test use), and the model card from `model.json`,
else the checkpoint's copy, else (runs from before dlx wrote one) derived by building the
run's data again from its config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from dlx.errors import UserError
from dlx.record import names

CHECKPOINTS = ("best", "last")


@dataclass
class Opened:
    run_dir: Path
    cfg: DictConfig
    card: dict[str, Any]
    model: torch.nn.Module
    device: torch.device
    checkpoint: str
    epoch: int

    @property
    def classes(self) -> list[str]:
        return list(self.card.get("classes") or [])

    @property
    def pre(self) -> dict[str, Any]:
        return self.card["preprocess"]


def checkpoint_path(run_dir: Path, checkpoint: str) -> Path:
    if checkpoint not in CHECKPOINTS:
        raise UserError(
            f"`--checkpoint {checkpoint}`: unknown checkpoint. Allowed: {' | '.join(CHECKPOINTS)}.",
            key="--checkpoint",
        )
    path = names.checkpoint(run_dir, checkpoint)
    if not path.is_file():
        other = "last" if checkpoint == "best" else "best"
        there = names.checkpoint(run_dir, other).is_file()
        hint = f" Try --checkpoint {other}." if there else " The run saved no weights to use."
        raise UserError(f"No checkpoint at {path}.{hint}", key="--checkpoint")
    return path


def _valid_card(card: Any) -> bool:
    return (
        isinstance(card, dict)
        and str(card.get("format", "")).startswith("dlx-model/")
        and card.get("task") in ("classification", "regression")
        and isinstance(card.get("preprocess"), dict)
        and isinstance(card.get("input_shape"), list)
    )


def read_card(run_dir: Path, state: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """model.json, else the checkpoint's copy; None when neither is a usable card."""
    from dlx.training.card import FILE

    path = run_dir / FILE
    if path.is_file() and not path.is_symlink():
        try:
            card = json.loads(path.read_text())
            if _valid_card(card):
                return card
        except (OSError, UnicodeDecodeError, ValueError):
            pass
    card = (state or {}).get("card")
    return card if _valid_card(card) else None


def derive_card(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """A run from before model.json: its card from its config and its data, built again."""
    from dlx.data import build_data
    from dlx.models import min_input_size
    from dlx.training.card import describe

    try:
        data = build_data(cfg.data, cfg.seed, min_input_size(cfg.model))
    except UserError as exc:
        raise UserError(
            f"{run_dir} has no model.json (it was trained before dlx wrote one), and its "
            f"training data, needed to recover the classes and the normalization, cannot be "
            f"read: {exc}",
            key=exc.key,
        ) from None
    return describe(cfg, data)


def build_from_card(cfg: DictConfig, card: dict[str, Any]) -> torch.nn.Module:
    """The run's model class with the shape the card gives (no data is read)."""
    from dlx.config.rules import to_plain
    from dlx.data import DataBundle
    from dlx.models import build_model

    shape = DataBundle(
        train=None,
        val=None,
        test=None,
        task=card["task"],
        in_shape=tuple(card["input_shape"]),
        num_classes=len(card.get("classes") or []) or None,
        name=str(card.get("data", "")),
    )
    model_cfg = dict(to_plain(cfg.model))
    for key, off in (("pretrained", False), ("weights", None)):  # the checkpoint replaces them
        if key in model_cfg:
            model_cfg[key] = off
    return build_model(model_cfg, cfg.reg, shape, binary=cfg.get("loss") == "bce")  # 1 unit


def open_model(
    run_dir: str | Path,
    checkpoint: str = "best",
    device: str | None = None,
    config_dir: str | None = None,
    trust_config: bool = False,
) -> Opened:
    """RUN_DIR's model in eval mode on `device` (None: auto), with its card. The folder is
    opened by `launch.reopen.open_run` (folder checks, the trust boundary, validate, device)."""
    from dlx.launch.reopen import open_run
    from dlx.training import checkpoint as ckpt

    if checkpoint not in CHECKPOINTS:
        checkpoint_path(Path(run_dir), checkpoint)  # names what is allowed
    hint = "Use `--device cpu` (or auto)."
    run = open_run(
        run_dir,
        config_dir=config_dir,
        trust_config=trust_config,
        device=device or "auto",
        device_hint=hint,
    )
    run_dir, cfg, on = run.path, run.cfg, run.device
    path = checkpoint_path(run_dir, checkpoint)
    state = ckpt.load(path, map_location="cpu")
    card = read_card(run_dir, state) or derive_card(cfg, run_dir)
    torch.manual_seed(int(cfg.get("seed", 0)))
    model = build_from_card(cfg, card)
    ckpt.load_model_state(model, ckpt.weights_of(state, path), path)
    model.to(on).eval()
    epoch = ckpt.epoch_of(state)
    return Opened(run_dir, cfg, card, model, on, checkpoint, epoch)
