"""The verdict reads all its evidence (the init, chance level, simple fits, bounces, a solved
task), never offers a known no-op, and `dlx advise` tests its remedies before it prints them."""

from __future__ import annotations

import json
import math
import re

from conftest import FAST, read_metrics, run_dlx
from dlx.launch.preflight import passes_preflight, preflight
from dlx.tracking.baselines import loss_baselines
from dlx.tracking.diagnostics import diagnose

CHANCE = {"chance": math.log(10)}
FUNCTION = {"mean": 0.0474, "linear": 0.0234, "cubic": 0.018}  # the lecture's function


def curves(train_loss, val_loss, train_acc=None, val_acc=None) -> list[dict]:
    out = []
    for i, (tl, vl) in enumerate(zip(train_loss, val_loss, strict=True)):
        h = {"epoch": i + 1, "train": {"loss": tl}, "val": {"loss": vl}, "lr": 1e-3}
        if train_acc is not None:
            h["train"]["acc"], h["val"]["acc"] = train_acc[i], val_acc[i]
        out.append(h)
    return out


def judge(overrides, history, task="classification", status="completed", **kw):
    cfg = preflight(overrides)
    return diagnose(
        history, task, status, cfg=cfg, overrides=overrides, check=passes_preflight, **kw
    )


def numbers_in(text: str) -> list[str]:
    return re.findall(r"(?<![\w.])\d+\.\d+(?:e-?\d+)?|\d+e-?\d+", text)


def test_exploding_init_is_the_init_not_overfitting_and_he_comes_first():
    """`model=mlp model.depth=5 model.init=normal`: loss ~1e4 against a chance of 2.3."""
    overrides = ["model=mlp", "model.depth=5", "model.init=normal", "epochs=15"]
    h = curves(
        [9e3, 4e3, 2e3, 1.2e3, 800, 500],
        [9e3, 8.5e3, 8.2e3, 8.3e3, 8.4e3, 8.5e3],
        [0.5, 0.7, 0.8, 0.88, 0.93, 0.96],
        [0.4, 0.5, 0.55, 0.58, 0.6, 0.6],
    )
    found = {"explode": "exploding gradients: `net.0` has gradient norm 3e+05 (> 1e+03) (step 1)"}
    d = judge(overrides, h, initial_loss=1.2e4, gradients=found, baselines=CHANCE)
    assert (d["verdict"], d["cause"]) == ("underfitting", "exploding gradients"), d["evidence"]
    assert d["try"][0] == "dlx train model=mlp model.depth=5 model.init=he epochs=15"
    assert not any("aug=" in t or "reg=" in t for t in d["try"])
    assert "blind guess" in d["evidence"]
    nums = numbers_in(d["evidence"])
    assert len(nums) == len(set(nums)), d["evidence"]


def test_regression_stuck_at_the_cubic_trend_is_not_a_good_fit():
    """`model=shallow model.hidden=4`: MSE 0.0167, what a cubic polynomial gets."""
    overrides = ["experiment=universal_approximation", "model.hidden=4"]
    val = [0.16 * 0.5**i + 0.0167 for i in range(12)]
    d = judge(overrides, curves(val, val), "regression", initial_loss=0.2, baselines=FUNCTION)
    assert d["verdict"] == "underfitting" and d["cause"] in ("capacity", "lr too small")
    assert "cubic polynomial" in d["evidence"]
    first = d["try"][0]
    assert "model.hidden=" in first or "opt.lr=" in first


def test_bouncing_sgd_is_a_too_large_lr_whatever_the_late_progress():
    """`opt=sgd opt.lr=1 epochs=15`: val acc 0.26 -> 0.085 -> 0.37, a wider net suggested."""
    overrides = ["opt=sgd", "opt.lr=1", "epochs=15"]
    tl = [2.2, 2.0, 2.3, 1.9, 2.1, 1.8, 2.2, 1.7]
    vl = [2.1, 2.6, 1.9, 2.5, 1.8, 2.4, 1.9, 1.75]
    ta = [0.2, 0.25, 0.15, 0.3, 0.2, 0.32, 0.2, 0.35]
    va = [0.26, 0.085, 0.37, 0.1, 0.3, 0.12, 0.33, 0.37]
    d = judge(overrides, curves(tl, vl, ta, va), initial_loss=2.3, baselines=CHANCE)
    assert (d["verdict"], d["cause"]) == ("underfitting", "lr too large"), d["evidence"]
    assert d["try"][0] == "dlx train opt=sgd opt.lr=0.1 epochs=15"
    assert "smoothly" not in d["evidence"] and "no jumps" not in d["evidence"]


