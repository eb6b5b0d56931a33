"""Diagnostics that teach: what the curves mean (the fit verdict) and how the gradients flow.

`diagnose` reads a finished run's train/val curves the way the lecture does (underfitting,
overfitting, good fit, diverged) and names the dlx overrides that address what it sees.
`GradientMonitor` logs per-layer gradient norms during training and warns, once, when they
vanish, explode, or when sigmoid/tanh units saturate (the naive N(0, 1) init).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

# Thresholds of the verdict (the lecture's words made into numbers).
POOR_ACC = 0.9  # train and val accuracy both below this: the model cannot fit the data
POOR_LOSS = 0.1  # regression: best val loss above this x the first loss (R^2 < ~0.9)
GAP_ACC = 0.07  # train acc - val acc above this at the end: it memorizes the training set
RISE = 0.25  # val loss this far (25%) above its best while train loss kept falling
STEEP = 0.02  # train loss still falling by > 2% of its first value per epoch: not done
BOUNCE = 0.02  # an epoch whose train loss rose by > 2% of the first loss: a bounce


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e-3 or abs(v) >= 1e3 else f"{v:.4g}"


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def _sel(cfg: Any, key: str, default: Any = None) -> Any:
    return OmegaConf.select(cfg, key, default=default) if cfg is not None else default


def _curve_numbers(history: list[dict[str, Any]], task: str, first_loss: float) -> dict[str, Any]:
    """The numbers the verdict is read from (also stored, so a user can check them)."""
    train = [h["train"]["loss"] for h in history]
    val = [h["val"]["loss"] for h in history]
    b = min(range(len(val)), key=lambda i: val[i])
    last = len(history) - 1
    # the smaller of the last two epochs' drops: "still falling" must hold for both epochs
    drops = [train[i - 1] - train[i] for i in range(max(1, last - 1), last + 1)]
    slope = min(drops) / first_loss if drops else 0.0
    steps = zip(train, train[1:], strict=False)
    bounces = sum(1 for a, c in steps if c - a > BOUNCE * first_loss and c > 1.1 * a)
    n: dict[str, Any] = {
        "epochs": len(history),
        "train_loss": train[last],
        "val_loss": val[last],
        "best_val_loss": val[b],
        "best_epoch": history[b]["epoch"],
        "train_loss_at_best": train[b],
        "gap": val[last] - train[last],  # the train/val gap at the end of the curves
        "val_rise": (val[last] - val[b]) / max(abs(val[b]), 1e-12),
        "train_slope": slope,  # share of the first loss still lost per epoch at the end
        "bounces": bounces,
        "peak_train_loss": max(train),
        "first_loss": first_loss,
    }
    if task == "classification":
        n["train_acc"] = history[last]["train"]["acc"]
        n["val_acc"] = history[last]["val"]["acc"]
        n["best_val_acc"] = max(h["val"]["acc"] for h in history)
        n["acc_gap"] = n["train_acc"] - n["val_acc"]
    return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in n.items()}


def diagnose(
    history: list[dict[str, Any]],
    task: str,
    status: str,
    *,
    initial_loss: float | None = None,
    error: str | None = None,
    cfg: Any = None,
) -> dict[str, Any]:
    """The lecture's verdict from the train/val curves, with its evidence and knobs.

    Returns {verdict, evidence, try, numbers}: `verdict` is `underfitting` (both curves poor,
    or train loss still falling steeply at the end), `overfitting` (val loss rising while
    train loss falls, or a train/val gap beyond a threshold), `good fit` or `diverged`;
    `evidence` says which numbers led there; `try` lists dlx overrides that address it
    (concrete values when `cfg` is given). `unstable` is set when the train loss bounced
    up or rose above where it started, the signature of a too-large learning rate.
    """
    knobs = _Knobs(cfg, task)
    if status == "diverged":
        why = error or "the loss became NaN/Inf or exploded"
        return {
            "verdict": "diverged",
            "evidence": f"{why}. A learning rate too large for this model is the usual cause.",
            "try": knobs.lower_lr() + ["reg=batchnorm"] + knobs.better_init(),
            "numbers": {"epochs": len(history)},
        }
    if not history:
        return {"verdict": "unknown", "evidence": "no epoch completed", "try": [], "numbers": {}}

    first = history[0]["train"]["loss"]
    if initial_loss and math.isfinite(initial_loss):
        first = initial_loss  # the loss at the very first step: where training started
    first = max(abs(first), 1e-12)
    n = _curve_numbers(history, task, first)
    curves = (
        f"train loss {_fmt(n['train_loss'])}, val loss {_fmt(n['val_loss'])} at epoch {n['epochs']}"
        f" (best val loss {_fmt(n['best_val_loss'])} at epoch {n['best_epoch']})"
    )
    if task == "classification":
        curves += f"; train acc {n['train_acc']:.3f}, val acc {n['val_acc']:.3f}"

    notes = []
    if n["peak_train_loss"] > 1.5 * first:
        notes.append(
            f"the train loss rose to {_fmt(n['peak_train_loss'])} (epoch mean), above its "
            f"{_fmt(first)} at the first step: the learning rate looks too large"
        )
    elif n["bounces"] >= 2:
        notes.append(
            f"the train loss went up in {n['bounces']} of {n['epochs'] - 1} epochs instead of "
            "falling: the learning rate looks too large"
        )
    n["unstable"] = bool(notes)
    lr_first = knobs.lower_lr() if notes else []

    if task == "classification":
        poor = n["train_acc"] < POOR_ACC and n["best_val_acc"] < POOR_ACC
        poor_why = (
            f"train acc {n['train_acc']:.3f} and val acc {n['best_val_acc']:.3f} (best) are both "
            f"below {POOR_ACC}: the model does not even fit its training data"
        )
    else:
        poor = n["best_val_loss"] > POOR_LOSS * first and n["train_loss"] > POOR_LOSS * first
        poor_why = (
            f"train and val loss stay above {POOR_LOSS} x the first loss ({_fmt(first)}): "
            "the model does not even fit its training data"
        )
    rising = (
        n["val_rise"] > RISE
        and n["best_epoch"] <= n["epochs"] - 2
        and n["train_loss"] < n["train_loss_at_best"]
    )
    if task == "classification":
        gapped = n["acc_gap"] > GAP_ACC and n["train_acc"] >= POOR_ACC
        gap_why = (
            f"train acc {n['train_acc']:.3f} vs val acc {n['val_acc']:.3f}: "
            f"a gap of {n['acc_gap']:.3f} (> {GAP_ACC})"
        )
    else:  # val loss a multiple of a train loss that is itself small: it fits the noise
        gapped = n["val_loss"] > 3 * n["train_loss"] and n["gap"] > BOUNCE * first
        gap_why = f"val loss is {n['val_loss'] / max(n['train_loss'], 1e-12):.1f}x the train loss"
    # still learning: train loss falling fast and val loss at its best in the last two epochs
    steep = n["train_slope"] > STEEP and n["best_epoch"] >= n["epochs"] - 1

    stuck = poor and n["epochs"] >= 2 and n["train_loss"] >= 0.97 * first
    if stuck and not notes:  # SGD at lr 1.4 on digits: one jump, then flat at chance
        notes.append(
            f"the train loss never moved from its first value ({_fmt(first)}): a learning rate "
            "far too large (a jump that leaves the network dead, at chance) is the usual cause; "
            "`dlx lr-find` finds one that works"
        )
        lr_first = knobs.lower_lr()
    if poor and notes:  # a too-large lr, not a too-small model: fix the lr first
        verdict, why, notes = "underfitting", notes + [poor_why], []
        knob = lr_first + knobs.longer()
    elif poor:
        knob = knobs.better_init() + knobs.capacity() + knobs.longer()
        verdict, why = "underfitting", [poor_why]
    elif rising or gapped:
        why = []
        if rising:
            fell = f"{_fmt(n['train_loss_at_best'])} -> {_fmt(n['train_loss'])}"
            why.append(
                f"val loss rose {_pct(n['val_rise'])} above its best (epoch {n['best_epoch']}) "
                f"while train loss kept falling ({fell})"
            )
        if gapped:
            why.append(gap_why)
        verdict, knob = "overfitting", knobs.regularize()
    elif steep:
        why = [
            f"train loss was still falling by {_pct(n['train_slope'])} of its first value per "
            "epoch at the end, and val loss with it: training stopped too soon"
        ]
        verdict, knob = "underfitting", knobs.longer() + lr_first + knobs.capacity()[:1]
    else:
        gap = f"train/val acc gap {n['acc_gap']:.3f}, " if task == "classification" else ""
        near = f"within {_pct(n['val_rise'])} of its best" if n["val_rise"] > 0 else "at its best"
        why = [
            f"both curves flattened close together ({gap}val loss {near}): "
            "the model learned what generalizes"
        ]
        verdict, knob = "good fit", lr_first
    evidence = "; ".join(why + notes) + f". ({curves})"
    return {"verdict": verdict, "evidence": evidence, "try": _unique(knob), "numbers": n}


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


class _Knobs:
    """The dlx overrides that address a verdict, with concrete values when the config is known."""

    def __init__(self, cfg: Any, task: str) -> None:
        self.cfg, self.task = cfg, task
        self.model = str(_sel(cfg, "model._target_", "")).rsplit(".", 1)[-1]
        self.data = str(_sel(cfg, "data.name", "") or "")

    def lower_lr(self) -> list[str]:
        lr = _sel(self.cfg, "opt.lr")
        return [f"opt.lr={float(lr) / 10:g}" if lr else "opt.lr=<10x smaller>"]

    def better_init(self) -> list[str]:
        """Only for the naive N(0, 1) init: the lecture's fix is Xavier (sigmoid/tanh) or He."""
        if _sel(self.cfg, "model.init") != "normal":
            return []
        act = _sel(self.cfg, "model.activation")
        return ["model.init=xavier" if act in ("sigmoid", "tanh") else "model.init=he"]

    def longer(self) -> list[str]:
        epochs = _sel(self.cfg, "epochs")
        return [f"epochs={2 * int(epochs)}" if epochs else "epochs=<more>"]

    def capacity(self) -> list[str]:
        out = []
        if _sel(self.cfg, "reg.dropout", 0):  # regularization also limits the fit
            out.append("reg.dropout=0")
        if _sel(self.cfg, "reg.weight_decay", 0):
            out.append("reg.weight_decay=0")
        width, depth = _sel(self.cfg, "model.width"), _sel(self.cfg, "model.depth")
        if width is not None:
            out.append(f"model.width={max(64, 4 * int(width))}")
        if depth is not None and int(depth) < 2:
            out.append("model.depth=2")
        if self.model == "MLP" and self.task == "classification" and self.data != "function":
            out.append("model=cnn")
        if self.cfg is None:
            out.append("model.width=<larger>")
        return out

    def regularize(self) -> list[str]:
        out = []
        dropout = float(_sel(self.cfg, "reg.dropout", 0) or 0)
        wd = float(_sel(self.cfg, "reg.weight_decay", 0) or 0)
        if not dropout and not wd:
            out.append("reg=[l2,dropout]")
        else:
            out.append(f"reg.dropout={min(0.5, max(0.3, dropout + 0.2)):g}")
            out.append(f"reg.weight_decay={max(wd * 10, 5e-4):g}")
        if self.task == "classification" and self.data != "function":
            if self.cfg is None or not _sel(self.cfg, "aug.transforms"):  # no augmentation yet
                aug = {"cifar10": "aug=cifar", "imagefolder": "aug=flip"}
                out.append(aug.get(self.data, "aug=mnist"))
        es_enabled = _sel(self.cfg, "early_stopping.enabled", True)
        patience = _sel(self.cfg, "early_stopping.patience")
        if not es_enabled:
            out.append("early_stopping.enabled=true early_stopping.patience=5")
        elif patience is None or int(patience) > 5:
            out.append("early_stopping.patience=5")
        if _sel(self.cfg, "data.limit") is not None:
            out.append("data.limit=null")  # more data is the best regularizer
        return out


