"""The training loop: forward, loss, backward, step; evaluate; keep the best; stop early.

`fit(cfg, run_dir)` is the whole run. Everything it needs is built from the config
(data, model, optimizer, scheduler, loss); everything it learns goes to the tracker
(TensorBoard), the console, the checkpoints and `metrics.json`.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from dlx.config import to_plain, validate
from dlx.data import DataBundle, build_data
from dlx.data.augment import build_batch_augment
from dlx.data.loader import make_loader
from dlx.errors import UserError
from dlx.models import build_model, count_parameters, min_input_size
from dlx.runs import flat_config
from dlx.tracking.console import RunConsole
from dlx.tracking.diagnostics import GradientMonitor, diagnose, diagnosis_markdown
from dlx.tracking.tensorboard import Tracker, run_hparams
from dlx.tracking.visuals import log_conv_layer, log_start
from dlx.training import checkpoint
from dlx.training.device import (
    autocast,
    check_speed_options,
    grad_scaler,
    resolve_device,
    speed_notes,
    tune_backends,
)
from dlx.training.early_stopping import EarlyStopping
from dlx.training.hooks import EpochEnd, hooks_for
from dlx.training.optim import (
    build_loss,
    build_optimizer,
    build_scheduler,
    head_lr,
    l1_penalty,
    unfreeze,
)
from dlx.training.signals import StopRequested


@dataclass
class Dist:
    """Where this process sits in a data-parallel job (rank 0 alone writes)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of `t` over the ranks (the same value on every rank)."""
        if self.world_size == 1:
            return t
        t = t.detach().clone()
        torch.distributed.all_reduce(t)
        return t / self.world_size

    def agree(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is true on any one: the ranks stop together."""
        if self.world_size == 1:
            return flag
        t = torch.tensor(float(flag), device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())


@dataclass
class RunState:
    epoch: int = 0  # completed epochs
    global_step: int = 0
    initial_loss: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class Diverged(Exception):
    pass


@dataclass
class Built:
    """Everything a run is made of; `dlx eval` and `dlx lr-find` build the same way."""

    cfg: DictConfig
    device: torch.device
    data: DataBundle
    model: torch.nn.Module
    loss_fn: torch.nn.Module


def build(cfg: DictConfig) -> Built:
    """Validate the config, then build device, data, model and loss from it (one code path)."""
    validate(cfg)
    device = resolve_device(cfg.device.type)
    check_speed_options(cfg, device)
    tune_backends(device)
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    torch.manual_seed(cfg.seed)
    data = build_data(cfg.data, cfg.seed, min_input_size(cfg.model))
    loss_fn = build_loss(cfg.loss, data.task)
    torch.manual_seed(cfg.seed)  # the init does not depend on how the data was built
    try:
        model = build_model(cfg.model, cfg.reg, data).to(device)
    except Exception as exc:
        from hydra.errors import InstantiationException

        if not isinstance(exc, InstantiationException) or data.is_image:
            raise
        raise UserError(  # e.g. model=cnn on data=function: a conv net needs images
            f"`model` {cfg.model._target_} cannot be built for data={data.name}, whose inputs "
            f"are not images (shape {tuple(data.in_shape)}); use model=mlp or model=shallow.",
            key="model",
        ) from None
    if cfg.channels_last and data.is_image:
        model = model.to(memory_format=torch.channels_last)
    return Built(cfg, device, data, model, loss_fn)