def test_no_grad_clip_for_adam_at_a_too_high_lr():
    overrides = ["opt.lr=0.5"]
    d = judge(overrides, [], status="diverged", error="the training loss became nan")
    assert d["try"][0] == "dlx train opt.lr=0.05"
    assert not any("grad_clip" in t for t in d["try"]), "clipping is a no-op for Adam's step"
    sgd = judge(["opt=sgd", "opt.lr=5"], [], status="diverged", error="nan")
    assert any("grad_clip=1.0" in t for t in sgd["try"]), "for SGD it bounds the step"


def test_a_solved_task_is_a_good_fit_with_the_next_commands(tmp_path):
    """val loss 2e-7, acc 1.000, the last epochs still halving a tiny loss."""
    losses = [0.5 * 0.1**i for i in range(7)] + [2e-6, 8e-7, 4e-7, 2e-7]
    acc = [0.9] + [1.0] * 10
    h = curves(losses, losses, acc, acc)
    d = judge([], h, initial_loss=2.3, baselines=CHANCE, run_dir=tmp_path)
    assert (d["verdict"], d["cause"]) == ("good fit", None), d["evidence"]
    assert "solved" in d["evidence"] and d["try"] == []
    assert d["next"] == [f"dlx eval {tmp_path}", "dlx board", f"dlx predict {tmp_path} FILES"]


def test_evidence_quotes_each_number_once():
    h = curves(
        [1.2, 0.5, 0.3, 0.2, 0.15, 0.12],
        [1.1, 0.55, 0.4, 0.35, 0.33, 0.32],
        [0.7, 0.85, 0.9, 0.93, 0.95, 0.96],
        [0.7, 0.83, 0.88, 0.9, 0.91, 0.915],
    )
    d = judge([], h, initial_loss=2.3, baselines=CHANCE)
    nums = numbers_in(d["evidence"])
    assert len(nums) == len(set(nums)), d["evidence"]


def test_baselines_of_the_lecture_function_a_cubic_gets_0_018():
    from omegaconf import OmegaConf

    from dlx.data.function import load

    cfg = OmegaConf.create(
        {"n_points": 1024, "val_fraction": 0.15, "test_fraction": 0.15, "limit": None}
    )
    data = load(cfg, 0)
    b = loss_baselines(data)
    assert b["mean"] > b["linear"] > b["cubic"] > 0.01
    # nested least-squares fits: each fits its own points at least as well as the one before
    assert b["mean_train"] >= b["linear_train"] >= b["cubic_train"] > 0
    # held equal to numpy's polyfit, on the val split and on the training split
    import numpy as np

    (xt, yt), (xv, yv) = data.train.tensors, data.val.tensors
    xt, yt, xv, yv = (t.double().numpy().ravel() for t in (xt, yt, xv, yv))
    for name, degree in (("linear", 1), ("cubic", 3)):
        coef = np.polyfit(xt, yt, degree)
        val = float(np.mean((np.polyval(coef, xv) - yv) ** 2))
        train = float(np.mean((np.polyval(coef, xt) - yt) ** 2))
        assert math.isclose(b[name], val, rel_tol=1e-4), (name, b[name], val)
        assert math.isclose(b[f"{name}_train"], train, rel_tol=1e-4), (name, train)


