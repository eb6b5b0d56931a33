"""Checkpoints: a plain dict, written atomically, read back with `weights_only=True`.

A write goes through `dlx.record.atomic` (a temp file in the same folder, fsynced, renamed
over the old one), so a kill at any moment leaves the previous checkpoint intact. Loading
never unpickles code: a file that needs more than tensors and plain containers is
refused with a clear message. Where the files live: `dlx.record.names`.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dlx.errors import UserError
from dlx.record import names
from dlx.record.atomic import atomic_write

if TYPE_CHECKING:
    from dlx.training.run import Run

FORMAT = "dlx-checkpoint/1"


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
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        what = next(
            (ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln), lines[0] if lines else ""
        )
        raise UserError(
            f"Refused to load {path}: it holds more than tensors and plain data, and dlx never "
            f"runs code from a checkpoint (weights_only=True). {what[:300]}"
        ) from None
    except Exception as exc:  # truncated zip, foreign format, ...
        detail = str(exc).split(". ")[0].splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(
            f"{path} is not a readable checkpoint (truncated or corrupt?): {detail}"
        ) from None
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


def weights_of(state: dict[str, Any], path: Path, ema: bool = True) -> dict[str, Any]:
    """The model weights a checkpoint holds (the EMA's when it kept one and `ema`): a mapping of
    names to tensors, or one clear message, never a TypeError or KeyError from torch."""
    held = state.get("ema") if ema else None
    weights = state.get("model")
    if held:
        weights = held.get("model") if isinstance(held, dict) else None
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise UserError(f"{path} holds no model weights dlx can read (damaged or foreign).")
    return weights


def epoch_of(state: dict[str, Any]) -> int:
    """The epochs a checkpoint had completed (0 when it does not say, or says it oddly)."""
    run = state.get("run")
    epoch = run.get("epoch") if isinstance(run, dict) else 0
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0 else 0


TRAINING_KEYS = ("model", "optimizer", "early_stopping", "run", "rng")


def check_resumable(state: dict[str, Any], model_target: str, path: Path) -> None:
    """A checkpoint to continue training from: complete, and made by the same kind of model."""
    missing = [k for k in TRAINING_KEYS if k not in state]
    if missing:
        raise UserError(
            f"{path} cannot be resumed from: it lacks {', '.join(missing)} "
            "(a weights-only or damaged checkpoint)."
        )
    saved_target = state.get("model_target")
    if saved_target and saved_target != model_target:
        raise UserError(
            f"The checkpoint {path} was made by model `{saved_target}`, but the config asks for "
            f"`{model_target}` (check `model=...`).",
            key="model",
        )


def _an_epoch(h: Any) -> bool:
    """One entry of a run's history as dlx writes it: its epoch, and train and val figures
    (numbers; a loss in each), which the verdict reads when the run ends."""

    def figures(d: Any) -> bool:
        return (
            isinstance(d, dict)
            and "loss" in d
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in d.values())
        )

    epoch = h.get("epoch") if isinstance(h, dict) else None
    ok_epoch = isinstance(epoch, int) and not isinstance(epoch, bool)
    return ok_epoch and figures(h.get("train")) and figures(h.get("val"))


def run_counters(saved: Any, path: Path) -> dict[str, Any]:
    """A checkpoint's counters (epoch, step, first loss, history), checked by type: a key a newer
    dlx added is left aside, a wrong type is one clear message, never a TypeError mid-resume."""
    fields = {
        "epoch": (int,),
        "global_step": (int,),
        "initial_loss": (float, int, type(None)),
        "history": (list,),
    }
    bad = not isinstance(saved, dict) or any(
        k not in saved or isinstance(saved[k], bool) or not isinstance(saved[k], kinds)
        for k, kinds in fields.items()
    )
    if bad or saved["epoch"] < 0 or not all(_an_epoch(h) for h in saved["history"]):
        raise UserError(
            f"{path} cannot be resumed from: its `run` counters are not what dlx writes "
            "(epoch, global_step, initial_loss, history; a damaged or foreign checkpoint)."
        )
    return {k: saved[k] for k in fields}


@contextmanager
def _part(path: Path, what: str) -> Iterator[None]:
    """One part of a checkpoint put back: whatever a damaged or forged part raises is one
    message naming the file and the part (exit 2), not a traceback mid-resume."""
    try:
        yield
    except UserError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError, RuntimeError, IndexError):
        raise UserError(f"{path} cannot be resumed from: its {what} state is damaged.") from None


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, state: dict[str, Any], path: Path
) -> None:
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise UserError(
            f"The optimizer state in {path} does not fit this config's optimizer or model "
            f"(check `opt=...` and `model=...`): {exc}",
            key="opt",
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

    torch.set_rng_state(state["torch"].cpu())
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        n = torch.cuda.device_count()  # a run resumed on a machine with fewer GPUs
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"][:n]])


def snapshot(run: Run, best: bool = False) -> dict[str, Any]:
    """Everything `restore` needs to continue `run` exactly as if it had never stopped."""
    rng = rng_state()
    rng["loader"] = run.shuffle_gen.get_state()
    state = run.state
    ema = run.knobs.ema
    return {
        # best.pt: the weights that were validated (the EMA's when on); last.pt: the raw
        # weights training goes on from, with the EMA beside them
        "model": (run.eval_model if best else run.model).state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "optimizer": run.optimizer.state_dict(),
        **run.schedule.state_dict(),  # "scheduler" and "warmup"
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
        "early_stopping": run.stopper.state_dict(),
        "run": {
            "epoch": state.epoch,
            "global_step": state.global_step,
            "initial_loss": state.initial_loss,
            "history": state.history,
        },
        "rng": rng,
        "model_target": str(run.cfg.model._target_),
        "card": run.card,  # model.json's dict (training/card.py): a checkpoint carried alone
    }


def save_run(run: Run, name: str) -> None:
    """checkpoints/NAME (last.pt, best.pt) of `run`; rank 0 alone writes."""
    if run.dist.is_main and run.knobs.debug.checkpoints:  # debug=fdr writes none
        save(run.ckpt_dir / name, snapshot(run, best=name == names.BEST))


def restore(run: Run, path: Path) -> None:
    """Put `run` back where `snapshot` left it: weights, optimizer, scheduler, scaler, early
    stopping, counters, every RNG and the training order, and best.pt's weights."""
    from dlx.training.optim import unfreeze

    # On the CPU: RNG states must be CPU tensors; weights and optimizer state are copied
    # onto the model's device by load_state_dict.
    saved = load(path, map_location="cpu")
    check_resumable(saved, str(run.cfg.model._target_), path)
    load_model_state(run.model, weights_of(saved, path, ema=False), path)
    at = run.cfg.model.get("unfreeze_at_epoch")
    counters = run_counters(saved.get("run"), path)
    if at and counters["epoch"] > at:  # the saved optimizer holds the unfrozen group
        mult = float(run.cfg.opt.get("backbone_lr_mult", 1.0))
        unfreeze(run.model, run.optimizer, run.scheduler, mult)
    load_optimizer_state(run.optimizer, saved["optimizer"], path)
    with _part(path, "scheduler"):
        run.schedule.load_state_dict(saved)  # the scheduler's state and warmup's
    if run.knobs.ema is not None and saved.get("ema"):
        with _part(path, "EMA"):
            run.knobs.ema.load_state_dict({**saved["ema"], "model": weights_of(saved, path)})
    if run.scaler is not None and saved.get("scaler"):
        with _part(path, "gradient scaler"):
            run.scaler.load_state_dict(saved["scaler"])
    with _part(path, "early stopping"):
        run.stopper.load_state_dict(saved["early_stopping"])
    with _part(path, "random number generator"):
        run.shuffle_gen.set_state(saved["rng"]["loader"])
        set_rng_state(saved["rng"])
    run.state = type(run.state)(**counters)
    best = path.parent / names.BEST
    if best.is_file():
        run.best_weights = weights_of(load(best, map_location="cpu"), best, ema=False)
