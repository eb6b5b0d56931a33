"""`dlx lr-find`: the learning-rate range test (Leslie Smith; the lecture's "choosing lr").

Train for a few hundred steps while the learning rate grows exponentially from tiny to
huge, and watch the loss: flat (lr too small), falling fast (good), exploding (too big).
The test stops once the loss passes `stop_factor` x its best, puts the model and optimizer
back as they were, and suggests the lr where the loss fell fastest.

    dlx lr-find                                   # the default model/data/optimizer
    dlx lr-find model=mlp opt=sgd lr_find.steps=300 lr_find.end_lr=1

`lr_find.*` keys set the test itself; every other override is a normal config override.
The curve goes to TensorBoard in its own folder, outputs/lr_find/DATE/TIME (or hydra.run.dir=DIR).
"""

from __future__ import annotations

import copy
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from dlx.errors import UserError

# lr_find.KEY: (default, type, check, what is allowed)
SETTINGS: dict[str, tuple[Any, type, Any, str]] = {
    "start_lr": (1e-7, float, lambda v: v > 0, "a number > 0"),
    "end_lr": (10.0, float, lambda v: v > 0, "a number > start_lr"),
    "steps": (200, int, lambda v: v >= 10, "an integer >= 10"),
    "stop_factor": (4.0, float, lambda v: v > 1, "a number > 1 (stop when loss > factor x best)"),
    "smooth": (0.98, float, lambda v: 0 <= v < 1, "a number in [0, 1) (EMA of the loss)"),
}


def split_overrides(overrides: list[str]) -> tuple[dict[str, Any], list[str], str | None]:
    """(lr_find settings, config overrides, hydra.run.dir if given)."""
    settings = {k: default for k, (default, *_rest) in SETTINGS.items()}
    rest: list[str] = []
    out_dir = None
    for o in overrides:
        key, _, value = o.partition("=")
        if key.startswith("hydra.run.dir"):
            out_dir = value
        elif key.lstrip("+").startswith("lr_find."):
            name = key.lstrip("+").split(".", 1)[1]
            if name not in SETTINGS:
                raise UserError(
                    f"Unknown key `lr_find.{name}`. Allowed: "
                    + ", ".join(f"lr_find.{k}" for k in SETTINGS)
                    + ".",
                    key=f"lr_find.{name}",
                )
            _, kind, check, allowed = SETTINGS[name]
            try:
                parsed = (
                    kind(float(value)) if kind is int and float(value).is_integer() else kind(value)
                )
                ok = check(parsed)
            except ValueError:
                ok = False
            if not ok:
                raise UserError(
                    f"Invalid value for `lr_find.{name}`: {value!r}. Allowed: {allowed}.",
                    key=f"lr_find.{name}",
                )
            settings[name] = parsed
        else:
            rest.append(o)
    if settings["end_lr"] <= settings["start_lr"]:
        raise UserError(
            f"`lr_find.end_lr` ({settings['end_lr']:g}) must be larger than "
            f"`lr_find.start_lr` ({settings['start_lr']:g}).",
            key="lr_find.end_lr",
        )
    return settings, rest, out_dir


def range_test(
    model,
    optimizer,
    loader,
    loss_fn,
    device,
    *,
    start_lr: float,
    end_lr: float,
    steps: int,
    stop_factor: float = 4.0,
    smooth: float = 0.98,
    base_lr: float | None = None,
    l1: float = 0.0,
    precision: str = "fp32",
    channels_last: bool = False,
) -> dict[str, Any]:
    """Exponential lr ramp; returns lrs and (smoothed) losses. Model and optimizer are restored.
    Each step is training's own `train_step`: what the test measures is what `fit` would do."""
    from dlx.training.device import grad_scaler
    from dlx.training.step import Step, train_step

    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(optimizer.state_dict())
    was_training = model.training
    # Groups keep their ratio to the base lr (a backbone at lr * backbone_lr_mult stays that way).
    base = base_lr or optimizer.param_groups[-1]["lr"]
    ratios = [g["lr"] / base for g in optimizer.param_groups]
    step = Step(
        model,
        model,
        loss_fn,
        optimizer,
        device,
        grad_scaler(device, precision),
        precision,
        channels_last,
        l1,
    )
    gamma = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs, losses, raw = [], [], []
    avg, best, reason = 0.0, math.inf, "reached lr_find.end_lr"
    batches = iter(loader)
    model.train()
    try:
        for i in range(steps):
            lr = start_lr * gamma**i
            for g, r in zip(optimizer.param_groups, ratios, strict=True):
                g["lr"] = lr * r
            try:
                xb, yb = next(batches)
            except StopIteration:  # a small dataset: go round again
                batches = iter(loader)
                xb, yb = next(batches)
            _, data_loss = train_step(step, xb.to(device), yb.to(device))
            value = data_loss.item()  # a sync per step: the stop rule needs every loss
            if not math.isfinite(value):
                reason = f"the loss became {value} at lr {lr:.3g}"
                break
            avg = smooth * avg + (1 - smooth) * value
            smoothed = avg / (1 - smooth ** (i + 1))  # bias correction of the running average
            lrs.append(lr)
            losses.append(smoothed)
            raw.append(value)
            best = min(best, smoothed)
            if i > 0 and smoothed > stop_factor * best:
                reason = f"the loss passed {stop_factor:g} x its best at lr {lr:.3g}"
                break
    finally:
        model.load_state_dict(saved_model)  # the test must not leave the model half-trained
        optimizer.load_state_dict(saved_opt)
        for g, r in zip(optimizer.param_groups, ratios, strict=True):
            g["lr"] = base * r
        model.train(was_training)
    return {"lrs": lrs, "losses": losses, "raw_losses": raw, "stopped": reason}


