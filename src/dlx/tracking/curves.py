"""The numbers a fit verdict is read from: a run's per-epoch curves reduced to the figures a
student can find in TensorBoard (where the loss started, its best, how it ended, whether it
bounced), stored in metrics.json so every figure the verdict quotes can be checked."""

from __future__ import annotations

import math
import statistics
from typing import Any

BOUNCE = 0.02  # an epoch whose train loss rose by > 2% of the first loss: a bounce
SWING_TRAIN = 0.10  # train loss up > 10% from one epoch to the next: a swing
SWING_VAL = 0.25  # val loss up > 25% from one epoch to the next: a swing
SWING_ACC = 0.10  # val accuracy down > 0.10 from one epoch to the next: a swing


def fmt(v: float) -> str:
    """A number as a student would read it off a chart: 3-4 significant digits."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    return f"{v:.3g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4g}"


def times(a: float, b: float) -> str:
    """How many times smaller b is than a, in words: `1,900x lower`."""
    r = a / max(b, 1e-30)
    return f"{r:,.0f}x lower" if r >= 10 else f"{r:.1f}x lower"


def _median_around(xs: list[float], i: int, k: int) -> float:
    return statistics.median(xs[max(0, i - k) : i + k + 1])


def swings(xs: list[float], rel: float) -> list[int]:
    """Epochs (1-based) whose value rose more than `rel` of the epoch before's."""
    return [i + 1 for i in range(1, len(xs)) if xs[i] > (1 + rel) * abs(xs[i - 1])]


def _swing_epochs(history: list[dict[str, Any]], t: list[float], v: list[float]) -> list[int]:
    """Every epoch where a curve bounced: train or val loss up sharply, or val accuracy down."""
    out = set(swings(t, SWING_TRAIN)) | set(swings(v, SWING_VAL))
    accs = [h["val"].get("acc") for h in history]
    if all(a is not None for a in accs):
        out |= {i + 1 for i in range(1, len(accs)) if accs[i - 1] - accs[i] > SWING_ACC}
    return sorted(out)


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
        "train_peak": max(t),  # the highest epoch train loss, and its epoch
        "train_peak_epoch": history[max(range(n), key=lambda i: t[i])]["epoch"],
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
        # the same for the best so far: a bounce's peak k epochs back is no progress since
        "recent_best_fall": (min(v[:-k]) - min(v[-k:])) / max(abs(min(v[:-k])), 1e-12)
        if k
        else 0.0,
        "rises": rises,
        "swings": _swing_epochs(history, t, v),
        "late_progress": bool(half) and min(t[half:]) < 0.97 * min(t[:half]),
    }
    if task == "classification":
        ta = [float(h["train"]["acc"]) for h in history]
        out["train_acc"] = ta[-1]
        out["val_acc"] = float(history[-1]["val"]["acc"])
        out["best_val_acc"] = max(float(h["val"]["acc"]) for h in history)
        # the gap over the last epochs (a few batches' train accuracy is noisy: 100 images
        # with dropout and augmentation swing by 0.05 from one epoch to the next)
        last = max(1, min(5, n // 5))
        va = [float(h["val"]["acc"]) for h in history]
        out["acc_window"] = last
        out["train_acc_recent"] = statistics.fmean(ta[-last:])
        out["val_acc_recent"] = statistics.fmean(va[-last:])
        out["acc_gap"] = out["train_acc_recent"] - out["val_acc_recent"]
        out["train_acc_at_half"] = ta[half] if half else ta[0]
    return {k: (float(f"{x:.6g}") if isinstance(x, float) else x) for k, x in out.items()}


def curves_note(n: dict[str, Any], said: str) -> str:
    """Where the curves ended, for TensorBoard, leaving out every number `said` quotes."""
    items = [("loss/train", n["train_loss"], True), ("loss/val", n["val_loss"], True)]
    if n["best_val_loss"] != n["val_loss"]:
        items.append(("best loss/val", n["best_val_loss"], True))
    if "train_acc" in n:
        items += [("acc/train", n["train_acc"], False), ("acc/val", n["val_acc"], False)]
    parts = []
    for name, value, is_loss in items:
        text = fmt(value) if is_loss else f"{value:.3f}"
        if text not in said:
            parts.append(f"{name} {text}")
    if not parts:
        return ""
    when = f" (epoch {n['epochs']})" if f"epoch {n['epochs']}" not in said else ""
    return f"At the end{when}: " + ", ".join(parts)
