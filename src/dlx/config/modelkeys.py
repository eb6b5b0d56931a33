"""Which `model.*` keys each model dlx ships takes, known without importing torch.

A preset written for one model and used with another (`experiment=underfitting model=cnn`:
the preset sets `model.width`, which LeNet does not have) is bad config: exit 2 naming the key,
not a traceback from the model's constructor. The keys are the model's own YAML
(`conf/model/*.yaml`) plus the arguments of its constructor, read from the source with `ast`.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.errors import UserError

# passed by dlx itself (from the data and the reg group), not model.* keys unless the model's
# own YAML has one (cnn's `batchnorm`: on by default there, reg=batchnorm turns it on anywhere)
_GIVEN = frozenset({"self", "in_shape", "out_dim", "dropout", "batchnorm"})
# read by the pipeline for any model (dlx.models.RUN_KEYS), never passed to the constructor
_RUN = frozenset({"init", "min_input_size", "unfreeze_at_epoch"})


@functools.cache
def _shipped() -> dict[str, tuple[str, frozenset[str]]]:
    """_target_ -> (option name, the keys of its YAML) for conf/model/*.yaml."""
    from dlx.config.compose import conf_dir

    out = {}
    for path in sorted((conf_dir() / "model").glob("*.yaml")):
        node = OmegaConf.load(path)
        target = str(node.get("_target_", ""))
        if target.startswith("dlx.models."):
            out[target] = (path.stem, frozenset(str(k) for k in node.keys()))
    return out


@functools.cache
def _constructor_args(target: str) -> frozenset[str] | None:
    """The keyword arguments of a dlx model class's __init__ (None: **kwargs or not found)."""
    module, _, cls = target.rpartition(".")
    path = Path(__file__).resolve().parents[1].joinpath(*module.split(".")[1:]).with_suffix(".py")
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    a = item.args
                    if a.kwarg is not None:
                        return None
                    return frozenset(x.arg for x in [*a.args, *a.kwonlyargs])
    return None


def check_model_keys(cfg: DictConfig | Any) -> None:
    """UserError naming the first `model.*` key the chosen (shipped) model does not take."""
    model = cfg.get("model") if isinstance(cfg, DictConfig) else None
    if not isinstance(model, DictConfig):
        return
    target = str(model.get("_target_", ""))
    if target not in _shipped():
        return  # a user's own model (--config-dir): its constructor is the judge
    option, yaml_keys = _shipped()[target]
    args = _constructor_args(target)
    if args is None:
        return
    allowed = yaml_keys | ((args | _RUN) - _GIVEN)  # the model's YAML may set a given one
    for key in model.keys():
        if str(key) not in allowed:
            choices = ", ".join(sorted(k for k in allowed if k != "_target_"))
            others = [name for t, (name, keys) in _shipped().items() if key in keys and t != target]
            hint = f" (`model.{key}` belongs to model={'|'.join(others)})" if others else ""
            raise UserError(
                f"`model.{key}` is not a key of model={option}{hint}: a preset or override made "
                f"for another model sets it. model={option} takes: {choices}. Drop the key, or "
                "pick the model it was made for.",
                key=f"model.{key}",
            )
