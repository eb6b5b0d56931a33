"""`dlx train --resume RUN_DIR`: continue a run in its own folder from checkpoints/last.pt,
with no new Hydra run; only values (e.g. `epochs=20`) may change, never config groups."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.config.compose import groups, hydra_error
from dlx.errors import UserError
from dlx.launch.runfolders import check_writable
from dlx.record import names
from dlx.record import status as st

# model.* / data.* keys a resumed run may still change: they do not change what it learns from
# or the network it continues.
SAME_RUN = ("model.unfreeze_at_epoch",)


def _resume_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Apply `key=value` overrides to a run's saved config. Its config groups stay: a resumed
    run is the same model, data and optimizer; values such as `epochs=20` may change."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise hydra_error(exc, overrides) from None
    known = groups()
    OmegaConf.set_struct(cfg, True)
    for o in parsed:
        key = o.key_or_group
        if o.is_sweep_override():
            raise UserError(
                f"`{o.input_line}`: `--resume` continues one run; it cannot sweep.", key=key
            )
        if key == "seed" or key.split(".")[0] in ("data", "model") and key not in SAME_RUN:
            what = {"seed": "data split, the init and the batch order", "data": "data"}.get(
                key.split(".")[0], "model"
            )
            raise UserError(
                f"`{o.input_line}`: `{key}` makes it a different experiment (the {what} "
                "would change), not a continuation. Start a new run with it instead; a resumed "
                "run may change values such as epochs=20, opt.lr or early_stopping.*.",
                key=key,
            )
        if key.split(".")[0] == "hydra" or key in known or o.is_delete():
            raise UserError(
                f"`{o.input_line}`: a resumed run keeps its folder and its config groups "
                f"({', '.join(sorted(known - {'hydra'}))}); only values can change, "
                "e.g. epochs=20.",
                key=key,
            )
        try:
            if o.is_add() or o.is_force_add():
                OmegaConf.set_struct(cfg, False)
            OmegaConf.update(cfg, key, o.value(), merge=True)
        except Exception as exc:
            raise hydra_error(exc, overrides) from None
        finally:
            OmegaConf.set_struct(cfg, True)
    return cfg


def resume(
    run_dir: str,
    overrides: list[str],
    config_dir: str | None = None,
    trust_config: bool = False,
) -> dict[str, Any]:
    """Continue a run in its own folder from checkpoints/last.pt (no new Hydra run).

    The folder is opened by `launch.reopen.open_run`: its config checked before anything is
    built from it (only what dlx ships, the targets of `config_dir` (the run's own
    --config-dir, given again), or everything with `trust_config`), nothing in it written
    through a symlink."""
    from dlx.launch.reopen import open_run

    where = f"`--resume {run_dir}`"
    if not str(run_dir).strip():
        raise UserError(
            "`--resume` needs a run folder, e.g. `dlx train --resume outputs/DATE/TIME` "
            "(an empty one would start a new run instead).",
            key="--resume",
        )
    from dlx.training.distributed import torchrun_env

    if torchrun_env():
        raise UserError(
            f"{where} under torchrun: resume without torchrun; the run's own "
            "trainer.devices starts its processes again.",
            key="--resume",
        )
    edit = (lambda cfg: _resume_overrides(cfg, overrides)) if overrides else None
    run = open_run(
        run_dir,
        key="--resume",
        config_dir=config_dir,
        trust_config=trust_config,
        edit=edit,
        for_training=True,
    )
    if not names.last(run.path).is_file():
        raise UserError(
            f"{where}: the run has no checkpoints/last.pt to continue from (it stopped "
            "before its first checkpoint); start it again instead.",
            key="--resume",
        )
    check_writable(names.checkpoints(run.path), "--resume")
    return _continue(run.path, run.cfg, _saved_choices(run.path), bool(overrides))


def _saved_choices(run_path: Path) -> dict[str, str]:
    """The run's config-group choices, from its .hydra/hydra.yaml (for display only)."""
    from dlx.record.read import load_yaml

    hydra_yaml = names.hydra_yaml(run_path)
    try:
        saved = OmegaConf.create(load_yaml(hydra_yaml)) if hydra_yaml.is_file() else None
        found = OmegaConf.select(saved, "hydra.runtime.choices", default=None) if saved else None
        return {
            str(k): str(v)
            for k, v in (found or {}).items()
            if not str(k).startswith("hydra") and v is not None
        }
    except Exception:  # noqa: BLE001 (a damaged hydra.yaml: the choices are for display only)
        return {}


def _continue(
    run_path: Path, cfg: DictConfig, choices: dict[str, str], changed: bool
) -> dict[str, Any]:
    """Train on from last.pt holding the run lock, logging to the run's train.log; `changed`:
    the config now differs from the folder's (later resumes and `dlx eval` see the new one)."""
    import time

    from dlx.errors import explain
    from dlx.launch.failsafe import record_stop
    from dlx.launch.preflight import passes_preflight
    from dlx.record.atomic import write_text
    from dlx.record.lock import run_lock
    from dlx.training.loop import fit
    from dlx.training.signals import StopRequested

    since = time.time()
    with StopRequested(), run_lock(run_path):  # nothing is written before the lock is held
        handler = logging.FileHandler(run_path / names.TRAIN_LOG)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            if cfg.trainer.devices > 1:
                from dlx.training.distributed import fit_parallel

                metrics = fit_parallel(
                    cfg, run_path, choices=choices, resume=True, check=passes_preflight
                )
            else:
                metrics = fit(cfg, run_path, resume=True, choices=choices, check=passes_preflight)
            if changed:
                write_text(names.config(run_path), OmegaConf.to_yaml(cfg))
            return metrics
        except KeyboardInterrupt:  # a second Ctrl-C: the run still says it was interrupted
            record_stop(run_path, since, st.INTERRUPTED, "stopped by a second Ctrl-C", choices)
            raise
        except UserError:
            raise
        except Exception as exc:
            record_stop(run_path, since, st.FAILED, explain(exc)[1], choices)
            raise
        finally:
            root.removeHandler(handler)
            handler.close()
