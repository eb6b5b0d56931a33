"""`dlx sweep --resume SWEEP_DIR`: continue a sweep that was killed or interrupted.

The sweep folder's multirun.yaml holds the overrides it was started with. They are given to
Hydra again, with the same folder and `hydra.sweeper.resume=true`, through dlx's sweeper (a
plain grid sweep goes through `hydra/sweeper=dlx_grid`, which runs the grid in the order
Hydra's own grid sweeper did, so trial N is folder N again). The sweeper keeps every trial
with a final metrics.json, continues the interrupted ones from their own checkpoints/last.pt
and runs those never started; the summary then covers them all.

multirun.yaml is data: overrides that would name code (`_target_`, logging factories, shell
set-up lines of a launcher, environment variables) are refused, and a sweep made with a
`--config-dir` needs that folder given again.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from dlx.errors import UserError
from dlx.record import names

# Hydra overrides a resumed sweep takes over from multirun.yaml (anything else is refused).
_HYDRA_KEPT = ("hydra.sweeper.", "hydra.launcher.", "hydra/launcher=", "hydra/sweeper")
_HYDRA_DROPPED = ("hydra.sweep.dir=", "hydra.mode=", "hydra.sweeper.resume=", "hydra.verbose=")
_CODE = ("_target_", "_partial_", "_args_", "hydra.launcher.setup", "env_set", "callbacks")


def resume_sweep(sweep_dir: str, config_dir: str | None = None) -> None:
    from dlx.launch.hydra_app import run_hydra
    from dlx.launch.preflight import preflight
    from dlx.launch.runfolders import check_writable, quote

    path = Path(sweep_dir)
    where = f"`--resume {sweep_dir}`"
    if not path.is_dir():
        raise UserError(f"{where}: there is no such folder.", key="--resume")
    saved = path / names.MULTIRUN
    if not saved.is_file():
        raise UserError(
            f"{where}: not a sweep folder (no multirun.yaml). Give the folder of a sweep, "
            "e.g. outputs/multirun/DATE/TIME; a single run resumes with `dlx train --resume`.",
            key="--resume",
        )
    check_writable(path, "--resume")
    try:
        mr = OmegaConf.load(saved).hydra
        task = [str(o) for o in mr.overrides.task]
        hydra = [str(o) for o in mr.overrides.hydra]
        choices = dict(mr.runtime.choices or {})
        sources = list(mr.runtime.config_sources or [])
    except Exception as exc:  # a damaged multirun.yaml
        raise UserError(f"{where}: cannot read multirun.yaml: {exc}", key="--resume") from None
    if config_dir is None and any(s.get("provider") == "command-line" for s in sources):
        raise UserError(
            f"{where}: the sweep used configs of your own (--config-dir); give the folder "
            "again: `dlx sweep --resume SWEEP_DIR --config-dir DIR`.",
            key="--config-dir",
        )
    for o in task + hydra:
        if any(c in o.partition("=")[0] for c in _CODE):
            raise UserError(
                f"{where}: multirun.yaml has `{o}`, which names code; dlx does not run what a "
                "sweep folder says. Start that sweep again by hand.",
                key="--resume",
            )
    kept = []
    for o in hydra:
        bare = o.lstrip("+~")
        if bare.startswith(_HYDRA_DROPPED):
            continue
        if not bare.startswith(_HYDRA_KEPT):
            raise UserError(
                f"{where}: multirun.yaml has `{o}`; a resumed sweep takes over only "
                "hydra.sweeper.*, hydra.launcher.* and the launcher/sweeper choices.",
                key="--resume",
            )
        if bare.startswith("hydra.sweeper.max_batch_size="):  # the grid sweeper's own key
            continue
        kept.append(o)
    sweeper = str(choices.get("hydra/sweeper") or "basic")
    if sweeper == "basic":
        kept.append("hydra/sweeper=dlx_grid")
    elif sweeper not in ("optuna", "dlx_grid"):
        raise UserError(
            f"{where}: the sweep ran with hydra/sweeper={sweeper}; dlx resumes its own "
            "sweeps (grid, optuna, dlx_grid).",
            key="--resume",
        )
    overrides = [
        *task,
        *kept,
        f"hydra.sweep.dir={quote(str(path.resolve()))}",
        "hydra.sweeper.resume=true",
    ]
    from dlx.config.trust import check_sweep_overrides

    check_sweep_overrides(task, config_dir, str(saved))  # before anything is built from it
    preflight(overrides, True, config_dir)
    run_hydra(overrides, True, config_dir)