class GradientMonitor:
    """Per-layer gradient norms as `grad_norm/<layer>` scalars, at the first step and every
    `every` steps after, and a warning (once per kind) when they vanish or explode or when
    sigmoid/tanh units saturate.

    The cost is one norm per weight tensor and one host sync per logged step; the activation
    hooks only compute on those steps too.
    """

    EXPLODE = 1e3  # a layer's gradient norm above this: exploding
    VANISH = 1e-7  # the first layer's gradient norm below this: vanishing
    RATIO = 1e-3  # first layer's norm / last layer's norm below this: vanishing with depth
    SATURATED = 0.5  # share of sigmoid/tanh outputs in their flat tails: saturating

    def __init__(self, model: nn.Module, tracker, console, every: int, scaler=None) -> None:
        self.tracker, self.console, self.every, self.scaler = tracker, console, int(every), scaler
        enabled = bool(self.every) and getattr(tracker, "enabled", True)
        self.layers = (
            [
                (name.removesuffix(".weight"), p)
                for name, p in model.named_parameters()
                if name.endswith("weight") and p.dim() > 1
            ]
            if enabled
            else []
        )
        self.warned: set[str] = set()
        self.last: dict[str, float] = {}
        self.saturation: dict[str, float] = {}
        self._armed = bool(self.layers)  # measure the activations of the next forward
        self._hooks = []
        if self.layers:
            for name, module in model.named_modules():
                if isinstance(module, (nn.Sigmoid, nn.Tanh)):
                    self._hooks.append(module.register_forward_hook(self._saturation_hook(name)))

    def due(self, step: int) -> bool:
        return bool(self.layers) and (step == 1 or step % self.every == 0)

    def _saturation_hook(self, name: str):
        def hook(module, inputs, output):
            if not self._armed or not torch.is_grad_enabled() or torch.compiler.is_compiling():
                return
            x = output.detach()
            # sigmoid: outside [0.01, 0.99] (sigma' < 0.01); tanh: |y| > 0.98 (1 - y^2 < 0.04)
            flat = (x < 0.01) | (x > 0.99) if isinstance(module, nn.Sigmoid) else x.abs() > 0.98
            self.saturation[name] = flat.float().mean()

        return hook

    def after_backward(self, step: int) -> None:
        """Call right after `loss.backward()`, with the step just taken (1, 2, ...)."""
        if not self.due(step):
            self._armed = self.due(step + 1)
            return
        named = [(name, p.grad.detach()) for name, p in self.layers if p.grad is not None]
        if named:
            norms = torch.stack([g.norm().float() for _, g in named])
            if self.scaler is not None:  # fp16: the gradients are still multiplied by the scale
                norms = norms / self.scaler.get_scale()
            self.last = dict(zip([name for name, _ in named], norms.tolist(), strict=True))
            for name, value in self.last.items():
                self.tracker.scalar(f"grad_norm/{name}", value, step)
        sat = {k: float(v) for k, v in self.saturation.items()}
        for name, value in sat.items():
            self.tracker.scalar(f"saturation/{name}", value, step)
        self.saturation = {}
        self._check(step, sat)
        self._armed = self.due(step + 1)

    def _check(self, step: int, sat: dict[str, float]) -> None:
        problems: dict[str, str] = {}
        if self.last:
            values = list(self.last.values())
            first_name, first = next(iter(self.last.items()))
            last_name, last = list(self.last.items())[-1]
            finite = [v for v in values if math.isfinite(v)]
            if self.scaler is None and len(finite) < len(values):
                problems["explode"] = "exploding gradients: a layer's gradient norm is NaN/Inf"
            elif finite and max(finite) > self.EXPLODE:
                worst = max((v, k) for k, v in self.last.items() if math.isfinite(v))
                problems["explode"] = (
                    f"exploding gradients: `{worst[1]}` has gradient norm {worst[0]:.3g} "
                    f"(> {self.EXPLODE:g})"
                )
            if 0 < first < self.VANISH or (first == 0 and len(values) > 1 and last > 0):
                problems["vanish"] = (
                    f"vanishing gradients: the first layer `{first_name}` gets {first:.3g}"
                )
            elif len(values) > 1 and last > 0 and first / last < self.RATIO:
                problems["vanish"] = (
                    f"vanishing gradients: the first layer `{first_name}` gets {first:.2g}, "
                    f"{last / max(first, 1e-30):.2g}x less than the last layer `{last_name}`"
                )
        if sat:
            name = max(sat, key=sat.get)
            if sat[name] > self.SATURATED:
                problems["saturate"] = (
                    f"saturating units: {_pct(sat[name])} of the outputs of `{name}` sit in the "
                    "flat tails of the activation, where its derivative is ~0: little gradient "
                    "flows back through them"
                )
        for kind, problem in problems.items():
            if kind in self.warned:
                continue
            self.warned.add(kind)
            msg = (
                f"{problem} (step {step}). Try `model.init=xavier` (sigmoid/tanh) or "
                "`model.init=he` (relu), `reg=batchnorm`, or a smaller `opt.lr`."
            )
            self.console.warn(msg)
            self.tracker.text("diagnostics/gradients", msg, step)

    def close(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []


def diagnosis_markdown(diag: dict[str, Any]) -> str:
    """The verdict as TensorBoard text (markdown)."""
    lines = [f"**{diag['verdict']}**", "", diag.get("evidence", "")]
    if diag.get("try"):
        lines += ["", "try: " + "  ".join(f"`{t}`" for t in diag["try"])]
    return "\n".join(lines)
