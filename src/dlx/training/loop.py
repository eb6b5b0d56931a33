"""The training loop: forward, loss, backward, step; evaluate; keep the best; stop early.

`fit(cfg, run_dir)` is the whole run, in named steps: build it (`run.build_run`), restore
it from its checkpoint (`checkpoint.restore`), then per epoch `train_epoch` (each batch one
`step.train_step`) and `end_epoch` (validation, scheduler, checkpoints, logging, the hooks of
`dlx.training.hooks`), and `finish` (test, figures, metrics.json). A feature plugs in as a
hook or at the training step's `on_grads` / `on_update`, not here.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from dlx.config.rules import to_plain
from dlx.errors import UserError
from dlx.record import names
from dlx.record import status as st
from dlx.tracking.console import RunConsole
from dlx.tracking.visuals import log_conv_layer, log_start
from dlx.training import card, checkpoint
from dlx.training.determinism import deterministic_if_asked
from dlx.training.finish import finish, flat_hparams
from dlx.training.hooks import EpochEnd, epoch_end, epoch_start
from dlx.training.optim import head_lr
from dlx.training.run import Built, Dist, Run, RunState, begin, build, build_run, evaluate, predict
from dlx.training.signals import StopRequested
from dlx.training.step import train_step


class Diverged(Exception):
    pass


@deterministic_if_asked  # deterministic=true: torch's deterministic algorithms for the run
def fit(
    cfg: DictConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    dist: Dist | None = None,
    choices: dict[str, str] | None = None,
    check: Callable[[list[str], str | None], bool] | None = None,
) -> dict[str, Any]:
    """Train one run into `run_dir` and return its metrics (also written to metrics.json).
    `check(overrides, config_dir)`: would `dlx train OVERRIDES` start? (the caller's
    preflight; the diagnosis suggests only commands it passes; None: none suggested)."""
    t_start = time.perf_counter()
    dist = dist or Dist()
    run = build_run(cfg, Path(run_dir), dist, RunConsole(enabled=dist.is_main))
    run.check = check
    if resume:
        checkpoint.restore(run, run.ckpt_dir / names.LAST)
    begin(run, resume)
    greet(run, resume)
    status, error = st.COMPLETED, None
    last_epoch = cfg.epochs
    if run.stopper.fired:  # resumed after early stopping fired: nothing is left to train
        status, last_epoch = st.STOPPED_EARLY, run.state.epoch
    with (
        StopRequested() as stop,
        run.console.live(cfg.epochs, len(run.train_loader)),
        run.knobs.detecting(),  # debug=anomaly
    ):
        try:
            for epoch in range(run.state.epoch + 1, last_epoch + 1):
                epoch_start(run.hooks, epoch)
                run.console.epoch_start(epoch)
                train_stats = train_epoch(run, stop)
                if train_stats is None:
                    status = st.INTERRUPTED
                    break
                stopped = end_epoch(run, epoch, train_stats)
                if stopped:
                    status = stopped
                    break
                if dist.agree(stop.requested, run.device):
                    status = st.INTERRUPTED
                    break
        except Diverged as exc:
            status, error = st.DIVERGED, str(exc)
            run.tracker.text(
                "diverged",
                f"Run stopped: {exc}. The last good checkpoint is kept.",
                run.state.global_step,
            )
            run.console.print(f"[red]diverged:[/] {exc}")
    return finish(run, status, error, t_start, choices)


def greet(run: Run, resume: bool) -> None:
    """A new run: its config, model and data in TensorBoard, and an epoch-0 checkpoint (an
    interrupted first epoch still leaves a loadable one). A resumed run: where it stands."""
    state, cfg = run.state, run.cfg
    if not resume:
        log_start(run.tracker, run.console, run.model, run.data, run.example, cfg)
        log_conv_layer(run.tracker, run.model, run.example, 0)  # the filters at init
    if run.dist.is_main and run.card is not None:  # model.json: an interrupted run has it too
        card.write(run.run_dir, run.card)
    if not resume:
        checkpoint.save_run(run, names.LAST)
        return
    run.console.print(f"resuming from epoch {state.epoch} ({run.ckpt_dir / names.LAST})")
    if run.stopper.fired:
        run.console.print(
            f"[cyan]note:[/] early stopping fired at epoch {run.stopper.fired_epoch}: nothing "
            "is left to train (early_stopping.enabled=false trains on)"
        )
    elif state.epoch >= cfg.epochs:
        run.console.print(
            f"[cyan]note:[/] the run is already at epoch {state.epoch} of epochs="
            f"{cfg.epochs}: nothing is left to train. To go on: `dlx train --resume "
            f"{run.run_dir} epochs={2 * state.epoch}`"
        )


SUSTAINED = 3  # read-outs in a row past the limit that make a finite loss "diverged"


def check_divergence(value: float, state: RunState, limit: float) -> None:
    """Stop a run whose loss ran away: NaN/Inf at once; a finite loss past `limit` x the first
    loss at SUSTAINED read-outs in a row (a spike the optimizer comes back from, as Adam does
    in its first steps at a large lr, is not divergence), or past `limit`**2 x at once."""
    if not math.isfinite(value):
        raise Diverged(f"the training loss became {value} at step {state.global_step}")
    first = state.initial_loss
    if first is None:
        return
    ratio = value / max(first, 1e-12)
    state.above = state.above + 1 if ratio > limit else 0
    huge = ratio / limit > limit  # past limit**2 (written so that a huge limit cannot overflow)
    if state.above >= SUSTAINED or huge:
        held = "" if huge else f" at {state.above} read-outs in a row"
        raise Diverged(
            f"the training loss reached {value:.4g} at step {state.global_step}, more than "
            f"divergence_factor={limit:g} x the first loss ({first:.4g}){held}"
        )


def train_epoch(run: Run, stop: StopRequested) -> dict[str, float] | None:
    """One pass over the training batches; its mean loss (and accuracy), or None when a
    Ctrl-C asked the run to stop."""
    # locals: the loop body runs thousands of times an epoch
    s, state, dist, device, console = run.step, run.state, run.dist, run.device, run.console
    mix, anomaly = run.knobs.mix, run.knobs.anomaly
    classify = run.task == "classification"
    limit = float(run.cfg.divergence_factor)
    # the bar's loss and the divergence check read the device every `every` steps; a short
    # epoch (digits: 20 steps) still gets a few readings
    every = max(1, min(int(run.cfg.log.every_n_steps), len(run.train_loader) // 4))
    run.net.train()
    # running sums stay on the device: adding to them does not wait for the step to finish
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    worst = torch.zeros((), device=device)
    seen = 0
    t0 = time.perf_counter()
    for i, (xb, yb) in enumerate(run.train_loader, start=1):
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        labels = yb
        if mix is not None:  # MixUp/CutMix: soft targets; the dominant label counts as right
            xb, yb = mix(xb, yb)
            labels = yb.argmax(1)
        state.global_step += 1  # the step being taken: the gradient monitor logs under it
        try:
            out, data_loss = train_step(s, xb, yb)
        except RuntimeError as exc:  # debug=anomaly: a NaN in backward, named
            found = anomaly.message(exc, state.global_step) if anomaly else None
            if found is None:
                raise
            raise Diverged(found) from None
        d = dist.mean(data_loss.detach().float())  # the global batch's loss, on every rank
        loss_sum += d * len(yb)
        worst = torch.maximum(worst, d)  # NaN propagates: caught at the next check
        seen += len(yb)
        if classify:
            correct += (out.argmax(1) == labels).sum()
        if state.initial_loss is None:
            state.initial_loss = d.item()  # one sync, once: the reference for divergence
            check_divergence(state.initial_loss, state, limit)
        console.tick()  # the bar's step count: Python only, no device sync
        if i % every == 0:
            # a host sync every `every` steps, not every step: the device runs ahead meanwhile
            check_divergence(worst.item(), state, limit)
            worst.zero_()  # the next read-out judges its own steps
            console.show(loss_sum.item() / seen, correct.item() / seen if classify else None)
        # under DDP asking the other ranks costs an all-reduce: only at the read-outs
        if (dist.world_size == 1 or i % every == 0) and dist.agree(stop.requested, device):
            return None
    if len(run.train_loader) % every:  # the steps after the last read-out
        check_divergence(worst.item(), state, limit)
    # that .item() waited for the device: the clock now measures the epoch's real work
    run.knobs.throughput.append(seen * dist.world_size / max(time.perf_counter() - t0, 1e-9))
    stats = {"loss": loss_sum.item() / max(seen, 1)}
    if classify:
        stats["acc"] = dist.mean(correct.float() / max(seen, 1)).item()
    return stats


def end_epoch(run: Run, epoch: int, train_stats: dict[str, float]) -> str | None:
    """Validate, step an epoch-wise scheduler, keep the best, save, log, and ask the hooks;
    returns the status that stops the run (None: train on)."""
    cfg, state, stopper, tracker, knobs = run.cfg, run.state, run.stopper, run.tracker, run.knobs
    if knobs.profiler is not None:  # debug=profiler: the first epoch's steps at most
        knobs.profiler.close()
    val_stats = evaluate(
        run.eval_model, run.val_loader, run.loss_fn, run.task, run.device, cfg.precision
    )
    if not math.isfinite(val_stats["loss"]):  # weights the last steps made NaN/Inf: not saved
        raise Diverged(f"the validation loss became {val_stats['loss']} after epoch {epoch}")
    lr = head_lr(run.optimizer)  # the lr this epoch trained with, before the scheduler moves it
    run.schedule.after_epoch(epoch, val_stats["loss"])  # epoch-wise, once warmup is over
    state.epoch = epoch
    state.history.append({"epoch": epoch, "train": train_stats, "val": val_stats, "lr": lr})
    value = val_stats[stopper.monitor.split("/", 1)[1]]
    best = stopper.update(epoch, value)
    if best:
        run.best_weights = copy.deepcopy(run.eval_model.state_dict())
        checkpoint.save_run(run, names.BEST)
    if not state.above:  # a loss past the limit now may be diverging: last.pt stays the good one
        checkpoint.save_run(run, names.LAST)
    tracker.scalars(
        {"loss/train": train_stats["loss"], "loss/val": val_stats["loss"], "lr": lr}, epoch
    )
    if run.task == "classification":
        tracker.scalars({"acc/train": train_stats["acc"], "acc/val": val_stats["acc"]}, epoch)
    tracker.scalars({"perf/samples_per_s": knobs.throughput[-1]}, epoch)
    if knobs.clip is not None:  # the gradient norm before clipping (one host sync per epoch)
        tracker.scalars(knobs.clip.epoch_stats(), epoch)
    if cfg.log.get("histograms"):
        for name, p in run.model.named_parameters():
            tracker.histogram(f"weights/{name}", p.detach().cpu(), epoch)
            if p.grad is not None:
                tracker.histogram(f"grads/{name}", p.grad.detach().cpu(), epoch)
    run.console.epoch_end(epoch, cfg.epochs, train_stats, val_stats, lr, best)
    end = EpochEnd(
        epoch, cfg.epochs, train_stats, val_stats, stopper.monitor, value, run.run_dir, cfg
    )
    status = epoch_end(run.hooks, end)
    if status and status != st.STOPPED_EARLY:  # early stopping says why itself
        run.console.print(f"[cyan]Stopped at epoch {epoch}: {status}.[/]")
    return status


def read_config(run_dir: str | Path) -> DictConfig:
    """A finished run's own composed config (what `dlx eval` and `--resume` rebuild from)."""
    path = names.config(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir} is not a dlx run folder (no .hydra/config.yaml).")
    return OmegaConf.load(path)


__all__ = [
    "Built",
    "Dist",
    "Run",
    "build",
    "evaluate",
    "fit",
    "flat_hparams",
    "predict",
    "read_config",
    "to_plain",
]