def _fall_start(loss, i_min: int) -> int:
    """Where the loss starts to fall for real: the first point a tenth of the way from its
    starting level down to its minimum. Before it the curve is flat, and its wiggles (batch to
    batch noise, a regression's MSE above all) are no descent: a "steepest" point there
    suggested 1.7e-07 on the lecture's function, where nothing moves."""
    import numpy as np

    skip = max(1, len(loss) // 20)  # the first points are dominated by the running average's start
    start = float(np.median(loss[: max(3, len(loss) // 10)]))
    drop = start - float(loss[i_min])
    if drop <= 0:
        return skip
    below = np.nonzero(loss[: i_min + 1] < start - 0.1 * drop)[0]
    lo = int(below[0]) - 1 if len(below) else skip
    return max(skip, min(lo, i_min - 3))  # a cliff: the last points before the minimum


def suggest(lrs: list[float], losses: list[float]) -> dict[str, float | None]:
    """The lr where the smoothed loss falls fastest (per log-lr) before its minimum, but at most
    the minimum's lr / 10 (the classic rule of thumb, also the fallback on short curves)."""
    import numpy as np

    if len(lrs) < 3:
        return {"suggested": None, "steepest": None, "min_loss_lr": None, "min_loss_lr_div10": None}
    lr, loss = np.asarray(lrs), np.asarray(losses)
    i_min = int(np.argmin(loss))
    min_lr = float(lr[i_min])
    steepest = None
    lo = _fall_start(loss, i_min)
    if i_min - lo >= 3:
        grad = np.gradient(loss[lo : i_min + 1], np.log(lr[lo : i_min + 1]))
        steepest = float(lr[lo + int(np.argmin(grad))])
    # A curve that falls off a cliff has its steepest point at the minimum itself: the edge of
    # divergence (SGD on digits: a suggestion of 1.4 that never trains). Never suggest closer
    # than 10x below where the loss bottoms out.
    # Nor more than 100x below it: a curve that falls slowly over many decades (a regression's
    # MSE under Adam) is steepest where training had barely begun, not where the lr works.
    suggested = min_lr / 10
    if steepest is not None and min_lr / 100 <= steepest < suggested:
        suggested = steepest
    return {
        "suggested": suggested,
        "steepest": steepest,
        "min_loss_lr": min_lr,
        "min_loss_lr_div10": min_lr / 10,
    }


def _out_dir(explicit: str | None, name: Any) -> Path:
    if explicit:
        path = Path(explicit)
        path.mkdir(parents=True, exist_ok=True)
        return path
    from dlx.config.compose import _suffix

    now = datetime.now()
    base = (
        Path("outputs")
        / "lr_find"
        / now.strftime("%Y-%m-%d")
        / (now.strftime("%H-%M-%S") + _suffix(name))
    )
    base.parent.mkdir(parents=True, exist_ok=True)
    path, n = base, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def run_lr_find(overrides: list[str]) -> dict[str, Any]:
    """`dlx lr-find OVERRIDES`: run the range test on the configured model and data."""
    import torch

    from dlx.data.augment import build_batch_augment
    from dlx.data.loader import make_loader
    from dlx.launch.preflight import preflight
    from dlx.tracking.console import console
    from dlx.training.loop import build
    from dlx.training.optim import build_optimizer

    settings, rest, explicit_dir = split_overrides(list(overrides))
    cfg = preflight(rest)
    b = build(cfg)  # the training code path: same data, model, loss
    optimizer = build_optimizer(cfg.opt, cfg.reg, b.model)
    augment = build_batch_augment(cfg.get("aug"), b.data, b.device)
    loader = make_loader(
        b.data.train,
        cfg.batch_size,
        True,
        b.device,
        torch.Generator().manual_seed(cfg.seed),
        augment,
    )
    out = _out_dir(explicit_dir, cfg.get("name"))
    console.print(
        f"lr range test: {settings['steps']} steps, lr {settings['start_lr']:.1e} -> "
        f"{settings['end_lr']:.1e}, batch {cfg.batch_size}, "
        f"{type(b.model).__name__} / {type(optimizer).__name__} on {b.data.name}"
    )
    curve = range_test(
        b.model,
        optimizer,
        loader,
        b.loss_fn,
        b.device,
        start_lr=settings["start_lr"],
        end_lr=settings["end_lr"],
        steps=settings["steps"],
        stop_factor=settings["stop_factor"],
        smooth=settings["smooth"],
        base_lr=float(cfg.opt.lr),
        l1=float(cfg.reg.l1),
        precision=cfg.precision,
        channels_last=bool(cfg.channels_last),
    )
    tips = suggest(curve["lrs"], curve["losses"])
    result = {
        "settings": settings,
        "overrides": rest,
        **tips,
        "stopped": curve["stopped"],
        "steps_run": len(curve["lrs"]),
        "lrs": curve["lrs"],
        "losses": curve["losses"],
    }
    line = _record(out, cfg, curve, result)
    _say(out, curve, tips, rest, line)
    return result


def _record(out: Path, cfg: Any, curve: dict[str, Any], result: dict[str, Any]) -> str:
    """The curve in TensorBoard, lr_find.json and config.yaml in OUT; returns the one-line
    suggestion."""
    from omegaconf import OmegaConf

    from dlx.record.atomic import write_json, write_text
    from dlx.record.names import CONFIG, LR_FIND
    from dlx.tracking.figures import curve_figure
    from dlx.tracking.tensorboard import Tracker

    tips = result
    tracker = Tracker(out)
    for i, (lr, loss, raw) in enumerate(
        zip(curve["lrs"], curve["losses"], curve["raw_losses"], strict=True)
    ):
        tracker.scalars({"lr_find/loss": loss, "lr_find/raw_loss": raw, "lr_find/lr": lr}, i)
    if curve["lrs"]:
        fig = curve_figure(
            curve["lrs"],
            curve["losses"],
            "learning rate",
            "training loss (smoothed)",
            logx=True,
            mark_x=tips["suggested"],
        )
        tracker.figure("lr_find", fig, png="lr_find.png")
    line = (
        f"suggested opt.lr = {tips['suggested']:.3g}"
        if tips["suggested"]
        else "no suggestion: the loss diverged within the first steps (lower lr_find.start_lr)"
    )
    tracker.text("lr_find/suggestion", f"{line}. Stopped: {curve['stopped']}.")
    tracker.close()
    write_json(out / LR_FIND, result)
    write_text(out / CONFIG, OmegaConf.to_yaml(cfg))
    return line


def _say(out: Path, curve: dict[str, Any], tips: dict[str, Any], rest: list[str], line: str):
    """What the range test found, and the `dlx train` line to try."""
    from dlx.tracking.console import console

    console.print(f"ran {len(curve['lrs'])} steps; stopped: {curve['stopped']}")
    if tips["suggested"]:
        how = "min-loss lr / 10"
        if tips["steepest"] == tips["suggested"]:
            how = "steepest descent of the loss"
        elif tips["steepest"] is not None:
            where = "close to" if tips["steepest"] > tips["suggested"] else "far below"
            how += f"; the steepest descent, {tips['steepest']:.3g}, is too {where} the minimum"
        console.print(
            f"suggested [bold]opt.lr={tips['suggested']:.3g}[/] ({how}); the loss was lowest at "
            f"lr {tips['min_loss_lr']:.3g} (/10 = {tips['min_loss_lr_div10']:.3g})"
        )
        lr_override = f"opt.lr={tips['suggested']:.3g}"
        console.print(f"try: dlx train {' '.join([*rest, lr_override])}", soft_wrap=True)
    else:
        console.print(f"[yellow]{line}[/]")
    console.print(f"curve: {out}  (dlx board {out})", soft_wrap=True)
