"""Why a run underfits: which of the lecture's causes its curves point to (a bad init, a
learning rate too large or too small, too few epochs, too little capacity, saturated
gradients), the evidence in words, and the remedies by name (`dlx.tracking.advice` turns them
into commands). Every sentence quotes only what the numbers show: "smoothly" only for a curve
that did not bounce."""

from __future__ import annotations

from typing import Any

from dlx.tracking.curves import fmt

JUMP = 1.5  # first epoch's mean train loss above this x the first step's loss: a jump
BLOWUP = 10.0  # an epoch's mean loss above this x the first step's: thrown up, whatever came after
THROWN = 1.2  # first epoch's mean train loss above this x max(first step's, a blind guess's)
THROWN_UP = 1.1  # first epoch's mean train loss above this x the first step's: overshoot
STUCK = 0.05  # the train loss never got more than 5% below the first loss
STILL_FAST = 0.15  # val loss fell > 15% over the last 3 epochs and is at its best: not done
STEADY = 0.5  # the last epoch's drop is at least half the largest: not slowing down
BAD_START = 10.0  # the first step's loss above this x a blind guess's: the init is broken
EARLY_STEP = 1  # an explosion the gradient monitor saw at the first step: before any update
ROOMY = 2  # trainable parameters at least this x the training examples: not too small a model
UNSETTLED = 2.0  # loss/val at the end at least this x its best, after the curves bounced...
LANDED = 0.05  # ...and above its best by this share of a blind guess's loss (not noise at a floor)

LR_CHECK = "; `dlx lr-find` finds a rate that works"
Cause = tuple[str, str, list[str]]


def bad_start(n: dict[str, Any], gradients: dict[str, str]) -> Cause | None:
    """The network starts far above a blind guess (or the gradients explode at once) and never
    gets below it: the initial weights, not the optimizer, are the problem."""
    blind = n.get("blind_loss")
    first = n["first_loss"]
    explode = gradients.get("explode", "")
    early = explode and _step_of(explode) <= EARLY_STEP
    huge = blind is not None and first > BAD_START * blind
    if not (huge or early) or blind is None or n["best_val_loss"] <= blind:
        return None
    seen = f"the gradient monitor warned: {explode}; " if explode else ""
    return (
        "exploding gradients",
        (
            f"{seen}the loss at the very first step was {fmt(first)}, "
            f"{first / blind:,.0f}x that of a blind guess ({fmt(blind)}), and loss/val never got "
            f"below the blind guess (best {fmt(n['best_val_loss'])}): the initial weights make "
            "the activations explode, before any step is taken"
        ),
        ["better_init", "batchnorm", "lower_lr"],
    )


def _step_of(found: str) -> int:
    """The step a gradient finding names: `... (step 1)` -> 1 (unknown: a large number)."""
    tail = found.rsplit("(step ", 1)
    try:
        return int(tail[1].rstrip(")")) if len(tail) == 2 else 10**9
    except ValueError:
        return 10**9


def underfit_cause(n: dict[str, Any], gradients: dict[str, str]) -> Cause:
    """Which of the lecture's causes the curves of a poor fit point to, why, and the remedies."""
    first, t_end = n["first_loss"], n["train_loss"]
    start = bad_start(n, gradients)
    if start is not None:
        return start
    if (n["peak_loss"] > JUMP * first and t_end > 0.8 * first) or _thrown_above_blind(n):
        return (
            "lr too large",
            (
                f"the loss jumped from {fmt(first)} at the first step to {fmt(n['peak_loss'])} "
                f"(epoch {n['peak_epoch']}'s mean, loss/train or loss/val) and ended at "
                f"{fmt(t_end)}, no lower than where it started: the steps overshoot the minimum "
                f"and leave the network at chance or worse{LR_CHECK}"
            ),
            ["lower_lr", "lr_find"],
        )
    if _blew_up(n):
        return (
            "lr too large",
            (
                f"the training loss blew up from {fmt(first)} at the first step to "
                f"{fmt(n['train_peak'])} (epoch {n['train_peak_epoch']}'s mean of loss/train, "
                f"{n['train_peak'] / first:,.0f}x) before it came down to {fmt(t_end)}: steps too "
                f"small never throw the loss up; these overshoot, and the run never recovered "
                f"to a good fit{LR_CHECK}"
            ),
            ["lower_lr", "lr_find"],
        )
    bounced = _bounced(n)
    if bounced:
        return "lr too large", bounced, ["lower_lr", "lr_find"]
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
    if still_improving(n):
        return "too few epochs", still_learning(n), ["longer"]
    return _slow_or_small(n)


def still_improving(n: dict[str, Any]) -> bool:
    """loss/val at its best in the last epochs, and fast falling there: more than STILL_FAST
    lower than 3 epochs before, and than the best before them (on a noisy curve the epoch 3
    back may be a bounce's peak, and falling from a peak is no progress)."""
    fall = min(n["recent_val_fall"], n.get("recent_best_fall", n["recent_val_fall"]))
    return fall > STILL_FAST and n["best_epoch"] >= n["epochs"] - 1


