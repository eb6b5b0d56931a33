"""Diagnostics that teach: the fit verdict with its advice, and how the gradients flow.

`diagnose` reads a finished run's curves (`dlx.tracking.verdict`: underfitting and why,
overfitting, good fit, diverged) and turns the remedies into commands that run
(`dlx.tracking.advice`). `GradientMonitor` logs per-layer gradient norms during training and
warns, once, when they vanish, explode, or when sigmoid/tanh units saturate (the naive
N(0, 1) init); what it found goes into the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlx.tracking.advice import run_overrides, suggest
from dlx.tracking.verdict import read_verdict


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def diagnose(
    history: list[dict[str, Any]],
    task: str,
    status: str,
    *,
    initial_loss: float | None = None,
    error: str | None = None,
    cfg: Any = None,
    gradients: dict[str, str] | None = None,
    run_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    config_dir: str | None = None,
    baselines: dict[str, float] | None = None,
    size: dict[str, int | None] | None = None,
    check: Callable[[list[str], str | None], bool] | None = None,
) -> dict[str, Any]:
    """The verdict on a run (`dlx.tracking.verdict`) with its advice as commands that run.

    Returns {verdict, cause, evidence, remedies, numbers, suggestions, try}: `try` holds the
    complete commands (`dlx train <the run's overrides, changed>`, `dlx lr-find ...`), each
    passing `check` (launch's preflight; None: no `dlx train` line is suggested);
    `suggestions` the same with their overrides and the change. The run's overrides come from
    `overrides` or else from `run_dir`'s `.hydra/overrides.yaml`.
    """
    partial = _partial_data(cfg)
    if status == "pruned":  # stopped on purpose by a sweep's pruner: nothing to judge or fix
        partial = "a sweep's pruner stopped it on purpose; its configuration ranked below others"
    if partial and status != "diverged":  # a NaN is a NaN on any share of the data
        cause = "pruned" if status == "pruned" else "debug run"
        v = {"verdict": "not judged", "cause": cause, "evidence": partial}
        v.update(remedies=[], numbers={"epochs": len(history)})
    else:
        v = read_verdict(
            history,
            task,
            status,
            initial_loss=initial_loss,
            error=error,
            gradients=gradients,
            baselines=baselines,
            size=size,
        )
    if overrides is None and v["remedies"]:  # no remedy (a pruned trial, a good fit): no
        overrides, config_dir = run_overrides(run_dir)  # command to build, no .hydra to read
    if (
        overrides is not None
    ):  # a debug aid served this run; the next one, about the fit, goes without
        overrides = [o for o in overrides if not o.lstrip("+~").startswith(("debug=", "debug."))]
    v["suggestions"] = suggest(v["remedies"], cfg, task, overrides, config_dir, check=check)
    v["try"] = [s["command"] for s in v["suggestions"]]
    v["tested"] = False  # `dlx advise` measures them (dlx.launch.advise)
    v["next"] = next_commands(run_dir) if v["verdict"] == "good fit" else []
    return v


def next_commands(run_dir: str | Path | None) -> list[str]:
    """After a good fit: score it on the test split, look at it, use it."""
    import shlex

    where = shlex.quote(str(run_dir)) if run_dir is not None else "RUN_DIR"
    return [f"dlx eval {where}", "dlx board", f"dlx predict {where} FILES"]


def _partial_data(cfg: Any) -> str | None:
    """Why a debug run's curves say nothing about the fit (None: it trained on all the data)."""
    debug = cfg.get("debug") if cfg is not None else None
    if not debug:
        return None
    if debug.get("overfit_batches"):
        return (
            f"debug=overfit trains on the same {debug.overfit_batches} batches every epoch: "
            "memorizing them is the point, and the overfit check above says whether it could. "
            "Run without debug for a verdict on the fit."
        )
    if debug.get("limit_batches") is not None:
        return (
            f"debug.limit_batches={debug.limit_batches}: only part of each split ran, too little "
            "to judge the fit. Run without debug for a verdict."
        )
    return None


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
        # what it found, by kind (vanish, explode, saturate), with the step: for the verdict
        self.found: dict[str, str] = {}
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
            self.found[kind] = f"{problem} (step {step})"
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
    """The verdict as TensorBoard text (markdown): each suggested command on its own line."""
    head = f"**{diag['verdict']}**" + (f" ({diag['cause']})" if diag.get("cause") else "")
    lines = [head, "", diag.get("evidence", "")]
    if diag.get("try"):
        lines += ["", "try:", ""] + [f"    {t}" for t in diag["try"]]
    return "\n".join(lines)
