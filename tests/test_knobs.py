"""Each training knob, from the command line on digits, shown by its effect: clipping bounds
the step and logs the norm it cut, accumulation equals the big batch, warmup raises the lr,
label smoothing lifts the loss floor, the EMA is what best.pt holds, MixUp/CutMix touch the
training batches only, deterministic runs repeat exactly; throughput is logged."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from conftest import FAST, read_metrics, run_dlx, scalar_tags

# A small MLP, one torch thread (exactly repeatable), few batches: the effects, not accuracy.
BASE = [*FAST, "model=mlp", "num_threads=1"]


def _train(tmp_path: Path, name: str, *overrides: str, check: int = 0) -> Path:
    run = tmp_path / name
    run_dlx(["train", *BASE, *overrides, f"hydra.run.dir={run}"], tmp_path, check=check)
    return run


def _ckpt(run: Path, name: str = "last.pt") -> dict:
    return torch.load(run / "checkpoints" / name, weights_only=True)


def _init_weights(*overrides: str) -> dict[str, torch.Tensor]:
    """The weights a run starts from (the same seed builds the same model)."""
    from dlx.config.compose import compose
    from dlx.training.loop import build

    return {k: v.clone() for k, v in build(compose([*BASE, *overrides])).model.state_dict().items()}


def _distance(a: dict, b: dict) -> float:
    return math.sqrt(sum(float((a[k].float() - b[k].float()).pow(2).sum()) for k in a))


def test_grad_clip_bounds_each_update_and_logs_the_norm_before_clipping(tmp_path):
    one_step = ["opt=sgd", "opt.lr=0.5", "debug.limit_batches=1", "epochs=1"]
    start = _init_weights(*one_step)
    free = _train(tmp_path, "free", *one_step)
    clipped = _train(tmp_path, "clipped", *one_step, "grad_clip=0.01")
    # plain SGD: the step is lr * gradient, so clipping the gradient to 0.01 bounds it by 0.005
    assert _distance(_ckpt(clipped)["model"], start) <= 0.5 * 0.01 * 1.001
    assert _distance(_ckpt(free)["model"], start) > 10 * 0.5 * 0.01, "clipping changed nothing?"
    tags = scalar_tags(clipped)
    assert tags["grad_clip/norm_mean"][0][1] > 0.01  # the norm the clipping cut down
    assert tags["grad_clip/clipped_fraction"] == [(1, 1.0)]
    assert "grad_clip/norm_mean" not in scalar_tags(free)


def test_grad_accum_gives_the_big_batchs_weights(tmp_path):
    # batch_size stays the effective batch: 4 micro-batches of 8 make the same steps as 32
    steps = ["batch_size=32", "debug.limit_batches=3", "epochs=1", "opt=sgd", "opt.lr=0.5"]
    big = _ckpt(_train(tmp_path, "big", *steps))["model"]
    micro = _ckpt(_train(tmp_path, "micro", *steps, "grad_accum=4"))["model"]
    assert _distance(big, _init_weights(*steps)) > 0.1, "the steps moved the weights"
    for key in big:
        assert torch.allclose(big[key], micro[key], atol=1e-5), key
    bad = run_dlx(["train", *BASE, "batch_size=30", "grad_accum=4"], tmp_path, check=2)
    assert "grad_accum" in bad.stderr + bad.stdout and "Traceback" not in bad.stderr


def test_warmup_raises_the_lr_scalar_to_opt_lr_then_the_schedule_takes_over(tmp_path):
    run = _train(
        tmp_path,
        "warm",
        "opt.lr=0.01",
        "sched=cosine",
        "sched.warmup_epochs=2",
        "epochs=3",
        "debug.limit_batches=3",
    )
    lr = [v for _, v in scalar_tags(run)["lr"]]
    # per step: 1/6, 2/6, ... of opt.lr; the scalar is the lr after each epoch's last step
    assert lr[0] == pytest_approx(0.01 * 4 / 6) and lr[1] == pytest_approx(0.01)
    assert lr[0] < lr[1], "warmup did not raise the lr"
    # then one cosine epoch over the epochs left (T_max = 3 - 2): it starts from opt.lr
    assert lr[2] == pytest_approx(0.01)
    assert _ckpt(run)["warmup"] == {"done": 6, "steps": 6}


def pytest_approx(v: float):
    import pytest

    return pytest.approx(v, rel=1e-4)


def test_label_smoothing_lifts_the_training_loss_floor_and_not_validations(tmp_path):
    eps, k = 0.3, 10
    target = [1 - eps + eps / k] + [eps / k] * (k - 1)
    floor = -sum(p * math.log(p) for p in target)  # cross-entropy never goes below H(target)
    fast = ["opt.lr=0.01", "epochs=3"]
    plain = read_metrics(_train(tmp_path, "plain", *fast))
    smooth = read_metrics(_train(tmp_path, "smooth", *fast, f"label_smoothing={eps}"))
    assert min(h["train"]["loss"] for h in plain["history"]) < floor
    assert all(h["train"]["loss"] >= floor for h in smooth["history"])
    assert smooth["val"]["loss"] < floor, "validation reports the plain cross-entropy"
    bad = run_dlx(
        ["train", *FAST, "data=function", "model=shallow", "label_smoothing=0.1"], tmp_path, check=2
    )
    assert "label_smoothing" in bad.stdout + bad.stderr


def test_ema_weights_are_their_own_and_are_what_best_pt_holds(tmp_path):
    run = _train(tmp_path, "ema", "ema.decay=0.9", "epochs=2", "early_stopping.patience=5")
    m = read_metrics(run)
    last, best = _ckpt(run), _ckpt(run, "best.pt")
    assert m["best_epoch"] == m["epochs_run"] == 2
    ema = last["ema"]["model"]
    assert any(not torch.equal(ema[k], last["model"][k]) for k in ema), "EMA == raw weights"
    assert all(torch.equal(best["model"][k], ema[k]) for k in ema), "best.pt is not the EMA"
    # and the test metrics are the EMA model's: `dlx eval` of best.pt gives them again
    out = run_dlx(["eval", str(run), "--checkpoint", "best"], tmp_path, check=0)
    assert f"{m['test']['loss']:.4f}"[:5] in out.stdout


def test_eval_of_last_pt_scores_the_ema_as_the_runs_own_test_did(tmp_path):
    # restore_best=false: the run tests last.pt's weights, i.e. its EMA (raw weights beside it)
    run = _train(tmp_path, "ema", "ema.decay=0.9", "epochs=1", "early_stopping.restore_best=false")
    m = read_metrics(run)
    assert m["test"]["checkpoint"] == "last"
    run_dlx(["eval", str(run), "--checkpoint", "last"], tmp_path, check=0)
    result = json.loads((run / "eval_last_test.json").read_text())
    assert result["run_test"]["max_abs_diff"] < 1e-6, result["run_test"]


def test_mixup_and_cutmix_change_the_training_batches_only(tmp_path):
    # steps below float precision keep the weights as they were: any difference comes from
    # the batches. N(0, 1) weights make confident predictions, whose loss depends on the targets.
    still = ["opt=sgd", "opt.lr=1e-30", "epochs=1", "model.init=normal"]
    plain = read_metrics(_train(tmp_path, "plain", *still))
    for knob in ("aug.mixup=1.0", "aug.cutmix=1.0"):
        mixed = read_metrics(_train(tmp_path, knob.split("=")[0], *still, knob))
        train_gap = mixed["history"][0]["train"]["loss"] - plain["history"][0]["train"]["loss"]
        assert abs(train_gap) > 0.1, "the training batches were not mixed"
        assert mixed["history"][0]["val"] == plain["history"][0]["val"], "val must not be mixed"
        assert mixed["test"] == plain["test"], "test must not be mixed"
    bad = run_dlx(["train", *FAST, "data=function", "model=shallow", "aug.mixup=0.2"], tmp_path)
    assert bad.returncode == 2 and "aug.mixup" in bad.stdout + bad.stderr


def test_deterministic_runs_repeat_exactly_and_throughput_is_logged(tmp_path):
    runs = [_train(tmp_path, f"d{i}", "deterministic=true", "epochs=2") for i in range(2)]
    a, b = (read_metrics(r) for r in runs)
    assert a["perf"]["samples_per_s"] > 0
    assert [s for s, _ in scalar_tags(runs[0])["perf/samples_per_s"]] == [1, 2]
    for m in (a, b):
        m.pop("wall_time_s"), m.pop("perf")
    assert a == b
    assert all(
        torch.equal(v, _ckpt(runs[1])["model"][k]) for k, v in _ckpt(runs[0])["model"].items()
    )


def test_deterministic_refuses_an_op_without_a_deterministic_version_by_name(tmp_path):
    # a user's model with MaxUnpool2d, which torch has no deterministic version of
    (tmp_path / "mymodels.py").write_text(
        "import torch\n"
        "class Unpool(torch.nn.Module):\n"
        "    def __init__(self, in_shape, out_dim, **_):\n"
        "        super().__init__()\n"
        "        self.pool = torch.nn.MaxPool2d(2, return_indices=True)\n"
        "        self.unpool = torch.nn.MaxUnpool2d(2)\n"
        "        self.fc = torch.nn.Linear(64, out_dim)\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.unpool(*self.pool(x)).flatten(1))\n"
    )
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "unpool.yaml").write_text("_target_: mymodels.Unpool\n")
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = ["train", "--config-dir", str(tmp_path / "conf"), *FAST, "model=unpool", "epochs=1"]
    run_dlx([*args, f"hydra.run.dir={tmp_path / 'ok'}"], tmp_path, env=env, check=0)
    refused = run_dlx(
        [*args, "deterministic=true", f"hydra.run.dir={tmp_path / 'det'}"], tmp_path, env=env
    )
    out = refused.stdout + refused.stderr
    assert refused.returncode == 2, out[-2000:]
    assert "max_unpooling2d_forward_out" in out and "deterministic" in out
    assert "Traceback" not in out
