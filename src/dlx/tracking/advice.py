"""The verdict's remedies as commands a student can paste: `dlx train <the run's own overrides
with the change applied>`, one alternative per line.

A remedy (`lower_lr`, `capacity`, ...; see `dlx.tracking.verdict`) becomes concrete overrides
for the run's own config and model (`model.width` only for models that have it; switching to
`model=cnn` drops the overrides only an MLP takes). Each command is checked by the same
preflight as `dlx train` before it is offered: one that would be refused is never shown.
"""

from __future__ import annotations

import functools
import logging
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from dlx.record import names

log = logging.getLogger("dlx")

AUG_FOR = {"cifar10": "aug=cifar", "imagefolder": "aug=flip"}  # digits, mnist...: aug=mnist
ADAPTIVE = ("Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam")
IMAGE_DATA = ("digits", "mnist", "fashion_mnist", "cifar10", "imagefolder")


def _sel(cfg: Any, key: str, default: Any = None) -> Any:
    return OmegaConf.select(cfg, key, default=default) if cfg is not None else default


def _num(v: float) -> str:
    return f"{v:.3g}"


class Knobs:
    """Turn remedy names into changes (lists of overrides) for one run's config."""

    def __init__(self, cfg: Any, task: str) -> None:
        self.cfg, self.task = cfg, task
        self.model = str(_sel(cfg, "model._target_", "")).rsplit(".", 1)[-1]
        self.data = str(_sel(cfg, "data.name", "") or "")
        opt = str(_sel(cfg, "opt._target_", "")).rsplit(".", 1)[-1]
        self.adaptive = opt in ADAPTIVE

    def changes(self, remedy: str) -> list[list[str]]:
        return getattr(self, remedy)()

    def _lr_key(self) -> tuple[str, float | None]:
        if _sel(self.cfg, "sched.max_lr") is not None:  # onecycle: its peak sets the rate
            return "sched.max_lr", float(_sel(self.cfg, "sched.max_lr"))
        lr = _sel(self.cfg, "opt.lr")
        return "opt.lr", float(lr) if lr is not None else None

    def lower_lr(self) -> list[list[str]]:
        key, lr = self._lr_key()
        return [[f"{key}={_num(lr / 10)}"]] if lr else []

    def raise_lr(self) -> list[list[str]]:
        key, lr = self._lr_key()
        return [[f"{key}={_num(lr * 10)}"]] if lr else []

    def lower_lr3(self) -> list[list[str]]:
        key, lr = self._lr_key()
        return [[f"{key}={_num(lr / 3)}"]] if lr else []

    def raise_lr3(self) -> list[list[str]]:
        key, lr = self._lr_key()
        return [[f"{key}={_num(lr * 3)}"]] if lr else []

    def longer(self) -> list[list[str]]:
        epochs = _sel(self.cfg, "epochs")
        return [[f"epochs={2 * int(epochs)}"]] if epochs else []

    def capacity(self) -> list[list[str]]:
        """More units of the same model: only keys this model has."""
        change = []
        if self.model == "MLP":
            width, depth = (
                int(_sel(self.cfg, "model.width", 128)),
                int(_sel(self.cfg, "model.depth", 2)),
            )
            change.append(f"model.width={max(64, 4 * width)}")
            if depth < 2:
                change.append("model.depth=2")
        elif self.model == "ShallowNN":
            change.append(f"model.hidden={max(256, 4 * int(_sel(self.cfg, 'model.hidden', 2000)))}")
        elif self.model == "LeNet":
            channels = list(_sel(self.cfg, "model.channels", [6, 16]))
            change.append("model.channels=[" + ",".join(str(4 * int(c)) for c in channels) + "]")
        elif self.model == "ResNet":
            if _sel(self.cfg, "model.freeze", "none") != "none":
                change.append("model.freeze=none")  # a frozen backbone limits what it can fit
            elif _sel(self.cfg, "model.arch") == "resnet18":
                change.append("model.arch=resnet34")
        return [change] if change else []

    def bigger_model(self) -> list[list[str]]:
        """An MLP on images: a conv net sees shapes an MLP must learn pixel by pixel."""
        if self.model == "MLP" and self.task == "classification" and self.data in IMAGE_DATA:
            return [["model=cnn"]]
        return []

    def less_reg(self) -> list[list[str]]:
        change = []
        if float(_sel(self.cfg, "reg.dropout", 0) or 0):
            change.append("reg.dropout=0")
        if float(_sel(self.cfg, "reg.weight_decay", 0) or 0):
            change.append("reg.weight_decay=0")
        if float(_sel(self.cfg, "reg.l1", 0) or 0):
            change.append("reg.l1=0")
        return [change] if change else []

    def better_init(self) -> list[list[str]]:
        """The lecture's fix for the naive N(0, 1): Xavier for sigmoid/tanh, He for ReLU."""
        if _sel(self.cfg, "model.init") != "normal":
            return []
        act = _sel(self.cfg, "model.activation")
        return [["model.init=xavier" if act in ("sigmoid", "tanh") else "model.init=he"]]

    def relu(self) -> list[list[str]]:
        if _sel(self.cfg, "model.activation") in ("sigmoid", "tanh"):
            init = ["model.init=he"] if _sel(self.cfg, "model.init") == "normal" else []
            return [["model.activation=relu", *init]]
        return []

    def batchnorm(self) -> list[list[str]]:
        return [] if self._normed else [["reg.batchnorm=true"]]

    @property
    def _normed(self) -> bool:
        """Batch norm already on: `reg=batchnorm`, or the model's own (cnn's model.batchnorm)."""
        return bool(
            _sel(self.cfg, "reg.batchnorm", False) or _sel(self.cfg, "model.batchnorm", False)
        )

    def grad_clip(self) -> list[list[str]]:
        """Clipping bounds the gradient's norm; Adam-like optimizers divide the step by the
        gradient's own scale, so there a clipped gradient gives the same step: a no-op."""
        if _sel(self.cfg, "grad_clip") or self.adaptive:
            return []
        return [["grad_clip=1.0"]]

    def more_data(self) -> list[list[str]]:
        return [["data.limit=null"]] if _sel(self.cfg, "data.limit") is not None else []

    def augment(self) -> list[list[str]]:
        if self.task != "classification" or self.data not in IMAGE_DATA:
            return []
        if _sel(self.cfg, "aug.transforms"):
            return []  # already augmented
        return [[AUG_FOR.get(self.data, "aug=mnist")]]

    def regularize(self) -> list[list[str]]:
        dropout = float(_sel(self.cfg, "reg.dropout", 0) or 0)
        wd = float(_sel(self.cfg, "reg.weight_decay", 0) or 0)
        if not dropout and not wd and not self._normed:
            return [["reg=[l2,dropout]"]]
        return [
            [
                f"reg.dropout={min(0.5, max(0.3, dropout + 0.2)):g}",
                f"reg.weight_decay={max(wd * 10, 5e-4):g}",
            ]
        ]

    def early_stop(self) -> list[list[str]]:
        if not _sel(self.cfg, "early_stopping.enabled", True):
            return [["early_stopping.enabled=true", "early_stopping.patience=5"]]
        return []

    def lr_find(self) -> list[list[str]]:
        return [["<lr-find>"]]  # the command itself is built by `suggest`


