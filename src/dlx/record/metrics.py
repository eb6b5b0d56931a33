"""metrics.json: how a run went, written by the loop (and by the failsafe when a run cannot
end normally) and read back by `dlx runs`, `dlx compare`, `dlx eval` and the sweep table.

The loop writes the summary first and the big keys last (`config`, `diagnosis`, `history`),
indent=2, so a reader of the table parses the summary only. `config` is the composed config
as flat dotted keys (`flat_config`): `dlx runs --filter opt.lr<0.01` reads it without YAML.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlx.record import names
from dlx.record.atomic import write_json

# The keys written last, in this order (readers of the summary stop before them).
TAIL_KEYS = ("config", "diagnosis", "history")


def write_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> None:
    """RUN/metrics.json, atomically (indent=2; what JSON does not know is written as str)."""
    write_json(names.metrics(run_dir), metrics)


def read_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """The whole metrics.json of a run dlx wrote itself (None: none, unreadable, not an
    object). For folders from elsewhere use the bounded readers of `dlx.record.read`."""
    try:
        data = json.loads(names.metrics(run_dir).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"opt": {"lr": 0.1}} -> {"opt.lr": 0.1}; lists stay values."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and v:
                out.update(flatten(v, key + "."))
            else:
                out[key] = v
    return out


def flat_config(cfg: Any) -> dict[str, Any]:
    """A composed config as flat dotted keys, for metrics.json (`dlx runs --filter opt.lr<0.01`
    and `dlx compare` read it instead of parsing YAML); hydra.* left out."""
    from omegaconf import OmegaConf

    try:
        tree = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation that only resolves inside Hydra: keep it as text
        tree = OmegaConf.to_container(cfg, resolve=False)
    return {k: v for k, v in flatten(tree).items() if not k.startswith("hydra.")}
