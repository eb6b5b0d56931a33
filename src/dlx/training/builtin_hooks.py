"""dlx's own per-epoch features, on the same hook list as everyone's (dlx.training.hooks):
early stopping's stop, and unfreezing a frozen backbone at `model.unfreeze_at_epoch`.

They are built per run (they act on its stopper, model and optimizer), ahead of the hooks
registered with `hooks.register`, so early stopping's status wins when several stop at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlx.errors import UserError
from dlx.record import status
from dlx.tracking.boundary import BoundaryHook, every_n_epochs, is_plane
from dlx.training.hooks import EpochEnd, EpochHook
from dlx.training.optim import unfreeze

if TYPE_CHECKING:
    from dlx.training.run import Run


class EarlyStop:
    """Stops the run once the stopper (updated by the loop, which needs its verdict for
    best.pt before the checkpoints) has fired, and says why."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def on_epoch_end(self, end: EpochEnd) -> str | None:
        stopper, tracker = self.run.stopper, self.run.tracker
        if not stopper.fired:
            return None
        msg = (
            f"Early stopping fired at epoch {end.epoch}: {stopper.monitor} did not "
            f"improve by more than {stopper.min_delta} for {stopper.patience} epochs. "
            f"Best epoch {stopper.best_epoch} ({stopper.monitor} = {stopper.best:.4g})."
        )
        tracker.text("early_stopping", msg, end.epoch)
        tracker.early_stopping(end.epoch, stopper.best_epoch, stopper.best, stopper.monitor)
        self.run.console.print(f"[cyan]{msg}[/]")
        return status.STOPPED_EARLY


class Unfreeze:
    """`model.unfreeze_at_epoch=N`: epochs 1..N train what `model.freeze` leaves, N+1..
    everything, the newly trainable tensors at lr x `opt.backbone_lr_mult`. A resume past N
    unfreezes before loading the optimizer (checkpoint.restore), whose state has them."""

    def __init__(self, run: Run, at: int) -> None:
        if run.dist.world_size > 1:
            raise UserError(
                "`model.unfreeze_at_epoch` needs trainer.devices=1 (DDP fixes the "
                "trainable parameters when it starts).",
                key="model.unfreeze_at_epoch",
            )
        self.run, self.at = run, at
        self.mult = float(run.cfg.opt.get("backbone_lr_mult", 1.0))

    def on_epoch_start(self, epoch: int) -> None:
        if epoch != self.at + 1:
            return
        run = self.run
        n = unfreeze(run.model, run.optimizer, run.scheduler, self.mult)
        if n:
            run.watch_gradients()  # the monitor watches the tensors that train now
            msg = (
                f"Unfrozen at epoch {epoch}: {n} more tensors train from now on, "
                f"at lr x {self.mult:g} (opt.backbone_lr_mult)."
            )
            run.tracker.text("model/unfreeze", msg, epoch)
            run.console.print(f"[cyan]{msg}[/]")

    def on_epoch_end(self, end: EpochEnd) -> str | None:
        return None


def builtin_hooks(run: Run) -> list[EpochHook]:
    hooks: list[EpochHook] = [EarlyStop(run)]
    at = run.cfg.model.get("unfreeze_at_epoch")
    if at:
        hooks.append(Unfreeze(run, int(at)))
    if is_plane(run.data):  # 2-D points: the decision boundary every few epochs
        hooks.append(BoundaryHook(run, every_n_epochs(run.cfg.epochs)))
    return hooks
