"""`dlx sweep`: grid, Optuna and joblib sweeps, the ranked table, summary.csv, failed trials,
and every trial's HParams inside its own TensorBoard run."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FAST, run_dlx

TINY = ["data.limit=300", *FAST]  # a few hundred digits: seconds per trial


def read_summary(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def trial_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir())


def sweep_in_process(args: list[str]):
    """`dlx sweep ARGS` in this process (no second torch import): (exit code, output)."""
    from dlx.cli.app import app

    result = CliRunner().invoke(app, ["sweep", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("grid") / "sweep"
    proc = run_dlx(
        [
            "sweep",
            "opt=adam,sgd",
            "opt.lr=0.1,0.01",
            "epochs=2",
            *TINY,
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=sweep_dir.parent,
        check=0,
    )
    return sweep_dir, proc.stdout


def test_grid_sweep_runs_every_combination_and_ranks_them(grid):
    sweep_dir, out = grid
    assert len(trial_dirs(sweep_dir)) == 4
    rows = read_summary(sweep_dir)
    assert len(rows) == 4
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    assert {tuple(r["overrides"].split()[:2]) for r in rows} == {
        ("opt=adam", "opt.lr=0.1"),
        ("opt=adam", "opt.lr=0.01"),
        ("opt=sgd", "opt.lr=0.1"),
        ("opt=sgd", "opt.lr=0.01"),
    }
    best_vals = [float(r["best_val"]) for r in rows]
    assert best_vals == sorted(best_vals), "ranked by val/loss, lowest first"
    assert all(r["status"] == "completed" and r["epochs"] == "2" and r["test_acc"] for r in rows)
    assert "sweep: 4 trials ranked by val/loss" in out
    best = rows[0]["overrides"].split()
    assert f"reproduce it: dlx train {best[0]} {best[1]}" in out, "the best trial's overrides"


def test_each_trial_fills_hparams_inside_its_own_run(grid):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import metadata

    sweep_dir, _ = grid
    event_dirs = {p.parent for p in sweep_dir.rglob("events.out.tfevents.*")}
    assert event_dirs == set(trial_dirs(sweep_dir)), "no stray sub-run next to the trials"
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(sweep_dir))
    mux.Reload()
    assert sorted(mux.Runs()) == ["0", "1", "2", "3"]
    content = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    lrs = set()
    for run in mux.Runs():
        start = metadata.parse_session_start_info_plugin_data(
            content[run]["_hparams_/session_start_info"]
        )
        assert {"opt", "opt.lr", "batch_size"} <= set(start.hparams)
        lrs.add(start.hparams["opt.lr"].number_value)
        assert "_hparams_/experiment" in content[run]
    assert lrs == {0.1, 0.01}


def test_a_second_sweep_into_a_used_folder_is_refused_and_leaves_it_untouched(grid):
    sweep_dir, _ = grid
    before = {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("*") if p.is_file()}
    code, out = sweep_in_process(
        ["opt=adam,sgd", "epochs=1", *TINY, f"hydra.sweep.dir={sweep_dir}"]
    )
    assert code == 2
    assert "hydra.sweep.dir" in out and "already holds a sweep" in out
    after = {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("*") if p.is_file()}
    assert after == before


def test_sweeps_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    import datetime

    from omegaconf import OmegaConf

    from dlx.launch.runfolders import fresh_folder as _fresh_folder

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(datetime, "datetime", Frozen)
    cfg = OmegaConf.create({"name": "x"})
    root = tmp_path / "multirun"
    first = _fresh_folder(["opt=adam,sgd"], cfg, "hydra.sweep.dir", root)
    second = _fresh_folder(["opt=adam,sgd"], cfg, "hydra.sweep.dir", root)
    assert first[-1] == f"hydra.sweep.dir='{root / '2026-01-02' / '03-04-05_x'}'"
    assert second[-1] == f"hydra.sweep.dir='{root / '2026-01-02' / '03-04-05_x-2'}'"
    mine = ["hydra.sweep.dir=mine"]
    assert _fresh_folder(mine, cfg, "hydra.sweep.dir", root) == mine


def test_diverging_trial_is_marked_failed_and_the_sweep_succeeds(tmp_path):
    sweep_dir = tmp_path / "sweep"
    code, out = sweep_in_process(
        ["opt.lr=1e-3,1e6", "epochs=3", *TINY, f"hydra.sweep.dir={sweep_dir}"]
    )
    assert code == 0, out
    rows = {r["overrides"].split()[0]: r for r in read_summary(sweep_dir)}
    assert rows["opt.lr=0.001"]["status"] == "completed" and rows["opt.lr=0.001"]["rank"] == "1"
    bad = rows["opt.lr=1000000.0"]
    assert (
        bad["status"] == "failed (diverged)"
        and bad["best_val"] == ""
        and "divergence" in bad["error"]
    )
    assert "failed (diverged)" in out


def test_sweep_exits_1_when_no_trial_succeeds(tmp_path):
    sweep_dir = tmp_path / "sweep"
    code, _ = sweep_in_process(
        ["opt.lr=1e6,2e6", "epochs=1", *TINY, f"hydra.sweep.dir={sweep_dir}"]
    )
    assert code == 1
    assert [r["status"] for r in read_summary(sweep_dir)] == ["failed (diverged)"] * 2


def test_optuna_search_explores_the_preset_space(tmp_path):
    sweep_dir = tmp_path / "sweep"
    code, out = sweep_in_process(
        [
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=4",
            "epochs=2",
            *TINY,
            f"hydra.sweep.dir={sweep_dir}",
        ]
    )
    assert code == 0, out
    rows = read_summary(sweep_dir)
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    for r in rows:
        params = dict(o.split("=", 1) for o in r["overrides"].split())
        assert 1e-4 <= float(params["opt.lr"]) <= 1e-1
        assert params["batch_size"] in ("32", "64", "128")
        assert 0.0 <= float(params["reg.dropout"]) <= 0.5
        assert float(params["reg.weight_decay"]) in (0.0, 1e-5, 1e-4, 1e-3)
    assert (sweep_dir / "optimization_results.yaml").is_file()
    results = (sweep_dir / "optimization_results.yaml").read_text()
    assert rows[0]["best_val"][:6] in results, "Optuna's best is the table's best (same objective)"


def test_optuna_direction_follows_the_monitored_metric():
    from hydra import compose, initialize_config_dir

    from dlx.config.compose import conf_dir, register_resolvers
    from dlx.sweeps.summary import SweepSummary

    register_resolvers()
    for monitor, direction in (("val/loss", "minimize"), ("val/acc", "maximize")):
        with initialize_config_dir(str(conf_dir()), version_base="1.3", job_name="train"):
            cfg = compose(
                "config",
                overrides=["hparams_search=optuna", f"early_stopping.monitor={monitor}"],
                return_hydra_config=True,
            )
        SweepSummary().on_multirun_start(cfg)
        assert cfg.hydra.sweeper.direction.name == direction


def test_joblib_runs_trials_in_parallel_with_a_share_of_the_cores(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_dlx(
        [
            "sweep",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "opt=adam,sgd",
            "epochs=2",
            *TINY,
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=tmp_path,
        check=0,
    )
    rows = read_summary(sweep_dir)
    assert sorted(r["overrides"].split()[0] for r in rows) == ["opt=adam", "opt=sgd"]
    assert all(r["status"] == "completed" for r in rows)
    from dlx.launch.hydra_app import usable_cores

    share = max(1, usable_cores() // 2)
    for trial in trial_dirs(sweep_dir):
        assert f"torch threads: {share} " in (trial / "train.log").read_text()
    # one line a trial from the workers; no joblib launcher lines, no trial's summary box
    assert proc.stdout.count("| best so far") == 2, proc.stdout
    assert "Joblib" not in proc.stdout and "dlx run summary" not in proc.stdout


def test_joblib_workers_share_the_cores_this_process_may_use_not_the_machines(monkeypatch):
    """taskset / a cpuset of 2 cores on a 16-core machine: 2 workers get 1 thread each, not 8
    (16 threads fighting over 2 cores)."""
    from omegaconf import OmegaConf

    from dlx.launch import hydra_app

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    joblib = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"}
    hc = OmegaConf.create({"launcher": {**joblib, "n_jobs": 2}})
    assert hydra_app.usable_cores() == 2
    assert hydra_app._trial_threads(hc) == 1
    hc.launcher.n_jobs = -1  # joblib's "every core": one worker a usable core
    assert hydra_app._trial_threads(hc) == 1
    basic = OmegaConf.create({"launcher": {"_target_": "BasicLauncher"}})
    assert hydra_app._trial_threads(basic) is None


def _fake_trial(sweep_dir: Path, name: str, overrides: list[str], metrics: dict) -> None:
    (sweep_dir / name / ".hydra").mkdir(parents=True)
    (sweep_dir / name / ".hydra" / "overrides.yaml").write_text(
        "".join(f"- {o}\n" for o in overrides)
    )
    (sweep_dir / name / "metrics.json").write_text(json.dumps(metrics))


def test_summary_marks_a_crashed_trial_failed_and_ranks_accuracy_highest_first(tmp_path):
    from dlx.sweeps.summary import collect, rank, write_csv

    def ok(acc):
        return {
            "status": "completed",
            "monitor": "val/acc",
            "best_value": acc,
            "epochs_run": 3,
            "val": {"loss": 1.0, "acc": acc},
            "test": {"loss": 1.0, "acc": acc},
        }

    _fake_trial(tmp_path, "0", ["model.width=8"], ok(0.5))
    _fake_trial(
        tmp_path, "1", ["model.width=16"], {"status": "failed", "error": "RuntimeError: boom"}
    )
    _fake_trial(tmp_path, "2", ["model.width=32"], ok(0.9))
    (tmp_path / "3" / ".hydra").mkdir(parents=True)  # a trial killed before it wrote anything
    (tmp_path / "3" / ".hydra" / "overrides.yaml").write_text("- model.width=64\n")
    rows = rank(collect(tmp_path))
    write_csv(rows, tmp_path / "summary.csv")
    table = [(r["trial"], r["status"]) for r in read_summary(tmp_path)]
    assert table == [("2", "completed"), ("0", "completed"), ("1", "failed"), ("3", "failed")]
    assert read_summary(tmp_path)[2]["error"] == "RuntimeError: boom"


def test_summary_leaves_out_trials_of_an_earlier_sweep_into_the_same_folder(tmp_path):
    import time

    from dlx.sweeps.summary import collect

    ok = {"status": "completed", "monitor": "val/loss", "best_value": 1.0, "epochs_run": 1}
    _fake_trial(tmp_path, "0", ["opt.lr=0.1"], ok)
    _fake_trial(tmp_path, "1", ["opt.lr=0.2"], ok)
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / "1" / ".hydra" / "overrides.yaml", (an_hour_ago, an_hour_ago))
    assert [r["trial"] for r in collect(tmp_path, since=time.time() - 60)] == ["0"]


def test_a_name_with_a_comma_names_the_folders_and_sweeps_nothing_more(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = sweep_in_process(
        ["name='a,b'", "opt.lr=0.1,0.01", "reg=[l2,dropout],l1", "epochs=1", *TINY]
    )
    assert code == 0, out
    assert "reg=[l2,dropout]" in out, "a list choice is text in the table, not rich markup"
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    assert sweep_dir.name.endswith("_a,b") and len(read_summary(sweep_dir)) == 4


def test_a_sweep_folder_set_in_the_users_config_is_kept(tmp_path, monkeypatch):
    conf = tmp_path / "myconf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text(
        "# @package _global_\nname: mine\nhydra:\n  sweep:\n    dir: mysweeps/${name}\n"
    )
    monkeypatch.chdir(tmp_path)
    args = ["--config-dir", str(tmp_path / "myconf"), "experiment=mine", "opt.lr=0.1,0.01"]
    code, out = sweep_in_process([*args, "epochs=1", *TINY])
    assert code == 0, out
    assert len(read_summary(tmp_path / "mysweeps" / "mine")) == 2
    assert not (tmp_path / "outputs").exists()


def test_a_sweep_that_never_starts_leaves_no_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _ = sweep_in_process(
        ["hparams_search=optuna", "hydra.sweeper.direction=sideways", "epochs=1", *TINY]
    )
    assert code != 0
    assert not (tmp_path / "outputs").exists()


# -- pruning, the study file, --resume (dlx's own sweeper, hydra_plugins.dlx_sweeper) ---------


def load_study(sweep_dir: Path, name: str = "dlx"):
    import optuna

    from dlx.sweeps.study import open_storage

    return optuna.load_study(
        study_name=name, storage=open_storage(str(sweep_dir / "optuna.journal"))
    )


def test_asha_prunes_trials_from_inside_the_run_and_says_so(tmp_path):
    """The acceptance command, scaled down (epochs=30 and 8 trials by hand: see the report)."""
    from optuna.trial import TrialState

    sweep_dir = tmp_path / "sweep"
    args = ["hparams_search=optuna", "hydra.sweeper.n_trials=4", "epochs=4"]
    args += ["hydra.sweeper.pruner=asha", *TINY, f"hydra.sweep.dir={sweep_dir}"]
    proc = run_dlx(["sweep", *args], cwd=tmp_path, check=0)
    rows = read_summary(sweep_dir)
    assert len(rows) == 4
    pruned = [r for r in rows if r["status"] == "pruned"]
    assert pruned, rows
    for r in pruned:
        m = json.loads((Path(r["folder"]) / "metrics.json").read_text())
        assert m["status"] == "pruned" and r["stopped_at"] == str(m["epochs_run"]) == r["epochs"]
        assert int(r["stopped_at"]) < 4 and r["test_acc"], "a pruned trial is still tested"
        assert f"pruned at epoch {r['stopped_at']}" in proc.stdout
    assert [r["status"] for r in rows][0] == "completed", "completed trials rank first"
    study = load_study(sweep_dir)
    states = {t.user_attrs["job"]: t.state for t in study.trials}
    for r in rows:
        want = TrialState.PRUNED if r["status"] == "pruned" else TrialState.COMPLETE
        assert states[int(r["trial"])] == want
    # every trial reported each epoch it ran, from its own run (the per-epoch hook)
    for t in study.trials:
        m = json.loads((sweep_dir / str(t.user_attrs["job"]) / "metrics.json").read_text())
        assert sorted(t.intermediate_values) == [h["epoch"] for h in m["history"]]
    assert "study: 4 trials" in proc.stdout and "optuna-dashboard" in proc.stdout
    assert (sweep_dir / "optimization_history.png").stat().st_size > 1000
    # importances only from 8 complete trials: the line says why there are none
    assert "parameter importances: not computed (" in proc.stdout
    assert not (sweep_dir / "param_importances.json").exists()
    # a pruned trial is tested but draws nothing at its end: the conv filters are logged at
    # the start only (a completed trial: at the start and the end)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for r in rows:
        events = EventAccumulator(r["folder"], size_guidance={"images": 0})
        events.Reload()
        tag = next(t for t in events.Tags()["images"] if t.startswith("filters/"))
        assert len(events.Images(tag)) == (1 if r["status"] == "pruned" else 2), r


def test_importances_name_the_evaluator_and_the_trials_they_read(tmp_path):
    import optuna

    from dlx.sweeps.report import IMPORTANCE_MIN, importance_line

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2 + 0 * t.suggest_int("n", 0, 3), 3)
    line = importance_line(study, 3, tmp_path)
    want = f"not computed (3 complete trials; PED-ANOVA needs {IMPORTANCE_MIN})"
    assert line == f"parameter importances: {want}"
    assert not (tmp_path / "param_importances.json").exists()
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2 + 0 * t.suggest_int("n", 0, 3), 17)
    line = importance_line(study, 20, tmp_path)
    assert line.startswith("parameter importances (PED-ANOVA, 20 complete trials): x "), line
    saved = json.loads((tmp_path / "param_importances.json").read_text())
    assert set(saved) == {"x", "n"} and saved["x"] > saved["n"]


def test_a_bad_pruner_is_refused_with_the_allowed_ones(tmp_path):
    proc = run_dlx(
        ["sweep", "hparams_search=optuna", "hydra.sweeper.pruner=fast", "epochs=1"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "hydra.sweeper.pruner" in proc.stderr and "asha" in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_kill_9_then_resume_finishes_the_grid_in_one_summary(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    sweep_dir = tmp_path / "sweep"
    args = ["opt=adam,sgd,rmsprop,adagrad", "epochs=4", "early_stopping.enabled=false"]
    args += [*TINY, f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlx", "sweep", *args], cwd=tmp_path, stdout=log, stderr=log, env=env
    )
    deadline = time.time() + 240
    best = sweep_dir / "1" / "checkpoints" / "best.pt"  # trial 1 has finished an epoch
    while time.time() < deadline and proc.poll() is None and not best.is_file():
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (sweep_dir / "0" / "metrics.json").is_file(), "trial 0 finished before the kill"
    assert (
        not (sweep_dir / "1" / "metrics.json").exists() and not (sweep_dir / "summary.csv").exists()
    )
    first = (sweep_dir / "0" / "metrics.json").read_text()
    out = run_dlx(["sweep", "--resume", str(sweep_dir)], cwd=tmp_path, check=0).stdout
    rows = read_summary(sweep_dir)
    assert len(rows) == 4 and all(r["status"] == "completed" and r["epochs"] == "4" for r in rows)
    assert {r["overrides"].split()[0] for r in rows} == {
        "opt=adam",
        "opt=sgd",
        "opt=rmsprop",
        "opt=adagrad",
    }
    assert (sweep_dir / "0" / "metrics.json").read_text() == first, "a finished trial is kept"
    assert "resuming from epoch" in (sweep_dir / "1" / "train.log").read_text() + out
    assert sorted(p.name for p in trial_dirs(sweep_dir)) == ["0", "1", "2", "3"]


def test_resume_refuses_a_folder_that_is_not_a_sweep(tmp_path):
    (tmp_path / "x").mkdir()
    proc = run_dlx(["sweep", "--resume", str(tmp_path / "x")], cwd=tmp_path)
    assert proc.returncode == 2 and "multirun.yaml" in proc.stderr


def test_resume_refuses_a_multirun_yaml_that_names_code(tmp_path):
    sweep = tmp_path / "s"
    (sweep).mkdir()
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    hydra: []\n    task: ['model._target_=os.system']\n"
        "  runtime:\n    choices: {}\n    config_sources: []\n"
    )
    proc = run_dlx(["sweep", "--resume", str(sweep)], cwd=tmp_path)
    assert proc.returncode == 2 and "names code" in proc.stderr


def test_a_sweep_mixing_tasks_ranks_within_each_and_shows_mse_as_mse(tmp_path, capsys):
    from dlx.sweeps.summary import collect, print_table, rank, write_csv

    def run(task, best, test):
        return {
            "status": "completed",
            "task": task,
            "monitor": "val/loss",
            "best_value": best,
            "epochs_run": 2,
            "val": {"loss": best},
            "test": test,
        }

    _fake_trial(
        tmp_path, "0", ["experiment=a"], run("classification", 0.5, {"loss": 0.5, "acc": 0.8})
    )
    _fake_trial(
        tmp_path, "1", ["experiment=b"], run("regression", 0.001, {"loss": 0.002, "mse": 0.002})
    )
    _fake_trial(
        tmp_path, "2", ["experiment=c"], run("classification", 0.3, {"loss": 0.3, "acc": 0.9})
    )
    rows = rank(collect(tmp_path))
    write_csv(rows, tmp_path / "summary.csv")
    got = [(r["trial"], r["task"], r["rank"]) for r in read_summary(tmp_path)]
    assert got == [
        ("2", "classification", "1"),
        ("0", "classification", "2"),
        ("1", "regression", "1"),
    ]
    assert read_summary(tmp_path)[2]["test_acc"] == "" and read_summary(tmp_path)[2]["test_mse"]
    print_table(rows, tmp_path)
    out = capsys.readouterr().out
    assert "2 classification trials" in out and "1 regression trials" in out
    acc_table, mse_table = out.split("1 regression trials")
    assert "test acc" in acc_table and "0.002" not in acc_table
    assert "test mse" in mse_table and "0.002" in mse_table


def test_joblib_and_ray_trials_report_into_one_study_file(tmp_path):
    """Two sweeps, one on joblib workers (2 trials at once) and one on a local Ray cluster,
    share one study (hydra.sweeper.storage): every trial's epochs were reported into it from
    the worker process that ran the trial."""
    import importlib.util

    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
        pytest.skip("needs `pip install 'dlx[ray]'`")
    import ray

    journal = tmp_path / "shared.journal"
    common = ["hparams_search=optuna", "hydra.sweeper.n_trials=2", "epochs=2", *TINY]
    common += [f"hydra.sweeper.storage={journal}", "device=cpu"]
    joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]
    run_dlx(
        ["sweep", *common, *joblib, f"hydra.sweep.dir={tmp_path / 'joblib'}"], tmp_path, check=0
    )
    ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        address = ctx.address_info["gcs_address"]
        ray_args = ["hydra/launcher=ray_cluster", f"hydra.launcher.ray.init.address={address}"]
        run_dlx(
            ["sweep", *common, *ray_args, f"hydra.sweep.dir={tmp_path / 'ray'}"],
            tmp_path,
            timeout=600,
            check=0,
        )
    finally:
        ray.shutdown()
    import optuna

    from dlx.sweeps.study import open_storage

    study = optuna.load_study(study_name="dlx", storage=open_storage(str(journal)))
    assert len(study.trials) == 4
    by_sweep: dict[str, list] = {}
    for t in study.trials:
        by_sweep.setdefault(Path(t.user_attrs["sweep_dir"]).name, []).append(t)
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert sorted(t.intermediate_values) == [1, 2], "reported by the trial's own process"
    assert sorted(by_sweep) == ["joblib", "ray"] and all(len(v) == 2 for v in by_sweep.values())
    for name in ("joblib", "ray"):
        assert len(read_summary(tmp_path / name)) == 2
        assert not (tmp_path / name / "optuna.journal").exists()