def test_a_noisy_regression_at_the_floor_its_points_allow_is_not_stuck_at_the_trend():
    """`regression, 40 noisy points` seed 2: loss/val 0.0101 is only 1.8x below a cubic fit's,
    but loss/train (0.0044) is far below the cubic's own on the training split: it fits beyond
    the trend, and the rest is the targets' noise. Generated; the control, a network whose
    training loss is no lower than the cubic's (stuck at the trend), is still underfitting."""
    import random

    rng = random.Random(13)
    base = {**FUNCTION, "cubic_train": 0.016, "linear_train": 0.022, "mean_train": 0.047}

    def fit(train, val):
        return judge(
            ["experiment=universal_approximation"],
            curves(train, val),
            "regression",
            initial_loss=0.5,
            baselines=base,
            size={"parameters": 6001, "samples": 40},
        )

    for _ in range(15):
        best = FUNCTION["cubic"] * rng.uniform(0.52, 0.95)
        val = [0.3 * 0.8**i + best for i in range(60)]
        low = 1.1 * best / (3 * base["cubic_train"])  # val within 3x of train: no gap
        for floor, want in ((rng.uniform(low, 0.48), "good fit"), (rng.uniform(0.9, 1.2), None)):
            train = [0.3 * 0.8**i + floor * base["cubic_train"] for i in range(60)]
            d = fit(train, val)
            if want:
                assert d["verdict"] == "good fit", d["evidence"]
                assert "far below a cubic" not in d["evidence"], d["evidence"]
                assert "cannot teach" in d["evidence"], d["evidence"]
            else:
                assert d["verdict"] == "underfitting", d["evidence"]
    for _ in range(10):  # control: a low loss/train, but loss/val no better than the cubic's
        best = FUNCTION["cubic"] * rng.uniform(1.0, 1.9)
        val = [0.3 * 0.8**i + best for i in range(60)]
        train = [0.3 * 0.8**i + max(best / 2.9, 0.3 * base["cubic_train"]) for i in range(60)]
        d = fit(train, val)
        assert d["verdict"] != "good fit" and "cannot teach" not in d["evidence"], d["evidence"]


def test_advise_probes_the_remedies_and_prints_only_those_that_helped(tmp_path):
    """`experiment=naive_init`, short: he/batchnorm/relu first, with the numbers measured."""
    run = tmp_path / "run"
    run_dlx(
        ["train", "experiment=naive_init", "epochs=3", *FAST, f"hydra.run.dir={run}"],
        cwd=tmp_path,
    )
    proc = run_dlx(["advise", str(run), "--epochs", "3"], cwd=tmp_path)
    out = json.loads((run / "advice.json").read_text())
    assert out["tried"] and out["tested"], proc.stdout
    first = next(t for t in out["tried"] if t["command"] == out["tested"][0])
    assert any(k in first["name"] for k in ("model.init=", "batchnorm", "activation=relu"))
    base = out["unchanged"]["best_val_loss"]
    for t in out["tried"]:
        assert t["helped"] == (t["command"] in out["tested"])
        if t["helped"]:
            assert t["best_val_loss"] < base
    assert "tried " in proc.stdout and "val loss" in proc.stdout
    assert "try (tested, best first):" in proc.stdout


def test_advise_names_a_gain_below_the_threshold_as_within_noise_not_as_no_help():
    """A probe 3% better is neither printed as tested nor lumped with the ones that hurt."""
    from dlx.launch.advise import HELPS, report

    def probe(name, loss):
        return {
            "name": name,
            "change": [name],
            "command": f"dlx train {name}",
            "epochs": 5,
            "best_val_loss": loss,
        }

    base = 1.0
    plan = [
        probe("(unchanged)", base),
        probe("a=1", 0.5),
        probe("b=2", 0.97),
        probe("c=3", 1.3),
        probe("d=4", math.inf),
    ]
    out = report(plan, 5)
    assert out["tested"] == ["dlx train a=1"] and 0.97 > (1 - HELPS) * base
    assert "a=1 val loss 1 -> 0.5" in out["summary"]
    noise, hurt = out["dropped"].split("; did not help: ")
    assert noise.startswith("within noise") and "b=2 (0.97)" in noise
    assert hurt == "c=3 (1.3), d=4 (diverged)"


def test_advise_on_a_folder_that_is_no_run_is_exit_2(tmp_path):
    proc = run_dlx(["advise", str(tmp_path / "nope")], cwd=tmp_path, check=2)
    assert "no such run folder" in proc.stderr and "Traceback" not in proc.stderr


