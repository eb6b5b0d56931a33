"""The `debug` group from the command line, each option by what it does: fdr runs one batch of
each split and writes no checkpoint, limit runs fewer steps, overfit gives a verdict, the
profiler leaves a trace and prints the top ops, anomaly names the op that made a NaN."""

from __future__ import annotations

import json
import math

from conftest import FAST, read_metrics, run_dlx, scalar_tags

# grad norms at every step: their steps count the optimizer steps taken
BASE = [*FAST, "model=mlp", "num_threads=1", "log.grad_norm_every=1"]


def _steps(run) -> list[int]:
    tags = scalar_tags(run)
    return [s for s, _ in tags[next(t for t in tags if t.startswith("grad_norm/"))]]


def test_fdr_runs_one_batch_of_each_split_and_writes_no_checkpoint(tmp_path, tmp_run):
    run, where = tmp_run
    out = run_dlx(["train", *BASE, "debug=fdr", where], tmp_path, check=0)
    m = read_metrics(run)
    assert m["status"] == "completed" and m["epochs_run"] == 1
    assert _steps(run) == [1], "one training step"
    assert m["debug"]["batches"] == {"train": 1, "val": 1, "test": 1}
    assert not list((run / "checkpoints").glob("*.pt")), "fdr writes no checkpoint"
    assert "Traceback" not in out.stderr
    # one batch says nothing about the fit: no verdict, no advice to act on
    assert m["diagnosis"]["verdict"] == "not judged" and m["diagnosis"]["try"] == []
    assert "debug.limit_batches=1" in m["diagnosis"]["evidence"]


def test_limit_batches_takes_a_count_or_a_share_of_each_split(tmp_path):
    full = read_metrics(_run(tmp_path, "full", "epochs=1", "log.grad_norm_every=0"))
    n_train = full["debug"]["batches"]["train"]
    counted = _run(tmp_path, "count", "epochs=2", "debug.limit_batches=3")
    assert _steps(counted) == list(range(1, 7)), "3 steps per epoch"
    shared = _run(tmp_path, "share", "debug=limit", "epochs=1")
    assert read_metrics(shared)["debug"]["batches"]["train"] == math.ceil(n_train / 4)
    assert _steps(shared) == list(range(1, math.ceil(n_train / 4) + 1))
    bad = run_dlx(["train", *BASE, "debug.limit_batches=1.5"], tmp_path, check=2)
    assert "debug.limit_batches" in bad.stderr + bad.stdout


def _run(tmp_path, name, *overrides, check=0):
    run = tmp_path / name
    run_dlx(["train", *BASE, *overrides, f"hydra.run.dir={run}"], tmp_path, check=check)
    return run


def test_overfit_says_whether_the_model_drove_the_training_loss_to_zero(tmp_path):
    few = ["debug=overfit", "debug.overfit_batches=1", "batch_size=16", "log.grad_norm_every=0"]
    fits = _run(tmp_path, "fits", *few, "opt.lr=0.01", "epochs=30")
    verdict = read_metrics(fits)["debug"]["overfit"]
    assert verdict["passed"] and verdict["last_loss"] < 0.05 * verdict["first_loss"]
    assert verdict["batches"] == 1
    # memorizing the batch is the point: no "overfitting, add regularization" advice
    diagnosis = read_metrics(fits)["diagnosis"]
    assert diagnosis["verdict"] == "not judged" and diagnosis["try"] == []
    stuck = tmp_path / "stuck"
    out = run_dlx(
        ["train", *BASE, *few, "opt.lr=1e-6", "epochs=3", f"hydra.run.dir={stuck}"],
        tmp_path,
        check=0,
    )
    assert "overfit check FAILED" in out.stdout
    assert read_metrics(stuck)["debug"]["overfit"]["passed"] is False
    # the same batch each epoch: 1 step per epoch
    assert read_metrics(stuck)["epochs_run"] == 3


def test_profiler_writes_a_trace_and_prints_the_top_ops(tmp_path, tmp_run):
    run, where = tmp_run
    out = run_dlx(["train", *BASE, "debug=profiler", "debug.profile_steps=3", where], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    traces = list((run / "profiler").glob("*.pt.trace.json"))
    assert len(traces) == 1, "a trace TensorBoard's profiler plugin and chrome://tracing read"
    events = json.loads(traces[0].read_text())["traceEvents"]
    assert any("aten::addmm" in e.get("name", "") for e in events), "the MLP's matmuls"
    assert "Self CPU" in out.stdout and "aten::" in out.stdout, "the top-ops table"
    assert "aten::" in (run / "profiler" / "top_ops.txt").read_text()


def test_anomaly_names_the_op_that_made_a_nan(tmp_path, tmp_run):
    run, where = tmp_run
    # an absurd lr overflows the weights after one step: the next loss is NaN
    nan = ["debug=anomaly", "opt=sgd", "opt.lr=1e30", "epochs=1", where]
    out = run_dlx(["train", *BASE, *nan], tmp_path, check=1)
    m = read_metrics(run)
    assert m["status"] == "diverged"
    assert "anomaly detection" in m["error"] and "LogSoftmaxBackward0" in m["error"]
    assert "log_softmax" in out.stdout and "its forward call: cross_entropy" in m["error"]
    # a NaN is judged on a debug run too; the commands that follow leave the debug aid off
    assert m["diagnosis"]["verdict"] == "diverged" and m["diagnosis"]["try"]
    assert all("debug" not in cmd for cmd in m["diagnosis"]["try"]), m["diagnosis"]["try"]
