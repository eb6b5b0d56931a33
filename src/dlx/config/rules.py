"""What values a config may hold (the allowed values are `dlx.config.choices`; composing one
is `dlx.config.compose`).

This is the one place that knows what is allowed: `validate(cfg)` runs before any
work starts and raises `UserError` naming the key, the value and the allowed range.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.config.choices import (
    ACTIVATIONS,
    DEVICES,
    FREEZE_MODES,
    INITS,
    LOSSES,
    MAX_SEED,
    MAX_THREADS,
    MONITORS,
    POOLS,
    PRECISIONS,
    RESNET_ARCHS,
)
from dlx.errors import UserError

# ---------------------------------------------------------------------------- validation

Check = Callable[[Any], bool]


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _rule(check: Check, allowed: str) -> tuple[Check, str]:
    return check, allowed


def positive_int(v: Any) -> bool:
    return _int(v) and v >= 1


def nonneg(v: Any) -> bool:
    return _num(v) and v >= 0


def positive(v: Any) -> bool:
    return _num(v) and v > 0


def fraction(v: Any) -> bool:
    return _num(v) and 0 < v < 1


def _none_or_positive_int(v: Any) -> bool:
    return v is None or positive_int(v)


def one_of(*choices: Any) -> Check:
    return lambda v: v in choices


# key -> (check, what is allowed). Keys absent from a config are skipped.
RULES: dict[str, tuple[Check, str]] = {
    "epochs": _rule(positive_int, "an integer >= 1"),
    "batch_size": _rule(positive_int, "an integer >= 1"),
    "seed": _rule(lambda v: _int(v) and 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}"),
    "divergence_factor": _rule(lambda v: _num(v) and v > 1, "a number > 1"),
    "loss": _rule(one_of(*LOSSES), " | ".join(LOSSES)),
    "precision": _rule(one_of(*PRECISIONS), " | ".join(PRECISIONS)),
    "channels_last": _rule(lambda v: isinstance(v, bool), "true | false"),
    "compile": _rule(lambda v: isinstance(v, bool), "true | false"),
    "num_threads": _rule(
        lambda v: v is None or (positive_int(v) and v <= MAX_THREADS),
        f"null or an integer from 1 to {MAX_THREADS} (this machine has {os.cpu_count()} cores)",
    ),
    "trainer.devices": _rule(positive_int, "an integer >= 1"),
    "opt.lr": _rule(positive, "a number > 0"),
    "opt.momentum": _rule(lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)"),
    "opt.alpha": _rule(lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)"),
    "opt.betas": _rule(
        lambda v: (
            isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(b) and 0 <= b < 1 for b in v)
        ),
        "two numbers in [0, 1), e.g. [0.9,0.999]",
    ),
    "opt.backbone_lr_mult": _rule(nonneg, "a number >= 0"),
    "reg.l1": _rule(nonneg, "a number >= 0"),
    "reg.weight_decay": _rule(nonneg, "a number >= 0"),
    "reg.dropout": _rule(lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)"),
    "reg.batchnorm": _rule(lambda v: isinstance(v, bool), "true | false"),
    "model.batchnorm": _rule(lambda v: isinstance(v, bool), "true | false"),
    "early_stopping.enabled": _rule(lambda v: isinstance(v, bool), "true | false"),
    "early_stopping.monitor": _rule(one_of(*MONITORS), " | ".join(MONITORS)),
    "early_stopping.patience": _rule(positive_int, "an integer >= 1"),
    "early_stopping.min_delta": _rule(nonneg, "a number >= 0"),
    "early_stopping.restore_best": _rule(lambda v: isinstance(v, bool), "true | false"),
    "cv.folds": _rule(lambda v: v is None or (_int(v) and v >= 2), "null or an integer >= 2"),
    "cv.fold": _rule(lambda v: _int(v) and v >= 0, "an integer >= 0 (below cv.folds)"),
    "data.seed": _rule(
        lambda v: v is None or (_int(v) and 0 <= v <= MAX_SEED), f"null or 0 to {MAX_SEED}"
    ),
    "data.limit": _rule(lambda v: v is None or positive_int(v), "null or an integer >= 1"),
    "data.val_fraction": _rule(fraction, "a number in (0, 1)"),
    "data.test_fraction": _rule(fraction, "a number in (0, 1)"),
    "data.image_size": _rule(
        lambda v: v is None or v == "auto" or positive_int(v), "null, auto or an integer >= 1"
    ),
    "data.n_points": _rule(lambda v: _int(v) and v >= 16, "an integer >= 16"),
    "data.noise": _rule(nonneg, "a number >= 0"),
    "data.n_samples": _rule(
        lambda v: _int(v) and 16 <= v <= 10**7, "an integer from 16 to 10000000"
    ),
    "data.turns": _rule(positive, "a number > 0"),
    "data.factor": _rule(fraction, "a number in (0, 1)"),
    "data.download": _rule(lambda v: isinstance(v, bool), "true | false"),
    "data.root": _rule(
        lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "null or a folder path"
    ),
    "data.mean": _rule(
        lambda v: (
            v is None or (isinstance(v, (list, tuple)) and len(v) >= 1 and all(_num(m) for m in v))
        ),
        "null or a list of numbers, one per channel, e.g. [0.5,0.5,0.5]",
    ),
    "data.std": _rule(
        lambda v: (
            v is None
            or (isinstance(v, (list, tuple)) and len(v) >= 1 and all(positive(s) for s in v))
        ),
        "null or a list of numbers > 0, one per channel",
    ),
    "aug.transforms": _rule(
        lambda v: (
            isinstance(v, (list, tuple))
            and all(isinstance(t, dict) and isinstance(t.get("_target_"), str) for t in v)
        ),
        "a list of transforms, each with a `_target_`, e.g. "
        "[{_target_:torchvision.transforms.RandomHorizontalFlip}]",
    ),
    "model.activation": _rule(one_of(*ACTIVATIONS), " | ".join(ACTIVATIONS)),
    "model.init": _rule(one_of(*INITS), " | ".join(INITS)),
    "model.width": _rule(positive_int, "an integer >= 1"),
    "model.depth": _rule(lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "model.hidden": _rule(
        lambda v: (
            positive_int(v) or (isinstance(v, (list, tuple)) and all(positive_int(h) for h in v))
        ),
        "an integer >= 1 (or a list of them)",
    ),
    "model.channels": _rule(
        lambda v: isinstance(v, (list, tuple)) and len(v) >= 1 and all(positive_int(c) for c in v),
        "a list of integers >= 1",
    ),
    "model.arch": _rule(one_of(*RESNET_ARCHS), " | ".join(RESNET_ARCHS)),
    "model.pretrained": _rule(lambda v: isinstance(v, bool), "true | false"),
    "model.weights": _rule(
        lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "null or a file path"
    ),
    "model.freeze": _rule(one_of(*FREEZE_MODES), " | ".join(FREEZE_MODES)),
    "model.unfreeze_at_epoch": _rule(_none_or_positive_int, "null or an integer >= 1"),
    "model.min_input_size": _rule(_none_or_positive_int, "null or an integer >= 1"),
    "model.head_dropout": _rule(lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)"),
    # model.kernel_size is checked by the model (dlx.models.layers.positive): a trusted
    # config's node there is built first (tests/test_hostile.py's control row)
    "model.stride": _rule(positive_int, "an integer >= 1"),
    "model.padding": _rule(lambda v: v == "same" or (_int(v) and v >= 0), "same | an integer >= 0"),
    "model.pool": _rule(one_of(*POOLS), " | ".join(POOLS)),
    "model.pool_size": _rule(positive_int, "an integer >= 1"),
    "model.pool_stride": _rule(_none_or_positive_int, "null (the pool_size) or an integer >= 1"),
    "device.type": _rule(one_of(*DEVICES), " | ".join(DEVICES)),
    "opt.nesterov": _rule(lambda v: isinstance(v, bool), "true | false"),
    "opt.eps": _rule(positive, "a number > 0"),
    "sched.step_size": _rule(positive_int, "an integer >= 1"),
    "sched.gamma": _rule(lambda v: _num(v) and 0 < v <= 1, "a number in (0, 1]"),
    "sched.factor": _rule(fraction, "a number in (0, 1)"),
    "sched.patience": _rule(lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "sched.eta_min": _rule(nonneg, "a number >= 0"),
    "sched.pct_start": _rule(fraction, "a number in (0, 1)"),
    "sched.T_max": _rule(
        _none_or_positive_int, "null (the epochs after warmup) or an integer >= 1"
    ),
    "sched.max_lr": _rule(positive, "a number > 0"),
    "name": _rule(
        lambda v: (
            v is None
            or (
                isinstance(v, (str, int))
                and not isinstance(v, bool)
                and str(v).strip(". ") != ""
                and not any(c in str(v) for c in "/\\:")
            )
        ),
        "null or a short name without / \\ or : (it becomes part of the run folder's name)",
    ),
    "log.histograms": _rule(lambda v: isinstance(v, bool), "true | false"),
    "log.graph": _rule(lambda v: isinstance(v, bool), "true | false"),
    "log.every_n_steps": _rule(positive_int, "an integer >= 1"),
    "log.grad_norm_every": _rule(lambda v: _int(v) and v >= 0, "an integer >= 0 (0 = off)"),
    # training knobs (dlx.training.clipping, accumulation, warmup, ema, determinism; data.mixing)
    "advise": _rule(lambda v: v in (None, "probe"), "null or probe"),
    "grad_clip": _rule(lambda v: v is None or positive(v), "null (off) or a number > 0"),
    "grad_accum": _rule(positive_int, "an integer >= 1 that divides batch_size"),
    "label_smoothing": _rule(lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)"),
    "ema.decay": _rule(lambda v: v is None or fraction(v), "null (off) or a number in (0, 1)"),
    "sched.warmup_epochs": _rule(lambda v: _int(v) and v >= 0, "an integer >= 0 (0 = off)"),
    "aug.mixup": _rule(nonneg, "a number >= 0 (Beta alpha, e.g. 0.2; 0 = off)"),
    "aug.cutmix": _rule(nonneg, "a number >= 0 (Beta alpha, e.g. 1.0; 0 = off)"),
    "deterministic": _rule(lambda v: isinstance(v, bool), "true | false"),
    "debug.limit_batches": _rule(
        lambda v: v is None or positive_int(v) or (_num(v) and isinstance(v, float) and 0 < v <= 1),
        "null (all), an integer >= 1 (batches) or a number in (0, 1] (a share of them)",
    ),
    "debug.checkpoints": _rule(lambda v: isinstance(v, bool), "true | false"),
    "debug.overfit_batches": _rule(lambda v: _int(v) and v >= 0, "an integer >= 0 (0 = off)"),
    "debug.profile_steps": _rule(lambda v: _int(v) and v >= 0, "an integer >= 0 (0 = off)"),
    "debug.anomaly": _rule(lambda v: isinstance(v, bool), "true | false"),
}


def _select(cfg: DictConfig, key: str) -> tuple[bool, Any]:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False, None
        node = node[part]
    if isinstance(node, DictConfig):
        return True, node
    value = OmegaConf.to_object(node) if OmegaConf.is_config(node) else node
    return True, value


# Blocks every run reads: deleting one (`~early_stopping`) is refused by name.
REQUIRED = {
    "data": "the data group (data=digits, ...)",
    "model": "the model group (model=cnn, ...)",
    "opt": "the optimizer group (opt=adam, ...)",
    "device": "the device group (device=auto, ...)",
    "reg": "the regularization block (reg.l1, reg.weight_decay, ...)",
    "early_stopping": "the early stopping block (early_stopping.enabled=false turns it off)",
    "seed": "the seed",
    "epochs": "the number of epochs",
    "batch_size": "the batch size",
}


def validate(cfg: DictConfig) -> None:
    """Check every value a user can get wrong; raise UserError on the first bad one."""
    for key, what in REQUIRED.items():
        if key not in cfg or cfg.get(key) is None:
            raise UserError(
                f"`{key}` is missing from the config: every run needs {what}. Keep it (change "
                f"its values instead of deleting it); `dlx config` shows the default.",
                key=key,
            )
    for key in ("data", "model", "opt"):
        if not isinstance(cfg[key], DictConfig) or not isinstance(cfg[key].get("_target_"), str):
            raise UserError(
                f"`{key}` needs a `_target_` (a group option such as {key}="
                f"{ {'data': 'digits', 'model': 'cnn', 'opt': 'adam'}[key] }).",
                key=f"{key}._target_",
            )
    for key, (check, allowed) in RULES.items():
        present, value = _select(cfg, key)
        if present and not check(value):
            raise UserError(f"Invalid value for `{key}`: {value!r}. Allowed: {allowed}.", key=key)
    if "data" in cfg and "val_fraction" in cfg.data and "test_fraction" in cfg.data:
        if cfg.data.val_fraction + cfg.data.test_fraction >= 0.9:
            raise UserError(
                "`data.val_fraction` + `data.test_fraction` must leave at least 10% for training "
                f"(got {cfg.data.val_fraction} + {cfg.data.test_fraction}).",
                key="data.val_fraction",
            )
    from dlx.config.modelkeys import check_model_keys  # a preset made for another model: exit 2

    check_model_keys(cfg)
    _check_knobs(cfg)


def _check_knobs(cfg: DictConfig) -> None:
    """Rules that relate two keys of the training knobs."""
    folds, fold = cfg.get("cv", {}).get("folds"), cfg.get("cv", {}).get("fold", 0)
    if _int(folds) and _int(fold) and fold >= folds >= 2:
        raise UserError(
            f"`cv.fold={fold}` with `cv.folds={folds}`: allowed are 0..{folds - 1}.",
            key="cv.fold",
        )
    accum, batch = cfg.get("grad_accum", 1), cfg.get("batch_size")
    if _int(accum) and _int(batch) and accum > 1 and batch % accum:
        lower, upper = batch - batch % accum, batch - batch % accum + accum
        raise UserError(
            f"`grad_accum={accum}` must divide batch_size={batch}: batch_size stays the "
            f"effective batch, cut into {accum} equal micro-batches. Use batch_size="
            f"{lower or upper} or {upper}, or a grad_accum that divides {batch}.",
            key="grad_accum",
        )
    warm = OmegaConf.select(cfg, "sched.warmup_epochs", default=0)
    epochs = cfg.get("epochs")
    if _int(warm) and _int(epochs) and warm and warm >= epochs:
        raise UserError(
            f"`sched.warmup_epochs={warm}` leaves no epoch for training at the full lr "
            f"(epochs={epochs}); use a value below {epochs}.",
            key="sched.warmup_epochs",
        )


def to_plain(cfg: DictConfig | dict) -> dict[str, Any]:
    """A resolved plain-Python copy of a config node."""
    if isinstance(cfg, dict):
        return dict(cfg)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
