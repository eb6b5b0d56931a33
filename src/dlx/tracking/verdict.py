"""The fit verdict: what a run's train/val curves say, read the way the lecture reads them.

`read_verdict` looks at the per-epoch history (loss/train, loss/val, acc/*), the loss at the
very first step, what the gradient monitor found and what a blind guess or a simple fit would
score (`dlx.tracking.baselines`), and answers with the lecture's word (`underfitting`,
`overfitting`, `good fit`, `diverged`), the cause where the curves tell it
(`dlx.tracking.causes`: a bad init, learning rate too large or too small, too few epochs, too
little capacity, saturated gradients), the evidence in numbers a student can find in
TensorBoard (each quoted once), and the remedies by name. `dlx.tracking.advice` turns the
remedies into commands that run.

Where the curves cannot tell the causes apart, the cause is `can't tell` and the remedy is the
one cheap experiment that decides: `dlx lr-find` with the run's own overrides.
"""

from __future__ import annotations

import math
from typing import Any

from dlx.tracking.baselines import NAMES, best_baseline
from dlx.tracking.causes import (
    bad_start,
    still_improving,
    still_learning,
    underfit_cause,
    unsettled,
)
from dlx.tracking.curves import BOUNCE, curves_note, fmt, read_curves, times

POOR_ACC = 0.9  # train and val accuracy both below this: the model does not fit the data
POOR_LOSS = 0.1  # regression: best val and last train loss above this x the first loss
BASELINE = 0.5  # regression: best val loss above this x the best simple fit's: no better
GAP_ACC = 0.07  # train acc - val acc above this at the end: it memorizes the training set
RISE = 0.25  # val loss (smoothed) this far above its best while train loss kept falling
SOLVED = 0.01  # best val loss below this share of a blind guess's: the loss is at its floor
SOLVED_ACC = 0.995  # ...and (classification) val accuracy at least this

CAUSES = (
    "exploding gradients",
    "lr too large",
    "lr too small",
    "too few epochs",
    "capacity",
    "saturated gradients",
    "can't tell",
)


def _poor(n: dict[str, Any], task: str) -> tuple[bool, str]:
    blind = n.get("blind_loss")
    if task == "classification":
        poor = n["train_acc"] < POOR_ACC and n["best_val_acc"] < POOR_ACC
        if poor:
            return True, (
                f"acc/train {n['train_acc']:.3f} and acc/val {n['best_val_acc']:.3f} (its best) "
                f"are both below {POOR_ACC}: the model does not even fit its training data"
            )
        if blind is not None and n["best_val_loss"] > blind:
            return True, (
                f"loss/val never got below {fmt(blind)}, the loss of a blind guess (ln of the "
                "number of classes): the model is confidently wrong"
            )
        return False, ""
    first = n["first_loss"]
    if n["best_val_loss"] > POOR_LOSS * first and n["train_loss"] > POOR_LOSS * first:
        return True, (
            f"loss/val got down to {fmt(n['best_val_loss'])} at best, only "
            f"{times(first, n['best_val_loss'])} than the first step's {fmt(first)}: the model "
            f"does not fit even its training data (loss/train {fmt(n['train_loss'])})"
        )
    simple = n.get("simple_fit")
    if simple and n["best_val_loss"] > BASELINE * simple[1] and not _beyond_the_trend(n, simple):
        best, ratio = n["best_val_loss"], simple[1] / max(n["best_val_loss"], 1e-30)
        than, learned = "no better than", "only"  # the words follow the numbers they quote
        if ratio >= 1.05:
            than, learned = f"only {ratio:.1f}x lower than", "little more than"
        return True, (
            f"loss/val got down to {fmt(best)} at best, {than} {NAMES[simple[0]]} "
            f"({fmt(simple[1])}): the network has learned {learned} the coarse trend of the "
            "function"
        )
    return False, ""


def _beyond_the_trend(n: dict[str, Any], simple: list | tuple) -> bool:
    """loss/val below the simple fit's, and loss/train (its lowest and at the end) far below
    that fit's own loss on the training split: the network fits far more than the trend, so a
    val loss near the simple fit's is the floor the points allow (noise in the targets, too
    few points), not a network stuck at the trend."""
    own = n.get("simple_fit_train")
    if own is None or n["best_val_loss"] >= simple[1] / 1.05:
        return False
    return max(n["min_train_loss"], n["train_loss"]) < BASELINE * own


def _solved(n: dict[str, Any], task: str) -> bool:
    blind = n.get("blind_loss")
    if blind is None or n["best_val_loss"] > SOLVED * blind:
        return False
    return task != "classification" or n["best_val_acc"] >= SOLVED_ACC


def _diverged(history, error: str | None, gradients: dict[str, str], n: dict) -> dict[str, Any]:
    why = error or "the loss became NaN/Inf or exploded"
    extra = f"; the gradient monitor found {gradients['explode']}" if "explode" in gradients else ""
    remedies = ["lower_lr", "grad_clip", "batchnorm", "better_init", "lr_find"]
    start = bad_start(n, gradients) if n else None
    if start is not None:  # the init, not the lr: its fix first
        remedies = ["better_init", "lower_lr", "batchnorm", "lr_find"]
    return {
        "verdict": "diverged",
        "cause": "lr too large",
        "evidence": (
            f"{why}{extra}. A learning rate too large for this model is the usual cause: "
            "each step overshoots further."
        ),
        "remedies": remedies,
        "numbers": {"epochs": len(history)},
    }


