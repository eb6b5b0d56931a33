"""The fit verdict: what a run's train/val curves say, read the way the lecture reads them.

`read_verdict` looks at the per-epoch history (loss/train, loss/val, acc/*), the loss at the
very first step and what the gradient monitor found, and answers with the lecture's word
(`underfitting`, `overfitting`, `good fit`, `diverged`), the cause where the curves tell it
(learning rate too large or too small, too few epochs, too little capacity, saturated or
vanishing gradients), the evidence in numbers a student can find in TensorBoard, and the
remedies by name. `dlx.tracking.advice` turns the remedies into commands that run.

Where the curves cannot tell the causes apart, the cause is `can't tell` and the remedy is the
one cheap experiment that decides: `dlx lr-find` with the run's own overrides.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

POOR_ACC = 0.9  # train and val accuracy both below this: the model does not fit the data
POOR_LOSS = 0.1  # regression: best val and last train loss above this x the first loss
GAP_ACC = 0.07  # train acc - val acc above this at the end: it memorizes the training set
RISE = 0.25  # val loss (smoothed) this far above its best while train loss kept falling
BOUNCE = 0.02  # an epoch whose train loss rose by > 2% of the first loss: a bounce
JUMP = 1.5  # first epoch's mean train loss above this x the first step's loss: a jump
STUCK = 0.05  # the train loss never got more than 5% below the first loss
STILL_FAST = 0.15  # val loss fell > 15% over the last 3 epochs and is at its best: not done
STEADY = 0.5  # the last epoch's drop is at least half the largest: not slowing down

CAUSES = (
    "lr too large",
    "lr too small",
    "too few epochs",
    "capacity",
    "saturated gradients",
    "can't tell",
)


def fmt(v: float) -> str:
    """A number as a student would read it off a chart: 3-4 significant digits."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    return f"{v:.3g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4g}"


def _times(a: float, b: float) -> str:
    """How many times smaller b is than a, in words: `1,900x lower`."""
    r = a / max(b, 1e-30)
    return f"{r:,.0f}x lower" if r >= 10 else f"{r:.1f}x lower"


def _median_around(xs: list[float], i: int, k: int) -> float:
    return statistics.median(xs[max(0, i - k) : i + k + 1])


