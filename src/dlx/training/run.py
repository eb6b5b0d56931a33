"""What a run is made of, built from the config: device, data, model, loss (`build`, shared
with `dlx eval` and `dlx lr-find`), then the optimizer, scheduler, loaders, early stopping
and the counters a checkpoint saves (`build_run`), then what needs the restored state: the
DDP / compiled wrapper, TensorBoard and the training step (`begin`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from dlx.config.rules import validate
from dlx.data import DataBundle, build_data, data_seed
from dlx.data.augment import build_batch_augment
from dlx.data.loader import make_loader
from dlx.errors import UserError
from dlx.models import build_model, min_input_size
from dlx.record import names
from dlx.tracking.console import RunConsole
from dlx.tracking.diagnostics import GradientMonitor
from dlx.tracking.tensorboard import Tracker
from dlx.training.builtin_hooks import builtin_hooks
from dlx.training.card import describe
from dlx.training.debug import DebugOptions
from dlx.training.device import (
    autocast,
    check_speed_options,
    grad_scaler,
    resolve_device,
    speed_notes,
    tune_backends,
)
from dlx.training.early_stopping import EarlyStopping
from dlx.training.hooks import EpochHook, hooks_for
from dlx.training.knobs import Knobs, build_knobs, debug_loaders, start_profiler
from dlx.training.optim import build_loss, build_optimizer
from dlx.training.step import Step
from dlx.training.warmup import LRSchedule, build_schedule


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
    above: int = 0  # read-outs in a row with the loss past divergence_factor x the first
    history: list[dict[str, Any]] = field(default_factory=list)


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
    data = build_data(cfg.data, data_seed(cfg), min_input_size(cfg.model), cfg.get("cv"))
    loss_fn = build_loss(cfg.loss, data.task, num_classes=data.num_classes)
    torch.manual_seed(cfg.seed)  # the init does not depend on how the data was built
    try:
        model = build_model(cfg.model, cfg.reg, data, binary=cfg.loss == "bce").to(device)
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
        # sums stay on the device: one sync for the whole split, below
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


@dataclass
class Run:
    """One training run: what it trains, with what, on which batches, and where it stands."""

    cfg: DictConfig
    run_dir: Path
    dist: Dist
    console: RunConsole
    device: torch.device
    data: DataBundle
    model: torch.nn.Module
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sched_when: str | None  # "batch", "epoch", "plateau" or None
    scaler: Any
    stopper: EarlyStopping
    shuffle_gen: torch.Generator  # the training order: saved, so a resume sees the same batches
    train_loader: Any
    val_loader: Any
    test_loader: Any
    state: RunState = field(default_factory=RunState)
    best_weights: dict[str, Any] | None = None
    hooks: list[EpochHook] = field(default_factory=list)
    knobs: Knobs | None = None  # clipping, EMA, MixUp, warmup, debug aids (dlx.training.knobs)
    check: Any = None  # would a suggested command start? (`fit`'s `check`)
    # set by `begin`, once the saved state is back
    net: torch.nn.Module | None = None
    tracker: Tracker | None = None
    grads: GradientMonitor | None = None
    step: Step | None = None
    example: torch.Tensor | None = None  # a validation batch for the figures
    card: dict[str, Any] | None = None  # what inference needs (training/card.py, model.json)

    @property
    def ckpt_dir(self) -> Path:
        return names.checkpoints(self.run_dir)

    @property
    def task(self) -> str:
        return self.data.task

    @property
    def schedule(self) -> LRSchedule:
        return self.knobs.schedule

    @property
    def eval_model(self) -> torch.nn.Module:
        """What validation, test and best.pt use: the weight EMA when on, else the model."""
        return self.knobs.ema.module if self.knobs.ema is not None else self.model

    def watch_gradients(self) -> None:
        """(Re)start the gradient monitor on the parameters that train now."""
        self.grads = GradientMonitor(
            self.model, self.tracker, self.console, self.cfg.log.grad_norm_every, self.scaler
        )


def build_run(cfg: DictConfig, run_dir: Path, dist: Dist, console: RunConsole) -> Run:
    """Model, optimizer, scheduler, loaders and a fresh state: a run at epoch 0."""

    b = build(cfg)
    device, data, model = b.device, b.data, b.model
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
    debug = DebugOptions.from_cfg(cfg)  # the `debug` group: fdr, limit, overfit, profiler, anomaly
    train_loader, val_loader, test_loader = debug_loaders(
        debug, train_loader, val_loader, test_loader
    )
    schedule = build_schedule(cfg.sched, optimizer, cfg.epochs, len(train_loader))  # + warmup
    run = Run(
        cfg,
        run_dir,
        dist,
        console,
        device,
        data,
        model,
        b.loss_fn,
        optimizer,
        schedule.scheduler,
        schedule.when,
        grad_scaler(device, cfg.precision),
        EarlyStopping.from_cfg(cfg.early_stopping, data.task),
        shuffle_gen,
        train_loader,
        val_loader,
        test_loader,
    )
    run.knobs = build_knobs(cfg, data, model, optimizer, schedule, debug)
    run.card = describe(cfg, data)
    # built-in features first (early stopping's status wins), then the registered ones
    run.hooks = [*builtin_hooks(run), *hooks_for(cfg)]
    return run


def begin(run: Run, resume: bool) -> None:
    """What needs the restored state: the forward's wrapper (DDP, compile), TensorBoard (a
    resumed run hides what the interrupted one logged after its last checkpoint), the gradient
    monitor and the training step."""
    cfg, model, device = run.cfg, run.model, run.device
    net = model
    if run.dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile:
        # static shapes: the full batches and the last one get a graph each (with the default,
        # the last batch's recompile turns the full batches' graph dynamic, and slower)
        net = torch.compile(net, dynamic=False)
    run.net = net
    purge = run.state.global_step + 1 if resume else None
    run.tracker = Tracker(run.run_dir, enabled=run.dist.is_main, purge_step=purge)
    run.example = next(iter(run.val_loader))[0].to(device)
    run.watch_gradients()
    if run.dist.is_main and run.state.epoch < cfg.epochs:
        start_profiler(run.knobs, run.run_dir, device, run.console)  # debug=profiler only
    run.step = Step(
        net,
        model,
        run.knobs.train_loss_fn,
        run.optimizer,
        device,
        run.scaler,
        # read once: an OmegaConf lookup costs ~10 us, and these are needed at every step
        str(cfg.precision),
        bool(cfg.channels_last),
        float(cfg.reg.l1),
        int(cfg.get("grad_accum", 1)),  # batch_size stays the effective batch
        # the grad monitor is read through `run`: unfreezing replaces it; then clipping
        on_grads=[
            lambda: run.grads.after_backward(run.state.global_step),
            *run.knobs.on_grads(run.scaler),
        ],
        # warmup or a per-batch scheduler, the EMA, the profiler: only those that are on
        on_update=run.knobs.on_update(model),
    )