def _scale(n: dict[str, Any], task: str, baselines: dict[str, float] | None) -> None:
    """The blind guess's loss (classes: ln(C); regression: the target variance) and the best
    simple fit, into the numbers."""
    b = dict(baselines or {})
    if task == "classification" and "chance" in b:
        n["blind_loss"] = b["chance"]
    elif task != "classification" and "mean" in b:
        n["blind_loss"] = b["mean"]
    simple = best_baseline(b) if task != "classification" else None
    if simple is not None:
        n["simple_fit"] = list(simple)
        if f"{simple[0]}_train" in b:  # how well that fit matched the points it was fitted to
            n["simple_fit_train"] = b[f"{simple[0]}_train"]


def read_verdict(
    history: list[dict[str, Any]],
    task: str,
    status: str,
    *,
    initial_loss: float | None = None,
    error: str | None = None,
    gradients: dict[str, str] | None = None,
    baselines: dict[str, float] | None = None,
    size: dict[str, int | None] | None = None,
) -> dict[str, Any]:
    """{verdict, cause, evidence, remedies, numbers} from a run's curves (see the module doc).
    `size`: {"parameters": trainable, "samples": training examples}, when known."""
    gradients = dict(gradients or {})
    if status == "diverged" or not history:
        n: dict[str, Any] = {}
        if initial_loss is not None and math.isfinite(initial_loss):
            n = {"first_loss": initial_loss, "best_val_loss": math.inf}
            _scale(n, task, baselines)
        if status == "diverged":
            return _diverged(history, error, gradients, n)
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
    _scale(n, task, baselines)
    for key, value in (size or {}).items():
        if value:
            n[key] = int(value)
    verdict, cause, why, remedies = _judge(n, task, gradients)
    n["unstable"] = cause == "lr too large"
    said = "; ".join(why)
    note = curves_note(n, said)
    return {
        "verdict": verdict,
        "cause": cause,
        "evidence": said + (f". {note}." if note else "."),
        "remedies": remedies,
        "numbers": n,
    }


def _judge(n: dict[str, Any], task: str, gradients: dict[str, str]):
    poor, poor_why = _poor(n, task)
    start = bad_start(n, gradients)
    if start is not None:  # its evidence already says the loss stayed above a blind guess
        return "underfitting", start[0], [start[1]], start[2]
    if poor:
        cause, why, remedies = underfit_cause(n, gradients)
        return "underfitting", cause, [why, poor_why], remedies
    if _solved(n, task):
        return "good fit", None, [_solved_why(n, task)], []
    if _overfitting(n, task):
        remedies = ["more_data", "augment", "regularize", "early_stop"]
        return "overfitting", None, _overfit_why(n, task), remedies
    bounced = unsettled(n)
    if bounced:
        return "underfitting", "lr too large", [bounced], ["lower_lr", "lr_find"]
    if still_improving(n):
        return "underfitting", "too few epochs", [still_learning(n)], ["longer"]
    why = [_good_why(n, task)]
    if gradients:
        why.append("note: the gradient monitor warned: " + "; ".join(gradients.values()))
    return "good fit", None, why, []


def _solved_why(n: dict[str, Any], task: str) -> str:
    acc = f" with acc/val {n['best_val_acc']:.3f}" if task == "classification" else ""
    return (
        f"solved: loss/val reached {fmt(n['best_val_loss'])}{acc}, "
        f"{times(n['blind_loss'], n['best_val_loss'])} than a blind guess's "
        f"{fmt(n['blind_loss'])}: the loss is at its floor, and what is left to gain is noise"
    )


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
            f"acc/train {n['train_acc_recent']:.3f} vs acc/val {n['val_acc_recent']:.3f}"
            f"{_over_last(n)}: a gap of {n['acc_gap']:.3f} (more than {GAP_ACC}): it memorizes "
            "the training images"
        )
    elif task != "classification" and n["val_loss"] > 3 * n["train_loss"]:
        why.append(
            f"loss/val {fmt(n['val_loss'])} is {n['val_loss'] / max(n['train_loss'], 1e-12):.1f}x "
            f"loss/train {fmt(n['train_loss'])}: it fits the training points, not the function"
        )
    return why


def _over_last(n: dict[str, Any]) -> str:
    k = int(n.get("acc_window", 1))
    return f" (the mean of the last {k} epochs)" if k > 1 else ""


def _good_why(n: dict[str, Any], task: str) -> str:
    first, best = n["first_loss"], n["best_val_loss"]
    if task == "classification":
        return (
            f"loss/val reached its best {fmt(best)} at epoch {n['best_epoch']} and the two curves "
            f"stayed together: acc/train {n['train_acc_recent']:.3f}, acc/val "
            f"{n['val_acc_recent']:.3f}{_over_last(n) or ' at the end'} (a gap of "
            f"{n['acc_gap']:.3f}): the model learned what generalizes"
        )
    ratio = n["val_loss"] / max(n["train_loss"], 1e-12)
    together = "stayed of the same order as" if 1 / 3 <= ratio <= 3 else "stayed above"
    simple = n.get("simple_fit")
    beat = f", far below {NAMES[simple[0]]} ({fmt(simple[1])})" if simple else ""
    if simple and best > BASELINE * simple[1] and _beyond_the_trend(n, simple):
        beat = (  # good only because it fits beyond the trend
            f", {simple[1] / max(best, 1e-30):.1f}x below {NAMES[simple[0]]} ({fmt(simple[1])}), "
            f"whose own loss on the training split, {fmt(n['simple_fit_train'])}, is far above "
            "this network's loss/train: what is left in loss/val is what the training points "
            "cannot teach (noise in the targets, or too few of them)"
        )
    return (
        f"loss/val fell from {fmt(first)} at the first step to {fmt(best)} at its best (epoch "
        f"{n['best_epoch']}), {times(first, best)}{beat}, and loss/val ({fmt(n['val_loss'])} at "
        f"the end) {together} loss/train ({fmt(n['train_loss'])}): the fit follows the function "
        "without memorizing the points (the `fit` figure shows it)"
    )