def _blew_up(n: dict[str, Any]) -> bool:
    """An epoch's mean training loss more than BLOWUP x the first step's, and lower again by
    the end (to under a tenth of that peak): steps that threw the network off and came back.
    A val loss alone (batch norm's early running statistics, a confident wrong model) is not."""
    peak, at = n.get("train_peak"), n.get("train_peak_epoch")
    if peak is None or at is None or at >= n["epochs"]:
        return False
    return peak > BLOWUP * n["first_loss"] and n["train_loss"] < 0.1 * peak


def _thrown_above_blind(n: dict[str, Any]) -> bool:
    """The first epoch's steps raised the loss above both its start and a blind guess's, and it
    never got far below a blind guess again: the network was thrown off (often dead), not slow.
    A rate too small leaves the first epoch's mean at or under the first step's loss."""
    blind, epoch1 = n.get("blind_loss"), n.get("first_epoch_train_loss")
    if blind is None or epoch1 is None:
        return False
    above = epoch1 > THROWN * max(n["first_loss"], blind)
    return above and n["best_val_loss"] > 0.8 * blind and n["min_train_loss"] > 0.8 * blind


def _bounced(n: dict[str, Any]) -> str | None:
    """Curves that go up and down (train or val loss, val accuracy): steps that overshoot."""
    rises, swung = n["rises"], n.get("swings", [])
    if len(rises) >= 2 and not n["late_progress"]:
        shown = ", ".join(str(e) for e in rises[:4])
        return (
            f"loss/train went up in {len(rises)} of {n['epochs'] - 1} epochs (epochs "
            f"{shown}) and was no lower in the second half of training than in the first "
            f"(lowest {fmt(n['min_train_loss'])}): the steps overshoot back and forth{LR_CHECK}"
        )
    # it "did not settle" only when it still swung in its second half; a run still falling fast
    # swings from noise
    late = any(e > n["epochs"] // 2 for e in swung)
    if len(swung) >= 2 and late and not still_improving(n):
        return (
            f"the curves bounced: loss/train or loss/val went up sharply, or acc/val down, in "
            f"{len(swung)} epochs ({_epochs(swung)}) instead of settling: the steps overshoot the "
            f"minimum back and forth{LR_CHECK}"
        )
    return None


def unsettled(n: dict[str, Any]) -> str | None:
    """A run that got somewhere (not poor) but never settled: its curves bounced in two or
    more epochs and loss/val ended at least UNSETTLED x its best. Such a run is not a good fit
    however good its best epoch was: the steps overshoot, and the next seed or epoch may land
    anywhere. (An overfitting run's val loss climbs steadily; it is judged before this.)"""
    swung, blind = n.get("swings", []), n.get("blind_loss")
    if len(swung) < 2 or n["val_loss"] < UNSETTLED * n["best_val_loss"]:
        return None
    if blind is None or n["val_loss"] - n["best_val_loss"] < LANDED * blind:
        return None  # a loss bouncing at its floor (regression near 1e-4): noise, not a rate
    return (
        f"the curves bounced in {len(swung)} epochs ({_epochs(swung)}: loss/train or loss/val up "
        f"sharply, or acc/val down) and never settled: loss/val ended at {fmt(n['val_loss'])}, "
        f"{n['val_loss'] / max(n['best_val_loss'], 1e-12):.1f}x its best "
        f"{fmt(n['best_val_loss'])} (epoch {n['best_epoch']}): the steps overshoot the minimum "
        f"back and forth{LR_CHECK}"
    )


def _slow_or_small(n: dict[str, Any]) -> Cause:
    first, t_end = n["first_loss"], n["train_loss"]
    smooth = not n["rises"] and not n.get("swings")
    steady = n["falling_share"] >= 0.8 and n["val_falling"]
    if n["progress"] < STUCK:
        overshot = _overshot(n)
        if overshot:
            return (
                "lr too large",
                f"loss/train stayed near its first value ({fmt(first)} -> {fmt(t_end)}) and "
                f"{overshot}: steps too small never throw the loss up, these overshoot{LR_CHECK}",
                ["lower_lr", "lr_find"],
            )
        if steady and n["epochs"] >= 2:
            return (
                "lr too small",
                (
                    f"loss/train fell {_falls(n)} but only from {fmt(first)} to {fmt(t_end)} in "
                    f"{n['epochs']} epochs ({_pct(n['progress'])} of the first loss), "
                    "and loss/val with it: the steps are too small"
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
                f"({_pct(n['last_drop'])} of the first loss in the last one), and was still "
                f"falling at the end ({fmt(first)} -> {fmt(t_end)}): the steps are too small"
            ),
            ["raise_lr", "longer", "lr_find"],
        )
    roomy = _roomy(n)
    if roomy:
        return roomy
    acc = ""
    if "train_acc" in n:
        acc = (
            f"; acc/train was {n['train_acc_at_half']:.3f} halfway and {n['train_acc']:.3f} "
            "at the end"
        )
    how = "high and smoothly" if smooth else "high"
    return (
        "capacity",
        (
            f"loss/train flattened out {how} ({fmt(first)} -> {fmt(t_end)}; "
            f"{_last_epoch(n['last_drop'])}){acc}, "
            f"{'with no jumps and ' if smooth else ''}the two curves together: the model is too "
            "small for the data"
        ),
        ["capacity", "bigger_model", "less_reg", "longer"],
    )


def _last_epoch(drop: float) -> str:
    """What the last epoch took off the loss, in words that match its sign and size (a loss
    that rose in it took nothing off; one that fell by 0.01% is not "only 0.0%")."""
    if drop <= 0:
        return "the last epoch took nothing off"
    if drop < 0.0005:
        return "the last epoch took off under 0.1% of the first loss"
    return f"the last epoch took off only {100 * drop:.1f}% of the first loss"


def _roomy(n: dict[str, Any]) -> Cause | None:
    """A fit that flattened out high in a model with far more parameters than training examples:
    such a model can memorize its data, so it is not too small; the optimizer is what holds it
    back (a rate too small when the loss was still falling at the end; else lr-find decides)."""
    params, samples = n.get("parameters"), n.get("samples")
    if not params or not samples or params < ROOMY * samples:
        return None
    first, t_end = n["first_loss"], n["train_loss"]
    size = (
        f"the model has {params:,} trainable parameters for {samples:,} training examples "
        f"({params / samples:,.0f} per example): enough to memorize them, so it is not too small"
    )
    overshot = _overshot(n)
    if overshot:
        return (
            "lr too large",
            f"loss/train flattened out high ({fmt(first)} at the first step -> {fmt(t_end)}) and "
            f"{size}; {overshot}: steps too small never throw the loss up, these overshoot"
            f"{LR_CHECK}",
            ["lower_lr", "lr_find"],
        )
    if n["best_epoch"] >= n["epochs"] - 1 and n["falling_share"] >= 0.8:
        return (
            "lr too small",
            (
                f"loss/train kept falling slowly to the end ({fmt(first)} -> {fmt(t_end)} in "
                f"{n['epochs']} epochs, loss/val at its best in the last epochs) and {size}: "
                "the steps are too small"
            ),
            ["raise_lr", "longer", "lr_find"],
        )
    return (
        "can't tell",
        (
            f"loss/train flattened out high ({fmt(first)} -> {fmt(t_end)}) and {size}: a rate "
            "too large or too small can stall a big model this way. `dlx lr-find` (below) decides"
        ),
        ["lr_find"],
    )


def _pct(share: float) -> str:
    """A share as a percentage that never reads 0.0% for a share that is not zero."""
    return f"{100 * share:.1f}%" if abs(share) >= 0.01 or share == 0 else f"{100 * share:.2g}%"


def _falls(n: dict[str, Any]) -> str:
    """How often loss/train fell: "every epoch" only when it did."""
    steps = n["epochs"] - 1
    fell = round(n["falling_share"] * steps)
    return "every epoch" if fell == steps else f"in {fell} of {steps} epochs"


def _epochs(which: list[int], most: int = 5) -> str:
    """Epochs named in evidence: all of a few, else the last ones (where the claim is made)."""
    shown = ", ".join(str(e) for e in which[-most:])
    return f"epochs {shown}" if len(which) <= most else f"the last: epochs {shown}"


def _overshot(n: dict[str, Any]) -> str | None:
    """What only a rate too large does to a stalled loss: the first epoch's mean above the first
    step's loss (a rate too small leaves it at or under it), or loss/train back up in 2+ epochs,
    one of them in the second half (early rises that stopped: the run settled)."""
    epoch1, rises = n.get("first_epoch_train_loss"), n["rises"]
    if epoch1 is not None and epoch1 > THROWN_UP * n["first_loss"]:
        return f"the first epoch's mean loss/train, {fmt(epoch1)}, was above the first step's"
    if len(rises) >= 2 and rises[-1] > n["epochs"] // 2:  # still overshooting in its 2nd half
        return f"loss/train went back up in {len(rises)} epochs ({_epochs(rises)})"
    return None


def still_learning(n: dict[str, Any]) -> str:
    k = min(3, n["epochs"] - 1)
    return (
        f"loss/val was still falling fast at the end: {100 * n['recent_val_fall']:.0f}% lower "
        f"over the last {k} epoch{'s' * (k > 1)}, and at its best in the last "
        f"epoch{'s' * (n['best_epoch'] < n['epochs'])}: training stopped while it was still "
        "improving"
    )