def read_curves(history: list[dict[str, Any]], task: str, first: float) -> dict[str, Any]:
    """The numbers the verdict is read from (stored in metrics.json, so a user can check them)."""
    t = [float(h["train"]["loss"]) for h in history]
    v = [float(h["val"]["loss"]) for h in history]
    n = len(history)
    b = min(range(n), key=lambda i: v[i])
    drops = [t[i - 1] - t[i] for i in range(1, n)]
    half = n // 2
    k = min(3, n - 1)
    w = max(1, min(5, n // 10))  # smoothing half-window: noisy curves (regression, augmentation)
    rises = [
        i + 1 for i in range(1, n) if t[i] - t[i - 1] > BOUNCE * first and t[i] > 1.05 * t[i - 1]
    ]
    out: dict[str, Any] = {
        "epochs": n,
        "first_loss": first,
        "train_loss": t[-1],
        "val_loss": v[-1],
        "first_epoch_train_loss": t[0],
        "min_train_loss": min(t),
        "peak_loss": max(max(t), max(v)),  # the highest epoch loss, train or val
        "peak_epoch": history[max(range(n), key=lambda i: max(t[i], v[i]))]["epoch"],
        "best_val_loss": v[b],
        "best_epoch": history[b]["epoch"],
        "train_loss_at_best": t[b],
        "gap": v[-1] - t[-1],
        # smoothed: the median of the epochs around the best and of the last epochs
        "val_rise": (_median_around(v, n - 1, w) - _median_around(v, b, w))
        / max(abs(_median_around(v, b, w)), 1e-12),
        "train_fall_after_best": 1
        - _median_around(t, n - 1, w) / max(_median_around(t, b, w), 1e-12),
        "progress": (first - min(t)) / first,  # share of the first loss training removed
        "last_drop": drops[-1] / first if drops else 0.0,  # share of the first loss, last epoch
        "shape": drops[-1] / max(drops) if drops and max(drops) > 0 else None,
        "falling_share": sum(d > 0 for d in drops) / len(drops) if drops else 0.0,
        "val_falling": all(v[i] <= v[i - 1] for i in range(1, n)),
        "recent_val_fall": (v[-1 - k] - v[-1]) / max(abs(v[-1 - k]), 1e-12) if k else 0.0,
        "rises": rises,
        "late_progress": bool(half) and min(t[half:]) < 0.97 * min(t[:half]),
    }
    if task == "classification":
        ta = [float(h["train"]["acc"]) for h in history]
        out["train_acc"] = ta[-1]
        out["val_acc"] = float(history[-1]["val"]["acc"])
        out["best_val_acc"] = max(float(h["val"]["acc"]) for h in history)
        out["acc_gap"] = out["train_acc"] - out["val_acc"]
        out["train_acc_at_half"] = ta[half] if half else ta[0]
    return {k: (float(f"{x:.6g}") if isinstance(x, float) else x) for k, x in out.items()}


def _accs(n: dict[str, Any]) -> str:
    return f"acc/train {n['train_acc']:.3f}, acc/val {n['val_acc']:.3f}" if "train_acc" in n else ""


def _curves(n: dict[str, Any]) -> str:
    """Where the curves ended: the numbers to look up in TensorBoard."""
    s = (
        f"loss/train {fmt(n['train_loss'])}, loss/val {fmt(n['val_loss'])} at epoch "
        f"{n['epochs']} (best loss/val {fmt(n['best_val_loss'])} at epoch {n['best_epoch']})"
    )
    return s + (f"; {_accs(n)}" if "train_acc" in n else "")


def _poor(n: dict[str, Any], task: str) -> tuple[bool, str]:
    if task == "classification":
        poor = n["train_acc"] < POOR_ACC and n["best_val_acc"] < POOR_ACC
        return poor, (
            f"acc/train {n['train_acc']:.3f} and acc/val {n['best_val_acc']:.3f} (its best) are "
            f"both below {POOR_ACC}: the model does not even fit its training data"
        )
    first = n["first_loss"]
    poor = n["best_val_loss"] > POOR_LOSS * first and n["train_loss"] > POOR_LOSS * first
    return poor, (
        f"loss/val got down to {fmt(n['best_val_loss'])} at best, only "
        f"{_times(first, n['best_val_loss'])} than the first step's {fmt(first)}: the model "
        "does not fit even its training data "
        f"(loss/train {fmt(n['train_loss'])})"
    )


def _underfit_cause(n: dict[str, Any], gradients: dict[str, str]) -> tuple[str, str, list[str]]:
    """Which of the lecture's causes the curves of a poor fit point to, why, and the remedies."""
    first, t_end = n["first_loss"], n["train_loss"]
    lr_check = "; `dlx lr-find` finds a rate that works"
    if n["peak_loss"] > JUMP * first and t_end > 0.8 * first:
        return (
            "lr too large",
            (
                f"the loss jumped from {fmt(first)} at the first step to {fmt(n['peak_loss'])} "
                f"(epoch {n['peak_epoch']}'s mean, loss/train or loss/val) and ended at "
                f"{fmt(t_end)}, no lower than where it started: the steps overshoot the minimum "
                f"and leave the network at chance or worse{lr_check}"
            ),
            ["lower_lr", "lr_find"],
        )
    if len(n["rises"]) >= 2 and not n["late_progress"]:
        shown = ", ".join(str(e) for e in n["rises"][:4])
        return (
            "lr too large",
            (
                f"loss/train went up in {len(n['rises'])} of {n['epochs'] - 1} epochs (epochs "
                f"{shown}) and was no lower in the second half of training than in the first "
                f"(lowest {fmt(n['min_train_loss'])}): the steps overshoot back and forth{lr_check}"
            ),
            ["lower_lr", "lr_find"],
        )
    sat = gradients.get("saturate") or gradients.get("vanish")
    if sat:
        return (
            "saturated gradients",
            (
                f"the gradient monitor warned: {sat} (TensorBoard: saturation/*, grad_norm/*), so "
                f"training crawls: loss/train {fmt(first)} -> {fmt(t_end)} in {n['epochs']} epochs"
            ),
            ["better_init", "batchnorm", "relu"],
        )
    if n["recent_val_fall"] > STILL_FAST and n["best_epoch"] >= n["epochs"] - 1:
        return "too few epochs", _still_learning(n), ["longer"]
    steady = n["falling_share"] >= 0.8 and n["val_falling"]
    if n["progress"] < STUCK:
        if steady and n["epochs"] >= 2:
            return (
                "lr too small",
                (
                    f"loss/train fell every epoch but only from {fmt(first)} to {fmt(t_end)} in "
                    f"{n['epochs']} epochs ({100 * n['progress']:.1f}% of the first loss), "
                    "smoothly, with no jumps, and loss/val with it: the steps are too small"
                ),
                ["raise_lr", "lr_find"],
            )
        return (
            "can't tell",
            (
                f"loss/train stayed near its first value ({fmt(first)} -> {fmt(t_end)}) without "
                "a clear jump or a steady fall: a rate far too large (a dead network) and one far "
                "too small look the same here. `dlx lr-find` (below) decides in a few seconds"
            ),
            ["lr_find"],
        )
    if steady and n["shape"] is not None and n["shape"] >= STEADY and n["progress"] < 0.5:
        return (
            "lr too small",
            (
                f"loss/train fell slowly and steadily, by about the same amount every epoch "
                f"({100 * n['last_drop']:.1f}% of the first loss in the last one), and was still "
                f"falling at the end ({fmt(first)} -> {fmt(t_end)}): the steps are too small"
            ),
            ["raise_lr", "longer", "lr_find"],
        )
    acc = ""
    if "train_acc" in n:
        acc = (
            f"; acc/train was {n['train_acc_at_half']:.3f} halfway and {n['train_acc']:.3f} "
            "at the end"
        )
    return (
        "capacity",
        (
            f"loss/train flattened out high and smoothly ({fmt(first)} -> {fmt(t_end)}; the last "
            f"epoch took off only {100 * n['last_drop']:.1f}% of the first loss){acc}, with no "
            "jumps and the two curves together: the model is too small for the data"
        ),
        ["capacity", "bigger_model", "less_reg", "longer"],
    )


def _still_learning(n: dict[str, Any]) -> str:
    k = min(3, n["epochs"] - 1)
    return (
        f"loss/val was still falling fast at the end: {100 * n['recent_val_fall']:.0f}% lower "
        f"over the last {k} epoch{'s' * (k > 1)}, and at its best in the last "
        f"epoch{'s' * (n['best_epoch'] < n['epochs'])}: training stopped while it was still "
        "improving"
    )


def read_verdict(
    history: list[dict[str, Any]],
    task: str,
    status: str,
    *,
    initial_loss: float | None = None,
    error: str | None = None,
    gradients: dict[str, str] | None = None,
) -> dict[str, Any]:
    """{verdict, cause, evidence, remedies, numbers} from a run's curves (see the module doc)."""
    gradients = dict(gradients or {})
    if status == "diverged":
        why = error or "the loss became NaN/Inf or exploded"
        extra = (
            f"; the gradient monitor found {gradients['explode']}" if "explode" in gradients else ""
        )
        return {
            "verdict": "diverged",
            "cause": "lr too large",
            "evidence": (
                f"{why}{extra}. A learning rate too large for this model is the usual cause: "
                "each step overshoots further."
            ),
            "remedies": ["lower_lr", "grad_clip", "batchnorm", "better_init", "lr_find"],
            "numbers": {"epochs": len(history)},
        }
    if not history:
        return {
            "verdict": "unknown",
            "cause": None,
            "evidence": "no epoch completed",
            "remedies": [],
            "numbers": {},
        }
    first = float(history[0]["train"]["loss"])
    if initial_loss is not None and math.isfinite(initial_loss):
        first = float(initial_loss)  # the loss at the very first step: where training started
    first = max(abs(first), 1e-12)
    n = read_curves(history, task, first)
    poor, poor_why = _poor(n, task)
    if poor:
        cause, why, remedies = _underfit_cause(n, gradients)
        verdict, why = "underfitting", [why, poor_why]
    elif _overfitting(n, task):
        verdict, cause, why = "overfitting", None, _overfit_why(n, task)
        remedies = ["more_data", "augment", "regularize", "early_stop"]
    elif n["recent_val_fall"] > STILL_FAST and n["best_epoch"] >= n["epochs"] - 1:
        verdict, cause, why, remedies = (
            "underfitting",
            "too few epochs",
            [_still_learning(n)],
            ["longer"],
        )
    else:
        verdict, cause, why, remedies = "good fit", None, [_good_why(n, task)], []
        if gradients:
            why.append("note: the gradient monitor warned: " + "; ".join(gradients.values()))
    n["unstable"] = cause == "lr too large"
    evidence = "; ".join(why) + f". ({_curves(n)})"
    return {
        "verdict": verdict,
        "cause": cause,
        "evidence": evidence,
        "remedies": remedies,
        "numbers": n,
    }


def _overfitting(n: dict[str, Any], task: str) -> bool:
    rising = (
        n["val_rise"] > RISE
        and n["best_epoch"] <= n["epochs"] - 2
        and n["train_fall_after_best"] > 0.1
    )
    if task == "classification":
        return rising or (n["acc_gap"] > GAP_ACC and n["train_acc"] >= POOR_ACC)
    gapped = n["val_loss"] > 3 * n["train_loss"] and n["gap"] > BOUNCE * n["first_loss"]
    return rising or gapped


def _overfit_why(n: dict[str, Any], task: str) -> list[str]:
    why = []
    if n["val_rise"] > RISE and n["train_fall_after_best"] > 0.1:
        why.append(
            f"loss/val rose from its best {fmt(n['best_val_loss'])} (epoch {n['best_epoch']}) to "
            f"{fmt(n['val_loss'])} at epoch {n['epochs']} (the last epochs' median is "
            f"{100 * n['val_rise']:.0f}% above the best epochs') while loss/train kept falling "
            f"({fmt(n['train_loss_at_best'])} -> {fmt(n['train_loss'])}): the two curves part"
        )
    if task == "classification" and n["acc_gap"] > GAP_ACC:
        why.append(
            f"acc/train {n['train_acc']:.3f} vs acc/val {n['val_acc']:.3f}: a gap of "
            f"{n['acc_gap']:.3f} (more than {GAP_ACC}): it memorizes the training images"
        )
    elif task != "classification" and n["val_loss"] > 3 * n["train_loss"]:
        why.append(
            f"loss/val {fmt(n['val_loss'])} is {n['val_loss'] / max(n['train_loss'], 1e-12):.1f}x "
            f"loss/train {fmt(n['train_loss'])}: it fits the training points, not the function"
        )
    return why


def _good_why(n: dict[str, Any], task: str) -> str:
    first, best = n["first_loss"], n["best_val_loss"]
    if task == "classification":
        return (
            f"loss/val reached its best {fmt(best)} at epoch {n['best_epoch']} and the two curves "
            f"stayed together: acc/train {n['train_acc']:.3f}, acc/val {n['val_acc']:.3f} at the "
            f"end (a gap of {n['acc_gap']:.3f}): the model learned what generalizes"
        )
    ratio = n["val_loss"] / max(n["train_loss"], 1e-12)
    together = "stayed of the same order as" if 1 / 3 <= ratio <= 3 else "stayed above"
    return (
        f"loss/val fell from {fmt(first)} at the first step to {fmt(best)} at its best (epoch "
        f"{n['best_epoch']}), {_times(first, best)}, and loss/val ({fmt(n['val_loss'])} at the "
        f"end) {together} loss/train ({fmt(n['train_loss'])}): the fit follows the function "
        "without memorizing the points (the `fit` figure shows it)"
    )