def test_train_with_advise_probe_writes_advice_json(tmp_path):
    run = tmp_path / "run"
    run_dlx(
        [
            "train",
            "model=mlp",
            "opt=sgd",
            "opt.lr=0.002",
            "epochs=2",
            "advise=probe",
            *FAST,
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
    )
    m = read_metrics(run)
    assert m["diagnosis"]["cause"] == "lr too small"
    out = json.loads((run / "advice.json").read_text())
    assert out["tried"] and "opt.lr=0.02" in out["tested"][0], out["summary"]


def test_untested_suggestions_say_so_and_name_dlx_advise(tmp_path):
    run = tmp_path / "run"
    proc = run_dlx(
        [
            "train",
            "model=mlp",
            "opt=sgd",
            "opt.lr=0.002",
            "epochs=2",
            *FAST,
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
    )
    assert f"try (untested guesses; `dlx advise {run}` measures which help):" in proc.stdout


# ------------------------------------------------------------- evidence the verdict now reads


def _bouncing_run(rng, end_ratio: float, n: int = 11):
    """A classification run that got to ~0.9 accuracy with val loss swinging by 2-10x between
    epochs, ending `end_ratio` x its best (the default cnn at Adam lr 0.5)."""
    best = rng.uniform(0.15, 0.3)
    vl = [rng.uniform(2, 200)] + [best * rng.uniform(2.5, 10) for _ in range(n - 1)]
    at = rng.randrange(2, n - 3)
    vl[at] = best
    vl[at + 1] = best * 3  # a sharp swing right after the best
    vl[-1] = best * end_ratio
    # the train loss bounces too and is no lower after the best epoch (not overfitting)
    tl = [2.7] + [rng.uniform(0.3, 0.5) if i <= at else rng.uniform(0.5, 0.8) for i in range(1, n)]
    ta = [0.4] + [rng.uniform(0.86, 0.93) for _ in range(n - 1)]
    va = [0.1] + [a + rng.uniform(-0.03, 0.03) for a in ta[1:]]  # no accuracy gap
    return curves(tl, vl, ta, va)


def test_a_run_that_bounced_and_never_settled_is_a_too_large_lr_not_a_good_fit():
    """Generated: curves swinging in several epochs and ending >= 2x the best val loss; the
    control (same curves ending near the best) is not called unstable by this rule."""
    import random

    rng = random.Random(7)
    for _ in range(20):
        h = _bouncing_run(rng, end_ratio=rng.uniform(2.2, 4))
        d = judge(["opt.lr=0.5"], h, initial_loss=2.5, baselines=CHANCE)
        assert (d["verdict"], d["cause"]) == ("underfitting", "lr too large"), d["evidence"]
        assert d["try"][0] == "dlx train opt.lr=0.05" and "overshoot" in d["evidence"]
        nums = numbers_in(d["evidence"])
        assert len(nums) == len(set(nums)), d["evidence"]


def test_a_regression_loss_bouncing_at_its_floor_stays_a_good_fit():
    """Val MSE swinging 1e-4 <-> 3e-4 near the floor of the lecture's function: noise, not a
    rate (the rise is a tiny share of a blind guess's 0.047)."""
    import random

    rng = random.Random(3)
    for _ in range(10):
        tl = [0.1 * 0.5**i for i in range(8)] + [rng.uniform(1e-4, 3e-4) for _ in range(30)]
        vl = [0.1 * 0.5**i for i in range(8)] + [rng.uniform(1e-4, 3e-4) for _ in range(30)]
        vl[20], vl[21], vl[-1] = 8e-5, 3e-4, 2.5e-4
        d = judge(
            ["experiment=universal_approximation"],
            curves(tl, vl),
            "regression",
            initial_loss=0.2,
            baselines=FUNCTION,
        )
        assert d["verdict"] == "good fit", d["evidence"]


def test_the_accuracy_gap_is_read_over_the_last_epochs_not_one_noisy_epoch():
    """100 images with dropout: train accuracy swings 0.83-0.96 from epoch to epoch. One high
    last epoch is not memorizing; a gap held over the last epochs is."""
    n = 40
    vl = [2.0 * 0.9**i + 0.34 for i in range(n)]
    tl = [2.1 * 0.9**i + 0.30 for i in range(n)]
    va = [min(0.87, 0.2 + 0.03 * i) for i in range(n)]
    noisy = [min(0.9, 0.2 + 0.03 * i) for i in range(n)]
    noisy[-1] = 0.96  # the last epoch alone is 0.09 above val
    d = judge([], curves(tl, vl, noisy, va), initial_loss=2.3, baselines=CHANCE)
    assert d["verdict"] == "good fit", d["evidence"]
    assert "the mean of the last 5 epochs" in d["evidence"]
    held = [min(0.99, 0.2 + 0.03 * i) for i in range(n)]  # 0.99 vs 0.87 for the last 5
    d = judge([], curves(tl, vl, held, va), initial_loss=2.3, baselines=CHANCE)
    assert d["verdict"] == "overfitting" and "a gap of 0.120" in d["evidence"], d["evidence"]


def test_a_big_model_that_flattened_out_is_not_called_too_small():
    """Stuck near a cubic fit: with 13 parameters the model is too small (capacity); with 6,001
    for 700 points and the loss still falling at the end, the steps are (lr too small)."""
    overrides = ["experiment=universal_approximation", "opt.lr=1e-5", "epochs=100"]
    val = [0.16 * 0.5**i + 0.0167 for i in range(12)] + [0.0167 - 1e-5 * i for i in range(20)]
    small, big = (
        judge(
            overrides,
            curves(val, val),
            "regression",
            initial_loss=0.2,
            baselines=FUNCTION,
            size={"parameters": params, "samples": 700},
        )
        for params in (13, 6001)
    )
    assert small["cause"] == "capacity", small["evidence"]
    assert (big["verdict"], big["cause"]) == ("underfitting", "lr too small"), big["evidence"]
    assert "6,001 trainable parameters for 700 training examples" in big["evidence"]
    assert big["try"][0].startswith("dlx train experiment=universal_approximation opt.lr=0.0001")


def test_a_loss_thrown_far_above_its_start_is_a_too_large_lr_even_after_it_came_down():
    """Generated: RMSprop at lr 0.1 on the mlp: the first epoch's mean loss 10-5000x the
    first step's, then down to a poor plateau below the start. Steps too small never throw the
    loss up, so this is `lr too large`, however big the model; the same plateau without the
    blow-up is not."""
    import random

    rng = random.Random(26)
    for _ in range(15):
        n = rng.randint(6, 15)
        first = 2.3
        plateau = rng.uniform(1.0, 1.8)
        tl = [first * rng.uniform(11, 5000)] + [
            plateau * rng.uniform(0.9, 1.3) for _ in range(n - 1)
        ]
        vl = [first * rng.uniform(1.5, 6)] + [plateau * rng.uniform(1.0, 1.5) for _ in range(n - 1)]
        ta = [0.3] + [rng.uniform(0.5, 0.65) for _ in range(n - 1)]
        va = [0.4] + [a + rng.uniform(-0.03, 0.03) for a in ta[1:]]
        size = {"parameters": 26122, "samples": 1257}
        over = ["model=mlp", "opt=rmsprop", "opt.lr=0.1"]
        d = judge(over, curves(tl, vl, ta, va), initial_loss=first, baselines=CHANCE, size=size)
        assert (d["verdict"], d["cause"]) == ("underfitting", "lr too large"), d["evidence"]
        said = d["evidence"]  # thrown up and ended at or above its start: "jumped"
        assert ("blew up" in said or "jumped" in said) and d["try"][0].endswith("opt.lr=0.01")
        calm = [first * 0.95] + tl[1:]
        d = judge(over, curves(calm, vl, ta, va), initial_loss=first, baselines=CHANCE, size=size)
        assert "blew up" not in d["evidence"], d["evidence"]
        # only the val loss high (batch norm's first running statistics; a model growing
        # confidently wrong, its val loss highest at the end): the training never blew up
        spiky = [first * rng.uniform(11, 50)] + vl[1:]
        rising = vl[:-1] + [first * rng.uniform(11, 50)]
        for v in (spiky, rising):
            d = judge(over, curves(calm, v, ta, va), initial_loss=first, baselines=CHANCE)
            assert "blew up" not in d["evidence"], d["evidence"]


def test_the_last_epochs_share_is_worded_by_its_sign_and_size():
    """Generated flattened-out fits whose last epoch rose, stalled or fell a little: the evidence
    never quotes a negative share or "only 0.0%" as what the last epoch took off."""
    import random

    rng, judged = random.Random(7), 0
    for _ in range(12):
        last = rng.choice([-1e-3, -1e-5, 0.0, 1e-6, 2e-4, 3e-3, 8e-3])
        val = [0.16 * 0.5**i + 0.0193 for i in range(14)]
        train = [*val[:-1], val[-2] - last * val[0]]
        d = judge(
            ["experiment=universal_approximation", "model.hidden=4", "epochs=150"],
            curves(train, val),
            "regression",
            initial_loss=0.2,
            baselines=FUNCTION,
            size={"parameters": 13, "samples": 700},
        )
        if d.get("cause") != "capacity":
            continue
        ev, judged = d["evidence"], judged + 1
        assert not re.search(r"-\d+(\.\d+)?%", ev) and "only 0.0%" not in ev, ev
        if last <= 0:
            assert "the last epoch took nothing off" in ev, ev
    assert judged >= 8


# `experiment=overfitting aug=mnist seed=1`: a noisy train loss (100 augmented images) that swings
# while loss/val falls to its best in the last epoch; it was read as "lr too large" (opt.lr/10)
AUG_TRAIN = [2.283, 2.167, 2.005, 1.916, 1.629, 1.424, 1.289, 1.078, 1.039, 0.934, 0.985]
AUG_TRAIN += [0.975, 0.864, 0.645, 0.773, 0.798, 0.609, 0.72, 0.557, 0.495]
AUG_VAL = [2.192, 2.094, 1.932, 1.68, 1.397, 1.148, 0.9, 0.752, 0.744, 0.654, 0.574, 0.486]
AUG_VAL += [0.548, 0.502, 0.446, 0.444, 0.492, 0.407, 0.344, 0.342]
AUG_TACC = [0.13, 0.32, 0.48, 0.42, 0.53, 0.6, 0.63, 0.63, 0.66, 0.66, 0.64, 0.67, 0.72, 0.82]
AUG_TACC += [0.73, 0.72, 0.86, 0.78, 0.85, 0.82]
AUG_VACC = [0.359, 0.459, 0.493, 0.511, 0.648, 0.67, 0.733, 0.778, 0.767, 0.819, 0.807, 0.859]
AUG_VACC += [0.83, 0.856, 0.867, 0.848, 0.833, 0.874, 0.893, 0.893]


def _noisy_falling_run(rng, n: int) -> list[dict]:
    """A poor fit still falling fast at its end, with a noisy train loss and val accuracy."""
    val = [2.2 * math.exp(-i / (0.35 * n)) + 0.05 for i in range(n)]
    val[-1] = min(val) * 0.97
    train = [v * rng.uniform(0.85, 1.35) for v in val]
    vacc = [min(0.88, 0.3 + 0.6 * (1 - v / 2.25)) for v in val]
    for i in rng.sample(range(n // 2, n - 2), 2):  # two swings in the second half
        train[i], vacc[i] = train[i - 1] * 1.3, vacc[i - 1] - 0.12
    tacc = [a - 0.05 for a in vacc]
    return curves(train, val, tacc, vacc)


def test_a_noisy_loss_still_falling_fast_is_too_few_epochs_not_a_too_large_lr():
    """The recorded augmentation run, and generated poor fits whose curves swing while loss/val
    falls fast to its best in the last epoch: more epochs, not a smaller rate."""
    import random

    overrides = ["experiment=overfitting", "aug=mnist"]
    d = judge(overrides, curves(AUG_TRAIN, AUG_VAL, AUG_TACC, AUG_VACC), initial_loss=2.3)
    assert (d["verdict"], d["cause"]) == ("underfitting", "too few epochs"), d["evidence"]
    assert d["try"][0].startswith("dlx train experiment=overfitting aug=mnist epochs=")
    rng = random.Random(11)
    for _ in range(15):
        h = _noisy_falling_run(rng, rng.randint(12, 30))
        d = judge(overrides, h, initial_loss=2.3, baselines=CHANCE)
        assert d["cause"] == "too few epochs", d["evidence"]


def test_a_bounce_three_epochs_back_is_not_progress_a_noisy_plateau_is_no_longer_learning():
    """`opt=sgd opt.lr=1 epochs=15 seed=1` (batch norm): loss/val swings 0.03 <-> 0.5 around
    a floor; its last epochs fell from a bounce's peak, not past its earlier best. Generated:
    such plateaus are not "too few epochs"; the control, the same run still falling past its
    earlier best, is."""
    import random

    val = [1.413, 0.17, 0.093, 0.502, 0.054, 0.035, 0.365, 0.034, 0.077, 0.028, 0.068, 0.053]
    val += [0.041, 0.0256, 0.0333]
    train = [0.867, 0.131, 0.063, 0.032, 0.032, 0.012, 0.02, 0.021, 0.023, 0.005, 0.031, 0.011]
    train += [0.006, 0.002, 0.004]
    tacc = [min(0.999, 1 - t / 3) for t in train]
    vacc = [min(0.99, 1 - v / 3) for v in val]
    d = judge(
        ["opt=sgd", "opt.lr=1", "epochs=15"], curves(train, val, tacc, vacc), initial_loss=2.3
    )
    assert d["cause"] != "too few epochs", d["evidence"]
    rng = random.Random(5)
    for _ in range(15):
        floor = rng.uniform(0.02, 0.05)
        v = [floor * rng.uniform(1.0, 1.3) for _ in range(12)] + [floor * 0.97]
        v[-4] = floor * rng.uniform(3, 10)  # the epoch 3 back: a bounce's peak
        t = [x * 0.2 for x in v]
        a = [0.98] * len(v)
        d = judge([], curves(t, v, [0.999] * len(v), a), initial_loss=2.3, baselines=CHANCE)
        assert d["cause"] != "too few epochs", d["evidence"]
        v[-1] = min(v[:-3]) * 0.6  # control: past its earlier best by 40%
        d = judge([], curves(t, v, [0.999] * len(v), a), initial_loss=2.3, baselines=CHANCE)
        assert d["cause"] == "too few epochs", d["evidence"]


def test_a_big_model_stalled_by_overshooting_is_a_too_large_lr_and_a_smooth_stall_is_not():
    """Generated stalls of a roomy model (20 parameters an example) near chance: thrown up in
    its first epoch, or back up in two epochs, is a rate too large (only overshooting does
    that); the control, the same stall falling smoothly, is never called too large."""
    import random

    rng = random.Random(3)
    size = {"parameters": 26000, "samples": 1257}
    for _ in range(20):
        n = rng.randint(8, 15)
        base = [2.3 - 0.45 * (1 - math.exp(-i / 3)) for i in range(n)]
        val = [b * rng.uniform(0.95, 1.02) for b in base]
        acc = [0.1 + 0.2 * (1 - b / 2.3) * 4 for b in base]
        vacc = [a - 0.02 for a in acc]
        smooth = judge(["opt=sgd"], curves(base, val, acc, vacc), initial_loss=2.3, size=size)
        assert smooth["cause"] != "lr too large", smooth["evidence"]
        thrown = [*base]
        if rng.random() < 0.5:
            thrown[0] = 2.3 * rng.uniform(1.15, 1.5)  # the first epoch's mean above the start
        else:
            for i in rng.sample(range(n // 2 + 1, n, 2), 2):  # back up 6-10% in 2 late epochs
                thrown[i] = thrown[i - 1] * rng.uniform(1.06, 1.1)
        d = judge(
            ["opt=sgd", "opt.lr=2"], curves(thrown, val, acc, vacc), initial_loss=2.3, size=size
        )
        assert (d["verdict"], d["cause"]) == ("underfitting", "lr too large"), d["evidence"]
        assert d["try"][0] == "dlx train opt=sgd opt.lr=0.2", d["try"]
        nums = numbers_in(d["evidence"])
        assert len(nums) == len(set(nums)), d["evidence"]
        settled = [*base, *[base[-1] * 0.99**i for i in range(1, 3 * n)]]  # rises early only
        for i in (2, 4):
            settled[i] = settled[i - 1] * 1.08
        long_val = [*val, *[val[-1] * 0.99**i for i in range(1, 3 * n)]]
        long_acc = [*acc, *[acc[-1]] * (3 * n - 1)]
        s = judge(
            ["opt=sgd"],
            curves(settled, long_val, long_acc, [a - 0.02 for a in long_acc]),
            initial_loss=2.3,
            size=size,
        )
        assert s["cause"] != "lr too large", s["evidence"]


def test_the_simple_fit_comparison_is_worded_by_the_numbers_it_quotes():
    """Generated regression fits stuck between half and twice a cubic fit's val loss: the
    evidence says "no better than" only when the best is not lower, and otherwise the ratio
    it prints is the ratio of the two numbers it quotes."""
    import random

    rng = random.Random(9)
    for _ in range(25):
        best = FUNCTION["cubic"] * rng.uniform(0.52, 1.6)
        val = [0.16 * 0.6**i + best for i in range(30)]
        d = judge(
            ["experiment=universal_approximation", "model.hidden=4"],
            curves(val, val),
            "regression",
            initial_loss=0.5,
            baselines=FUNCTION,
            size={"parameters": 13, "samples": 700},
        )
        ev = d["evidence"]
        m = re.search(
            r"got down to ([\d.e-]+) at best, only ([\d.]+)x lower than .*?\(([\d.e-]+)\)", ev
        )
        if best < 0.95 * FUNCTION["cubic"]:
            assert m and "no better than" not in ev, ev
            assert abs(float(m[2]) - float(m[3]) / float(m[1])) <= 0.051, ev
        elif best >= FUNCTION["cubic"]:
            assert "no better than" in ev and not m, ev


def test_swings_only_early_in_a_long_run_are_not_a_run_that_never_settled():
    """`regression, 40 noisy points` seed 2: val swung in epochs 2-61 of 400 and was smooth for
    the 339 after. Generated: swings confined to the first 20% are never "instead of settling";
    the control, the same swings in the second half too, are."""
    import random

    rng = random.Random(4)
    for _ in range(12):
        n = rng.randint(40, 120)
        val = [0.5 * 0.9**i + 0.06 for i in range(n)]
        train = [v * 0.9 for v in val]
        early = sorted(rng.sample(range(2, n // 5), 3))
        for i in early:
            val[i] = val[i - 1] * 1.4
        acc = [min(0.85, 0.3 + 0.5 * (1 - v)) for v in val]
        d = judge([], curves(train, val, acc, acc), initial_loss=2.3, baselines=CHANCE)
        assert "instead of settling" not in d["evidence"], d["evidence"]
        for i in sorted(rng.sample(range(n // 2 + 1, n - 3), 2)):
            val[i] = val[i - 1] * 1.4
        d = judge([], curves(train, val, acc, acc), initial_loss=2.3, baselines=CHANCE)
        assert d["cause"] == "lr too large" and "instead of settling" in d["evidence"], d


def test_a_stuck_loss_thrown_up_first_is_too_large_and_its_words_follow_its_numbers():
    """Generated runs stuck within 5% of their first loss (a small model, so the roomy rule does
    not apply): thrown above the first step in epoch 1 is a rate too large; the controls, a slow
    fall with or without a step back, say "every epoch" only when it fell every epoch and never
    quote a non-zero share as 0.0%."""
    import random

    rng = random.Random(21)
    size = {"parameters": 500, "samples": 1257}
    for _ in range(20):
        n = rng.randint(5, 30)
        per = rng.uniform(1e-5, 1.5e-3)  # a share of the first loss taken off each epoch
        base = [2.3 * (1 - per * (i + 1)) for i in range(n)]
        if rng.random() < 0.5:
            j = rng.randrange(1, n)
            base[j] = base[j - 1] * 1.0001  # one step back
        acc = [0.12 + 0.01 * i / n for i in range(n)]
        vacc = [a - 0.01 for a in acc]
        d = judge(["opt=sgd"], curves(base, base, acc, vacc), initial_loss=2.3, size=size)
        ev, fell_always = d["evidence"], all(b < a for a, b in zip(base, base[1:], strict=False))
        assert "0.0%" not in ev, ev
        if "every epoch" in ev:
            assert fell_always, ev
        assert d["cause"] in ("lr too small", "can't tell"), ev
        thrown = [2.3 * rng.uniform(1.12, 1.18), *base[1:]]
        d = judge(
            ["opt=sgd", "opt.lr=2"], curves(thrown, base, acc, vacc), initial_loss=2.3, size=size
        )
        assert d["cause"] == "lr too large", d["evidence"]