@functools.cache
def _group_keys(group: str, option: str) -> frozenset[str] | None:
    """The top-level keys of conf/<group>/<option>.yaml (None: not a dlx option)."""
    from dlx.config.compose import conf_dir

    path = conf_dir() / group / f"{option}.yaml"
    if not path.is_file():
        return None
    node = OmegaConf.load(path)
    return frozenset(str(k) for k in node.keys()) if OmegaConf.is_dict(node) else None


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~").strip()


def apply_change(overrides: list[str], change: list[str]) -> list[str]:
    """The run's overrides with `change` applied: a key set again replaces its old value, a new
    config-group option drops the overrides of keys that option does not have."""
    from dlx.config.compose import conf_dir

    out = list(overrides)
    for item in change:
        key, _, value = item.partition("=")
        at = [i for i, o in enumerate(out) if _key(o) == key]
        old = out[at[0]] if at else ""
        prefix = old[: len(old) - len(old.lstrip("+"))]  # `+key=` stays `+key=`
        out = [o for o in out if _key(o) != key]
        if "." not in key and (conf_dir() / key).is_dir() and not value.startswith("["):
            keys = _group_keys(key, value)
            if keys is not None:  # e.g. model=cnn: the model.width/depth overrides go
                out = [o for o in out if not _foreign(o, key, keys)]
        out.insert(at[0] if at else len(out), prefix + item)  # where the user had it
    return out


def _foreign(override: str, group: str, keys: frozenset[str]) -> bool:
    name = _key(override)
    return name.startswith(group + ".") and name.split(".")[1] not in keys


def run_overrides(run_dir: str | Path | None) -> tuple[list[str] | None, str | None]:
    """The overrides the run was started with (Hydra's `.hydra/overrides.yaml`, data only) and
    the user's `--config-dir`, if any (from `.hydra/hydra.yaml`)."""
    if run_dir is None:
        return None, None
    try:
        overrides = [str(o) for o in OmegaConf.load(names.overrides(run_dir))]
    except Exception:
        return None, None
    config_dir = None
    try:
        sources = OmegaConf.load(names.hydra_yaml(run_dir)).hydra.runtime.config_sources
        for s in sources or []:
            if s.get("provider") == "command-line" and str(s.get("path", "")):
                config_dir = str(s.path).removeprefix("file://")
    except Exception:
        pass
    return overrides, config_dir


def command(verb: str, overrides: list[str], config_dir: str | None = None) -> str:
    """A command line the shell gives back exactly (`'reg=[l2,dropout]'` quoted)."""
    head = ["dlx", verb] + (["--config-dir", config_dir] if config_dir else [])
    return " ".join(shlex.quote(a) for a in [*head, *overrides])


def suggest(
    remedies: list[str],
    cfg: Any,
    task: str,
    overrides: list[str] | None,
    config_dir: str | None = None,
    limit: int = 4,
    check: Callable[[list[str], str | None], bool] | None = None,
) -> list[dict[str, Any]]:
    """[{command, overrides, change}] for the remedies, in order, each passing `check`
    (`dlx.launch.preflight.passes_preflight`: the command would start). Without a `check`
    only `dlx lr-find` is suggested: an untested `dlx train` line is never offered."""
    knobs = Knobs(cfg, task)
    base = [o for o in (overrides or []) if not _key(o).startswith("hydra.")]
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for remedy in remedies:
        for change in knobs.changes(remedy):
            if change == ["<lr-find>"]:
                if config_dir is None:
                    cmd = command("lr-find", base)
                    out.append({"command": cmd, "overrides": base, "change": [], "kind": "lr-find"})
                continue
            new = apply_change(base, change)
            if new == base or tuple(new) in seen or len(out) >= limit:
                continue
            seen.add(tuple(new))
            if check is None or not check(new, config_dir):
                continue
            out.append(
                {
                    "command": command("train", new, config_dir),
                    "overrides": new,
                    "change": change,
                    "kind": "train",
                }
            )
    return out
