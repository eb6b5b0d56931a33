"""Sweeps on the engines users already run: Ray (`pip install 'dlx[ray]'`) and SLURM through
submitit (`pip install 'dlx[slurm]'`; tested with its local executor). Skipped when the extra
is not installed; CI installs both."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import FAST, read_metrics, run_dlx

TRIAL = [*FAST, "device=cpu", "data.limit=64", "epochs=1", "opt.lr=0.01,0.001"]


def needs(module: str, extra: str):
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None, reason=f"needs `pip install 'dlx[{extra}]'`"
    )


def assert_two_trials(sweep: Path) -> None:
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    lrs = sorted(o for r in rows for o in r["overrides"].split() if o.startswith("opt.lr="))
    assert lrs == ["opt.lr=0.001", "opt.lr=0.01"]
    assert all(r["status"] == "completed" for r in rows), rows
    for r in rows:
        trial = Path(r["folder"])
        assert trial.parent == sweep
        assert read_metrics(trial)["status"] == "completed"
        assert list(trial.glob("events.out.tfevents.*"))


def launcher_target(sweep: Path) -> str:
    return str(OmegaConf.load(sweep / "multirun.yaml").hydra.launcher._target_)


@needs("hydra_plugins.hydra_ray_launcher", "ray")
def test_ray_sweep_on_a_local_cluster(tmp_path):
    """The test starts Ray with 2 CPUs; `hydra/launcher=ray_cluster` joins it (the preset
    the README shows for a cluster that is already running)."""
    import ray

    ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        address = ctx.address_info["gcs_address"]
        sweep = tmp_path / "sweep"
        proc = run_dlx(
            [
                "sweep",
                "hydra/launcher=ray_cluster",
                f"hydra.launcher.ray.init.address={address}",
                *TRIAL,
                f"hydra.sweep.dir={sweep}",
            ],
            tmp_path,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    finally:
        ray.shutdown()
    assert launcher_target(sweep).endswith("RayLauncher")
    assert_two_trials(sweep)
    assert "sweep: 2 trials" in proc.stdout


@needs("hydra_plugins.hydra_submitit_launcher", "slurm")
def test_submitit_local_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_dlx(
        ["sweep", "hydra/launcher=submitit_local", *TRIAL, f"hydra.sweep.dir={sweep}"],
        tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert launcher_target(sweep).endswith("LocalLauncher")
    assert (sweep / ".submitit").is_dir()  # submitit ran the trials as its own jobs
    assert_two_trials(sweep)


@needs("hydra_plugins.hydra_submitit_launcher", "slurm")
def test_slurm_preset_asks_one_gpu_per_rank():
    """No SLURM here: check what `hydra/launcher=slurm` would submit."""
    from hydra import compose, initialize_config_dir

    from dlx.config.compose import conf_dir, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=slurm", "trainer.devices=4"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node == 4 and launcher.tasks_per_node == 1
