"""Is it really better? `data.seed` (one split for every repeat), repeats grouped by
configuration with mean ± std and Welch's t-test, cross-validation folds, `compare --group`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import FAST, run_dlx

TINY = ["data.limit=200", *FAST]


def _split(overrides: list[str]):
    from dlx.config.compose import compose
    from dlx.data import build_data, data_seed
    from dlx.data.splits import split_indices

    cfg = compose(overrides)
    seed = data_seed(cfg)
    _, _, test = split_indices(1797, cfg.data.val_fraction, cfg.data.test_fraction, seed)
    return test, build_data(cfg.data, seed).test.tensors[0]


def test_data_seed_fixes_the_split_and_seed_alone_does_not_move_it():
    base_idx, base_x = _split(["data.seed=7", "seed=0"])
    other_idx, other_x = _split(["data.seed=7", "seed=3"])
    assert torch.equal(base_idx, other_idx), "seed alone must not move the test set"
    assert torch.equal(base_x, other_x)
    moved_idx, moved_x = _split(["data.seed=8", "seed=0"])
    assert not torch.equal(base_idx, moved_idx) and not torch.equal(base_x, moved_x)
    # by default data.seed follows seed: a single run is split as before
    follows_idx, _ = _split(["seed=7"])
    assert torch.equal(follows_idx, base_idx)


# ---------------------------------------------------------------------------- statistics


def test_welch_p_says_within_noise_for_overlapping_and_not_for_separated_groups():
    from dlx.sweeps.groups import describe, mean_std, welch_p

    assert welch_p([0.12, 0.15, 0.13], [0.13, 0.16, 0.12]) > 0.5  # the same noise
    assert welch_p([0.10, 0.11, 0.10], [0.20, 0.21, 0.22]) < 0.001  # clearly apart
    assert welch_p([0.1], [0.2, 0.3]) is None, "one value says nothing about noise"
    assert welch_p([0.5, 0.5], [0.5, 0.5]) == 1.0 and welch_p([0.5, 0.5], [0.6, 0.6]) == 0.0
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == 1.0  # the sample std (n - 1)
    assert describe([1.0, 2.0, 3.0]) == "2 ± 1" and describe([]) == "-"


def _fake_trial(sweep_dir: Path, name: str, overrides: list[str], value, status="completed"):
    (sweep_dir / name / ".hydra").mkdir(parents=True)
    (sweep_dir / name / ".hydra" / "overrides.yaml").write_text(
        "".join(f"- {o}\n" for o in overrides)
    )
    metrics = {"status": status, "monitor": "val/loss", "best_value": value, "epochs_run": 3}
    metrics |= {"task": "classification", "val": {"loss": value}, "test": {"acc": 1 - (value or 0)}}
    (sweep_dir / name / "metrics.json").write_text(json.dumps(metrics))


def test_repeats_are_grouped_ranked_by_mean_and_a_tie_is_marked(tmp_path, capsys):
    from dlx.sweeps.summary import collect, print_table, rank, write_groups

    values = {
        "opt.lr=0.1": [0.30, 0.31, 0.32],  # clearly worse
        "opt.lr=0.01": [0.12, 0.16, 0.13],  # the best mean
        "opt.lr=0.003": [0.13, 0.15, 0.14],  # within noise of it
    }
    n = 0
    for config, vs in values.items():
        for seed, v in enumerate(vs):
            _fake_trial(tmp_path, str(n), [config, "epochs=3", f"seed={seed}"], v)
            n += 1
    _fake_trial(tmp_path, str(n), ["opt.lr=0.1", "epochs=3", "seed=3"], None, "failed")
    rows = rank(collect(tmp_path))
    write_groups(rows, tmp_path)
    with open(tmp_path / "groups.csv", newline="") as f:
        groups = list(csv.DictReader(f))
    assert [g["configuration"] for g in groups] == [
        "opt.lr=0.01 epochs=3",
        "opt.lr=0.003 epochs=3",
        "opt.lr=0.1 epochs=3",
    ]
    assert [g["n"] for g in groups] == ["3", "3", "3"] and groups[2]["failed"] == "1"
    assert [g["tied_with_best"] for g in groups] == ["best", "True", "False"]
    assert float(groups[0]["best_val_mean"]) == pytest.approx(0.13667, abs=1e-4)
    assert float(groups[2]["p_vs_best"]) < 0.05 <= float(groups[1]["p_vs_best"])
    print_table(rows, tmp_path)
    out = capsys.readouterr().out
    assert "3 configurations ranked by mean val/loss" in out
    assert "0.1367 ± 0.021" in out and "≈ best" in out and "Welch's t-test, p ≥ 0.05" in out
    assert "reproduce it: dlx train opt.lr=0.01 epochs=3\n" in out, "the config, not a seed"
    assert "1 more within noise" in out


def test_repeat_overrides_become_the_sweepers_and_a_swept_seed_keeps_one_split():
    from dlx.errors import UserError
    from dlx.sweeps.repeats import with_repeats

    assert with_repeats(["opt.lr=0.1,0.01"], 3) == [
        "opt.lr=0.1,0.01",
        "hydra/sweeper=dlx_grid",
        "hydra.sweeper.repeat=3",
    ]
    assert with_repeats(["hparams_search=optuna", "repeat=2"]) == [
        "hparams_search=optuna",
        "hydra.sweeper.repeat=2",
    ]
    assert with_repeats(["seed=0,1,2", "opt.lr=0.1"]) == [
        "seed=0,1,2",
        "opt.lr=0.1",
        "++data.seed=0",
    ]
    assert with_repeats(["opt.lr=0.1,0.2"]) == ["opt.lr=0.1,0.2"], "no repeats: unchanged"
    for bad in (["repeat=0"], ["repeat=two"], ["seed=0,1", "repeat=2"]):
        with pytest.raises(UserError, match="repeat"):
            with_repeats(bad)


def test_a_bad_repeat_count_exits_2_with_a_message(tmp_path):
    proc = run_dlx(["sweep", "opt.lr=0.1,0.01", "--repeat", "0"], cwd=tmp_path, check=2)
    assert "--repeat 0" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


# ---------------------------------------------------------------------------- end to end


def test_sweep_with_repeats_runs_each_config_n_times_on_one_split(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["sweep", "opt.lr=0.003,0.001", "--repeat", "3", "epochs=1", *TINY]
    proc = run_dlx([*args, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path, check=0)
    trials = sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir())
    assert len(trials) == 6
    configs = [json.loads((t / "metrics.json").read_text())["config"] for t in trials]
    assert [c["seed"] for c in configs] == [0, 1, 2, 0, 1, 2]
    assert {c["data.seed"] for c in configs} == {0}, "every repeat on the same split"
    with open(sweep_dir / "groups.csv", newline="") as f:
        groups = list(csv.DictReader(f))
    assert len(groups) == 2 and [g["n"] for g in groups] == ["3", "3"]
    assert {g["configuration"].split()[0] for g in groups} == {"opt.lr=0.003", "opt.lr=0.001"}
    with open(sweep_dir / "summary.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 6, "summary.csv: still one row a trial"
    assert "2 configurations ranked by mean" in proc.stdout and " ± " in proc.stdout
    assert "reproduce it: dlx train opt.lr=" in proc.stdout
    assert "seed=" not in proc.stdout.split("reproduce it:")[1].splitlines()[0]
    # --resume reruns a lost repeat with its own seed, on the same split
    lost = json.loads((sweep_dir / "5" / "metrics.json").read_text())
    shutil.rmtree(sweep_dir / "5")
    run_dlx(["sweep", "--resume", str(sweep_dir)], cwd=tmp_path, check=0)
    again = json.loads((sweep_dir / "5" / "metrics.json").read_text())
    assert again["config"]["seed"] == 2 and again["config"]["data.seed"] == 0
    assert again["best_value"] == pytest.approx(lost["best_value"], abs=1e-6)


def test_an_optuna_trial_with_repeats_is_told_the_mean_of_its_seeds(tmp_path):
    import optuna

    from dlx.sweeps.study import open_storage

    sweep_dir = tmp_path / "sweep"
    args = ["sweep", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "repeat=2"]
    args += ["epochs=1", *TINY, f"hydra.sweep.dir={sweep_dir}"]
    proc = run_dlx(args, cwd=tmp_path, check=0)
    assert "DLX_OPTUNA" not in proc.stdout and "env_set" not in proc.stdout, "no internals"
    assert proc.stdout.count("| best so far") == 4, "one line a run (2 trials x 2 seeds)"
    study = optuna.load_study(
        study_name="dlx", storage=open_storage(str(sweep_dir / "optuna.journal"))
    )
    assert len(study.trials) == 2
    for t in study.trials:
        job = t.user_attrs["job"]
        values = [
            json.loads((sweep_dir / str(job + r) / "metrics.json").read_text())["best_value"]
            for r in range(2)
        ]
        assert t.value == pytest.approx(sum(values) / 2)
    with open(sweep_dir / "groups.csv", newline="") as f:
        assert [g["n"] for g in csv.DictReader(f)] == ["2", "2"]


# ---------------------------------------------------------------------------- cross-validation


def test_every_sample_is_in_exactly_one_validation_fold_and_the_test_set_is_held_out():
    from dlx.data.folds import cross_validation
    from dlx.data.splits import split_indices, split_train_val

    n, k = 101, 5
    plain_train, plain_val, plain_test = split_indices(n, 0.15, 0.15, seed=3)
    vals, tests = [], []
    for fold in range(k):
        with cross_validation(k, fold) as used:
            train, val, test = split_indices(n, 0.15, 0.15, seed=3)
        assert used, "the split knew it was a fold"
        assert set(train.tolist()).isdisjoint(val.tolist())
        assert sorted(train.tolist() + val.tolist() + test.tolist()) == list(range(n))
        vals += val.tolist()
        tests.append(test.tolist())
    pool = sorted(plain_train.tolist() + plain_val.tolist())
    assert sorted(vals) == pool, "every train+val sample validates exactly once"
    assert all(t == plain_test.tolist() for t in tests), "the test split never moves"
    # an official test set: the folds rotate through the whole training pool
    folds = []
    for fold in range(3):
        with cross_validation(3, fold):
            train, val = split_train_val(30, 0.1, seed=0)
        folds += val.tolist()
        assert len(train) + len(val) == 30
    assert sorted(folds) == list(range(30))


def test_a_cv_fold_outside_the_folds_is_refused(tmp_path):
    proc = run_dlx(["train", "cv.folds=3", "cv.fold=3", "epochs=1", *TINY], cwd=tmp_path, check=2)
    assert "cv.fold=3" in proc.stderr + proc.stdout and "0..2" in proc.stderr + proc.stdout
    proc = run_dlx(["train", "cv.folds=1", *TINY], cwd=tmp_path, check=2)
    assert "cv.folds" in proc.stderr + proc.stdout and "integer >= 2" in proc.stderr + proc.stdout


def test_train_with_cv_folds_runs_every_fold_and_sums_them_up(tmp_path):
    proc = run_dlx(["train", "cv.folds=3", "epochs=1", *TINY], cwd=tmp_path, check=0)
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    trials = sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir())
    configs = [json.loads((t / "metrics.json").read_text())["config"] for t in trials]
    assert [c["cv.fold"] for c in configs] == [0, 1, 2] and {c["cv.folds"] for c in configs} == {3}
    with open(sweep_dir / "groups.csv", newline="") as f:
        (group,) = list(csv.DictReader(f))
    assert group["n"] == "3" and float(group["best_val_std"]) >= 0
    assert "3 trials, 1 configuration ranked by mean val/loss" in proc.stdout
    assert " ± " in proc.stdout


# ---------------------------------------------------------------------------- pruning


def test_asha_first_rung_follows_the_epochs():
    from dlx.sweeps.study import first_rung, make_pruner

    assert [first_rung(e, 3) for e in (1, 4, 8, 20, 30)] == [2, 2, 2, 3, 5]
    pruner = make_pruner("asha", {"min_resource": "auto", "reduction_factor": 3}, epochs=20)
    assert pruner._min_resource == 3 and pruner._reduction_factor == 3
    assert make_pruner("asha", {"min_resource": 1}, epochs=20)._min_resource == 1


def test_a_pruned_grid_keeps_its_best_configuration_and_a_pruned_trial_gets_no_verdict(tmp_path):
    """The unpruned best (lr 0.01 here, last in the grid) still runs to the end when pruned."""
    grid = ["opt.lr=0.0001,0.00003,0.01", "epochs=6", "early_stopping.enabled=false", *TINY]
    plain, pruned = tmp_path / "plain", tmp_path / "pruned"
    run_dlx(["sweep", *grid, f"hydra.sweep.dir={plain}"], cwd=tmp_path, check=0)
    args = [*grid, "hydra.sweeper.pruner=asha", f"hydra.sweep.dir={pruned}"]
    run_dlx(["sweep", *args], cwd=tmp_path, check=0)
    with open(plain / "summary.csv", newline="") as f:
        best = next(csv.DictReader(f))["overrides"].split()[0]
    with open(pruned / "summary.csv", newline="") as f:
        rows = {r["overrides"].split()[0]: r for r in csv.DictReader(f)}
    assert rows[best]["status"] == "completed", rows
    stopped = [r for r in rows.values() if r["status"] == "pruned"]
    assert stopped, "the worst lr stops at the first rung (epoch 2 of 6)"
    for r in stopped:
        assert r["stopped_at"] == "2"
        m = json.loads((Path(r["folder"]) / "metrics.json").read_text())
        assert m["diagnosis"]["verdict"] == "not judged" and m["diagnosis"]["try"] == []