@torch.no_grad()
def evaluate(
    model, loader, loss_fn, task: str, device, precision: str = "fp32"
) -> dict[str, float]:
    """Mean loss (and accuracy) over a split, weights untouched."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        with autocast(device, precision):
            out = model(xb)
            loss = loss_fn(out, yb)
        loss_sum += loss.float() * len(yb)
        if task == "classification":
            correct += (out.argmax(1) == yb).sum()
        n += len(yb)
    model.train(was_training)
    result = {"loss": (loss_sum / max(n, 1)).item()}
    if task == "classification":
        result["acc"] = correct.item() / max(n, 1)
    else:
        result["mse"] = result["loss"]
    return result


def predict(model, x: torch.Tensor, device) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x.to(device)).float().cpu()


def fit(
    cfg: DictConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    dist: Dist | None = None,
    choices: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Train one run into `run_dir` and return its metrics (also written to metrics.json)."""
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    dist = dist or Dist()
    main = dist.is_main
    b = build(cfg)
    device, data, model, loss_fn = b.device, b.data, b.model, b.loss_fn
    task = data.task
    console = RunConsole(enabled=main)
    for note in speed_notes(cfg, device, data.is_image):
        console.print(f"[cyan]note:[/] {note}")

    optimizer = build_optimizer(cfg.opt, cfg.reg, model)
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    augment = build_batch_augment(cfg.get("aug"), data, device)
    train_loader = make_loader(
        data.train,
        cfg.batch_size,
        True,
        device,
        shuffle_gen,
        augment,
        rank=dist.rank,
        world_size=dist.world_size,
    )
    val_loader = make_loader(data.val, max(cfg.batch_size, 256), False, device)
    test_loader = make_loader(data.test, max(cfg.batch_size, 256), False, device)
    scheduler, sched_when = build_scheduler(cfg.sched, optimizer, cfg.epochs, len(train_loader))
    # model.unfreeze_at_epoch=N: epochs 1..N train what `model.freeze` leaves, N+1.. everything.
    unfreeze_at = cfg.model.get("unfreeze_at_epoch")
    backbone_mult = float(cfg.opt.get("backbone_lr_mult", 1.0))
    if unfreeze_at and dist.world_size > 1:
        raise UserError(
            "`model.unfreeze_at_epoch` needs trainer.devices=1 (DDP fixes the "
            "trainable parameters when it starts).",
            key="model.unfreeze_at_epoch",
        )
    scaler = grad_scaler(device, cfg.precision)
    stopper = EarlyStopping.from_cfg(cfg.early_stopping, task)
    ckpt_dir = run_dir / "checkpoints"
    state = RunState()
    best_weights = None

    if resume:
        # On the CPU: RNG states must be CPU tensors; weights and optimizer state are copied
        # onto the model's device by load_state_dict.
        saved = checkpoint.load(ckpt_dir / "last.pt", map_location="cpu")
        checkpoint.check_resumable(saved, str(cfg.model._target_), ckpt_dir / "last.pt")
        checkpoint.load_model_state(model, saved["model"], ckpt_dir / "last.pt")
        if unfreeze_at and saved["run"]["epoch"] > unfreeze_at:  # the saved optimizer has them
            unfreeze(model, optimizer, scheduler, backbone_mult)
        checkpoint.load_optimizer_state(optimizer, saved["optimizer"], ckpt_dir / "last.pt")
        if scheduler is not None and saved.get("scheduler"):
            scheduler.load_state_dict(saved["scheduler"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        stopper.load_state_dict(saved["early_stopping"])
        state = RunState(**saved["run"])
        shuffle_gen.set_state(saved["rng"]["loader"])
        checkpoint.set_rng_state(saved["rng"])
        if (ckpt_dir / "best.pt").is_file():
            best_weights = checkpoint.load(ckpt_dir / "best.pt", map_location="cpu")["model"]

    def snapshot() -> dict[str, Any]:
        rng = checkpoint.rng_state()
        rng["loader"] = shuffle_gen.get_state()
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "early_stopping": stopper.state_dict(),
            "run": {
                "epoch": state.epoch,
                "global_step": state.global_step,
                "initial_loss": state.initial_loss,
                "history": state.history,
            },
            "rng": rng,
            "model_target": str(cfg.model._target_),
        }

    def save(name: str) -> None:
        if main:
            checkpoint.save(ckpt_dir / name, snapshot())

    net = model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile:
        # static shapes: the full batches and the last one get a graph each (with the default,
        # the last batch's recompile turns the full batches' graph dynamic, and slower)
        net = torch.compile(net, dynamic=False)

    # A resumed run hides what the interrupted one logged after its last checkpoint.
    tracker = Tracker(run_dir, enabled=main, purge_step=state.global_step + 1 if resume else None)
    example = next(iter(val_loader))[0].to(device)
    if not resume:
        log_start(tracker, console, model, data, example, cfg)
        log_conv_layer(tracker, model, example, 0)  # the filters at init, to compare with the end
        save("last.pt")  # epoch 0: an interrupted first epoch still leaves a loadable checkpoint
    else:
        console.print(f"resuming from epoch {state.epoch} ({ckpt_dir / 'last.pt'})")
        if stopper.fired:
            console.print(
                f"[cyan]note:[/] early stopping fired at epoch {stopper.fired_epoch}: nothing "
                "is left to train (early_stopping.enabled=false trains on)"
            )
        elif state.epoch >= cfg.epochs:
            console.print(
                f"[cyan]note:[/] the run is already at epoch {state.epoch} of epochs="
                f"{cfg.epochs}: nothing is left to train. To go on: `dlx train --resume "
                f"{run_dir} epochs={2 * state.epoch}`"
            )
    grads = GradientMonitor(model, tracker, console, cfg.log.grad_norm_every, scaler=scaler)
    l1 = float(cfg.reg.l1)
    # the bar's loss and the divergence check read the device every `every` steps; a short
    # epoch (digits: 20 steps) still gets a few readings
    every = max(1, min(int(cfg.log.every_n_steps), len(train_loader) // 4))
    # read once: an OmegaConf lookup costs ~10 us, and these two are needed at every step
    channels_last, precision = bool(cfg.channels_last), str(cfg.precision)
    limit = float(cfg.divergence_factor)
    status = "completed"
    error: str | None = None
    last_epoch = cfg.epochs
    if stopper.fired:  # resumed after early stopping fired: nothing is left to train
        status, last_epoch = "stopped_early", state.epoch

    def check_divergence(value: float) -> None:
        if not math.isfinite(value):
            raise Diverged(f"the training loss became {value} at step {state.global_step}")
        if state.initial_loss is not None and value > limit * max(state.initial_loss, 1e-12):
            raise Diverged(
                f"the training loss reached {value:.4g} at step {state.global_step}, more than "
                f"divergence_factor={limit:g} x the first loss ({state.initial_loss:.4g})"
            )

    def train_one_epoch(epoch: int, stop: StopRequested) -> dict[str, float] | None:
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        worst = torch.zeros((), device=device)
        seen = 0
        for i, (xb, yb) in enumerate(train_loader, start=1):
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            if channels_last and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            # forward: prediction and loss (plus the L1 penalty on the weights)
            with autocast(device, precision):
                out = net(xb)
                data_loss = loss_fn(out, yb)
            loss = data_loss + l1 * l1_penalty(model) if l1 else data_loss
            # backward: gradients of the loss w.r.t. every trainable parameter
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
            else:
                loss.backward()
            state.global_step += 1
            grads.after_backward(state.global_step)
            # step: theta <- theta - lr * update(grad)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if sched_when == "batch":
                scheduler.step()
            d = dist.mean(data_loss.detach().float())  # the global batch's loss, on every rank
            loss_sum += d * len(yb)
            worst = torch.maximum(worst, d)  # NaN propagates: caught at the next check
            seen += len(yb)
            if task == "classification":
                correct += (out.argmax(1) == yb).sum()
            if state.initial_loss is None:
                state.initial_loss = d.item()
                check_divergence(state.initial_loss)
            console.tick()  # the bar's step count: Python only, no device sync
            if i % every == 0:
                check_divergence(worst.item())
                console.show(
                    loss_sum.item() / seen,
                    correct.item() / seen if task == "classification" else None,
                )
            if (dist.world_size == 1 or i % every == 0) and dist.agree(stop.requested, device):
                return None
        check_divergence(worst.item())
        stats = {"loss": loss_sum.item() / max(seen, 1)}
        if task == "classification":
            stats["acc"] = dist.mean(correct.float() / max(seen, 1)).item()
        return stats

    monitor_key = cfg.early_stopping.monitor.split("/", 1)[1]
    epoch_hooks = hooks_for(cfg)  # e.g. the sweep's pruning reporter (dlx.training.hooks)
    with StopRequested() as stop, console.live(cfg.epochs, len(train_loader)):
        try:
            for epoch in range(state.epoch + 1, last_epoch + 1):
                if unfreeze_at and epoch == unfreeze_at + 1:
                    n = unfreeze(model, optimizer, scheduler, backbone_mult)
                    if n:
                        grads = GradientMonitor(
                            model, tracker, console, cfg.log.grad_norm_every, scaler=scaler
                        )
                        msg = (
                            f"Unfrozen at epoch {epoch}: {n} more tensors train from now on, "
                            f"at lr x {backbone_mult:g} (opt.backbone_lr_mult)."
                        )
                        tracker.text("model/unfreeze", msg, epoch)
                        console.print(f"[cyan]{msg}[/]")
                console.epoch_start(epoch)
                train_stats = train_one_epoch(epoch, stop)
                if train_stats is None:
                    status = "interrupted"
                    break
                val_stats = evaluate(model, val_loader, loss_fn, task, device, cfg.precision)
                lr = head_lr(optimizer)
                if sched_when == "epoch":
                    scheduler.step()
                elif sched_when == "plateau":
                    scheduler.step(val_stats["loss"])
                state.epoch = epoch
                state.history.append(
                    {"epoch": epoch, "train": train_stats, "val": val_stats, "lr": lr}
                )
                best = stopper.update(epoch, val_stats[monitor_key])
                if best:
                    best_weights = copy.deepcopy(model.state_dict())
                    save("best.pt")
                save("last.pt")
                tracker.scalars(
                    {"loss/train": train_stats["loss"], "loss/val": val_stats["loss"], "lr": lr},
                    epoch,
                )
                if task == "classification":
                    tracker.scalars(
                        {"acc/train": train_stats["acc"], "acc/val": val_stats["acc"]}, epoch
                    )
                if cfg.log.get("histograms"):
                    for name, p in model.named_parameters():
                        tracker.histogram(f"weights/{name}", p.detach().cpu(), epoch)
                        if p.grad is not None:
                            tracker.histogram(f"grads/{name}", p.grad.detach().cpu(), epoch)
                console.epoch_end(epoch, cfg.epochs, train_stats, val_stats, lr, best)
                end = EpochEnd(
                    epoch,
                    cfg.epochs,
                    train_stats,
                    val_stats,
                    stopper.monitor,
                    val_stats[monitor_key],
                    run_dir,
                    cfg,
                )
                hook_status = next(
                    (s for s in (h.on_epoch_end(end) for h in epoch_hooks) if s), None
                )
                if hook_status and not stopper.fired:
                    status = hook_status
                    console.print(f"[cyan]Stopped at epoch {epoch}: {hook_status}.[/]")
                    break
                if stopper.fired:
                    status = "stopped_early"
                    msg = (
                        f"Early stopping fired at epoch {epoch}: {stopper.monitor} did not "
                        f"improve by more than {stopper.min_delta} for {stopper.patience} epochs. "
                        f"Best epoch {stopper.best_epoch} ({stopper.monitor} = {stopper.best:.4g})."
                    )
                    tracker.text("early_stopping", msg, epoch)
                    tracker.early_stopping(epoch, stopper.best_epoch, stopper.best, stopper.monitor)
                    console.print(f"[cyan]{msg}[/]")
                    break
                if dist.agree(stop.requested, device):
                    status = "interrupted"
                    break
        except Diverged as exc:
            status, error = "diverged", str(exc)
            tracker.text(
                "diverged",
                f"Run stopped: {exc}. The last good checkpoint is kept.",
                state.global_step,
            )
            console.print(f"[red]diverged:[/] {exc}")

    test_stats = None
    test_ckpt = None
    if status in ("completed", "stopped_early", "pruned"):
        if stopper.restore_best and best_weights is not None:
            model.load_state_dict(best_weights)
            test_ckpt = "best"
        else:
            test_ckpt = "last"
        test_stats = evaluate(model, test_loader, loss_fn, task, device, cfg.precision)
        test_stats["checkpoint"] = test_ckpt
        log_conv_layer(tracker, model, example, state.epoch)  # what the filters learned
        if data.true_fn is not None and main:
            from dlx.tracking.figures import fit_figure

            x = torch.linspace(-1, 1, 512).unsqueeze(1)
            xt, yt = data.train.tensors
            fig = fit_figure(
                x.squeeze(1),
                data.true_fn(x).squeeze(1),
                predict(model, x, device).squeeze(1),
                xt.squeeze(1),
                yt.squeeze(1),
            )
            tracker.figure("fit", fig, state.epoch)
    elif status == "interrupted":
        console.print(
            "[yellow]interrupted:[/] the last completed epoch is saved in "
            f"{ckpt_dir / 'last.pt'}; continue with `dlx train --resume {run_dir}`"
        )

    best_hist = next((h for h in state.history if h["epoch"] == stopper.best_epoch), None)
    trainable, frozen = count_parameters(model)
    metrics: dict[str, Any] = {
        "status": status,
        "epochs_run": state.epoch,
        "best_epoch": stopper.best_epoch,
        "monitor": stopper.monitor,
        "best_value": stopper.best if stopper.best_epoch else None,
        "early_stopping": {"fired": stopper.fired, "epoch": stopper.fired_epoch},
        "val": dict(best_hist["val"]) if best_hist else None,
        "test": test_stats,
        "wall_time_s": round(time.perf_counter() - t_start, 3),
        "task": task,
        "data": data.name,
        "device": str(device),
        "parameters": {"trainable": trainable, "frozen": frozen},
        "choices": dict(choices or {}),
        "config": flat_config(cfg),  # what `dlx runs --filter/--sort` and `dlx compare` read
        "error": error,
        "diagnosis": diagnose(
            state.history, task, status, initial_loss=state.initial_loss, error=error, cfg=cfg
        ),
        "history": state.history,
    }
    if main:
        tracker.text("diagnosis", diagnosis_markdown(metrics["diagnosis"]), state.epoch)
        hp, leading = run_hparams(cfg, choices or {}, flat_hparams(cfg))
        final = {"hparam/best_val_loss": best_hist["val"]["loss"] if best_hist else float("nan")}
        if test_stats:
            final["hparam/test_loss"] = test_stats["loss"]
            if "acc" in test_stats:
                final["hparam/test_acc"] = test_stats["acc"]
        tracker.hparams(hp, final, leading)
        write_metrics(run_dir, metrics)
    tracker.close()
    console.summary(metrics, str(run_dir))
    return metrics


def flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The knobs a sweep turns, flattened for the HParams dashboard."""
    keys = [
        "opt.lr",
        "batch_size",
        "epochs",
        "seed",
        "reg.l1",
        "reg.weight_decay",
        "reg.dropout",
        "reg.batchnorm",
        "model.activation",
        "model.init",
        "model.width",
        "model.depth",
    ]
    out: dict[str, Any] = {
        "opt": str(cfg.opt._target_).rsplit(".", 1)[-1],
        "model": str(cfg.model._target_).rsplit(".", 1)[-1],
    }
    for key in keys:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None:
            out[key] = value
    return out


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    payload = json.dumps(metrics, indent=2, default=str).encode()
    checkpoint.atomic_write(run_dir / "metrics.json", lambda f: f.write(payload))


def read_config(run_dir: str | Path) -> DictConfig:
    """A finished run's own composed config (what `dlx eval` and `--resume` rebuild from)."""
    path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a dlx run folder (no .hydra/config.yaml).")
    return OmegaConf.load(path)


__all__ = ["fit", "build", "evaluate", "Dist", "read_config", "to_plain"]
