"""Diagnostics that teach: the fit verdict and its advice (commands that run, and help),
gradient flow, filters and feature maps, and the lecture's presets (`experiment=...`)."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import shlex
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from conftest import FAST, all_tags, read_metrics, run_dlx, scalar_tags
from dlx.config.compose import conf_dir
from dlx.launch.preflight import passes_preflight, preflight
from dlx.tracking import advice, diagnostics
from dlx.tracking.advice import Knobs, apply_change
from dlx.tracking.diagnostics import GradientMonitor

# as a run gives them: each suggested command checked by launch's preflight
suggest = functools.partial(advice.suggest, check=passes_preflight)
diagnose = functools.partial(diagnostics.diagnose, check=passes_preflight)


def train(run_dir: Path, *overrides: str) -> tuple[dict, str]:
    """`dlx train OVERRIDES` in this process; the metrics and what it printed."""
    import dlx

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        metrics = dlx.train([*overrides, f"hydra.run.dir={run_dir}", *FAST])
    return metrics, out.getvalue()


def diagnosis_text(run_dir: Path) -> str:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    acc.Reload()
    (event,) = acc.Tensors("diagnosis/text_summary")
    return event.tensor_proto.string_val[0].decode()


@pytest.fixture(scope="module")
def overfitting(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("overfitting") / "run"
    metrics, printed = train(run_dir, "experiment=overfitting")
    return metrics, printed, run_dir


# ------------------------------------------------------------------ the presets, end to end


def cmd(*overrides: str, verb: str = "train") -> str:
    """A suggestion for a run of this file's `train` (its FAST overrides come after the run's)."""
    first, change = overrides[:-1], overrides[-1:]
    return " ".join(["dlx", verb, *first, *FAST, *change])


def pasted(command: str, run_dir: Path) -> tuple[dict, str]:
    """Run a printed suggestion as a user who pastes it would (in this process)."""
    argv = shlex.split(command)
    assert argv[:2] == ["dlx", "train"], command
    return train(run_dir, *argv[2:])


def test_overfitting_preset_ends_with_verdict_overfitting_and_says_what_to_try(overfitting):
    m, printed, run_dir = overfitting
    d = m["diagnosis"]
    assert d["verdict"] == "overfitting"
    assert d["numbers"]["val_rise"] > 0.25 or d["numbers"]["acc_gap"] > 0.07
    assert "loss/val" in d["evidence"] and any(c.isdigit() for c in d["evidence"]), "the numbers"
    assert d["try"][0] == cmd("experiment=overfitting", "data.limit=null")
    assert cmd("experiment=overfitting", "aug=mnist") in d["try"]
    assert cmd("experiment=overfitting", "'reg=[l2,dropout]'") in d["try"], "quoted for a shell"
    assert read_metrics(run_dir)["diagnosis"]["verdict"] == "overfitting"
    text = diagnosis_text(run_dir)
    assert "overfitting" in text and "    " + cmd("experiment=overfitting", "aug=mnist") in text
    # the console: the verdict, then each command whole, on a line of its own
    lines = printed.splitlines()
    assert "verdict" in printed and "overfitting" in printed
    for command in d["try"]:
        assert f"  {command}" in lines, command


def test_regularized_preset_narrows_the_train_val_gap_of_the_overfitting_one(overfitting, tmp_path):
    over = overfitting[0]
    reg, _ = train(tmp_path / "run", "experiment=regularized")
    cfg = OmegaConf.load(tmp_path / "run" / ".hydra" / "config.yaml")
    assert cfg.reg.weight_decay > 0 and cfg.reg.dropout > 0 and cfg.early_stopping.enabled
    assert cfg.data.limit == 100 and cfg.model.width == 512, "the overfitting preset underneath"
    assert reg["diagnosis"]["numbers"]["gap"] < over["diagnosis"]["numbers"]["gap"]
    assert reg["diagnosis"]["numbers"]["acc_gap"] < over["diagnosis"]["numbers"]["acc_gap"]
    assert reg["best_value"] < over["best_value"], "the lesson: a lower val loss"


def test_underfitting_preset_is_capacity_and_its_suggestions_run(tmp_path):
    m, _ = train(tmp_path / "run", "experiment=underfitting")
    d = m["diagnosis"]
    assert (d["verdict"], d["cause"]) == ("underfitting", "capacity"), d["evidence"]
    assert d["numbers"]["train_acc"] < 0.9 and d["numbers"]["best_val_acc"] < 0.9
    assert d["try"][0] == cmd("experiment=underfitting", "model.width=64 model.depth=2")
    assert not any("model=cnn" in t and "model.width" in t for t in d["try"])
    better, _ = pasted(d["try"][0], tmp_path / "wider")
    assert better["best_value"] < 0.5 * m["best_value"], "more capacity: a far lower val loss"


def test_underfitting_preset_with_another_model_is_exit_2_naming_the_key(tmp_path):
    proc = run_dlx(["train", "experiment=underfitting", "model=cnn"], cwd=tmp_path, check=2)
    assert "model.width" in proc.stderr and "model=mlp" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "outputs").exists(), "no run folder for bad config"


def test_default_cnn_run_is_a_good_fit_with_filters_feature_maps_and_gradient_norms(tmp_path):
    run_dir = tmp_path / "run"
    m, _ = train(run_dir)  # the defaults: model=cnn on digits
    assert m["diagnosis"]["verdict"] == "good fit", m["diagnosis"]
    assert m["diagnosis"]["try"] == [], "nothing to fix"
    images = all_tags(run_dir)["images"]
    assert "filters/features.0" in images and "feature_maps/features.0" in images
    scalars = scalar_tags(run_dir)
    norms = [t for t in scalars if t.startswith("grad_norm/")]
    assert "grad_norm/features.0" in norms and len(norms) >= 4, "every weight layer"
    steps = [s for s, _ in scalars["grad_norm/features.0"]]
    assert steps[:3] == [1, 50, 100], "the first step, then every log.grad_norm_every=50 steps"


def test_naive_init_preset_is_saturated_gradients_and_its_fix_runs(tmp_path):
    run_dir = tmp_path / "run"
    m, printed = train(run_dir, "experiment=naive_init")
    assert "warning" in printed and "model.init=xavier" in printed
    tags = scalar_tags(run_dir)
    assert any(t.startswith("grad_norm/") for t in tags)
    assert any(t.startswith("saturation/") for t in tags), "why the gradients die: saturation"
    assert any(t.startswith("diagnostics") for t in all_tags(run_dir)["tensors"])
    d = m["diagnosis"]
    assert (d["verdict"], d["cause"]) == ("underfitting", "saturated gradients")
    assert "saturat" in d["evidence"] and "saturat" in (run_dir / "train.log").read_text()
    assert d["try"][0] == cmd("experiment=naive_init", "model.init=xavier")
    assert all("model.width" not in t for t in d["try"])
    fixed, _ = pasted(d["try"][0], tmp_path / "xavier")
    assert fixed["best_value"] < m["best_value"]


def test_lr_too_high_preset_shows_the_loss_jumping_and_points_to_a_smaller_lr(tmp_path):
    m, _ = train(tmp_path / "run", "experiment=lr_too_high")
    d = m["diagnosis"]
    assert (d["verdict"], d["cause"]) == ("underfitting", "lr too large")
    assert d["numbers"]["unstable"] is True
    assert d["try"][0] == cmd("experiment=lr_too_high", "opt.lr=0.2"), "10x smaller first"
    assert d["try"][-1] == " ".join(["dlx lr-find experiment=lr_too_high", *FAST])
    assert "jumped" in d["evidence"]


def test_the_sgd_lr_of_the_issue_is_too_small_and_the_pasted_advice_helps(tmp_path):
    """`dlx train opt=sgd opt.lr=0.01 epochs=3` as a user typed it when the default cnn was the
    lecture's LeNet (the default now has batch norm, which trains at that rate: that LeNet is
    pinned); then the printed advice."""
    lenet = ["model.channels=[6,16]", "model.batchnorm=false"]
    proc = run_dlx(
        ["train", *lenet, "opt=sgd", "opt.lr=0.01", "epochs=3", *FAST], cwd=tmp_path, check=0
    )
    assert "underfitting (lr too small)" in proc.stdout and "too large" not in proc.stdout
    lines = proc.stdout.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("try"))
    tries = [ln.strip() for ln in lines[at + 1 :] if ln.startswith("  dlx ")]
    pinned = "'model.channels=[6,16]' model.batchnorm=false"
    assert tries[0] == f"dlx train {pinned} opt=sgd opt.lr=0.1 epochs=3 log.graph=false"
    assert tries[-1].startswith(f"dlx lr-find {pinned} opt=sgd opt.lr=0.01")
    (run,) = (tmp_path / "outputs").glob("*/*")
    before = read_metrics(run)["best_value"]
    again = run_dlx(shlex.split(tries[0])[1:], cwd=tmp_path, check=0)
    assert "Error" not in again.stderr
    after = min(
        read_metrics(r)["best_value"] for r in (tmp_path / "outputs").glob("*/*") if r != run
    )
    assert after < before, "the larger lr gets the val loss down further in the same 3 epochs"


def test_histograms_on_request(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, "model=mlp", "epochs=1", "data.limit=64", "log.histograms=true")
    hist = all_tags(run_dir)["histograms"]
    assert "weights/net.1.weight" in hist and "grads/net.1.weight" in hist


# ------------------------------------------------------------------ the verdict, from curves


def curves(train_loss, val_loss, train_acc=None, val_acc=None) -> list[dict]:
    out = []
    for i, (tl, vl) in enumerate(zip(train_loss, val_loss, strict=True)):
        h = {"epoch": i + 1, "train": {"loss": tl}, "val": {"loss": vl}, "lr": 1e-3}
        if train_acc is not None:
            h["train"]["acc"], h["val"]["acc"] = train_acc[i], val_acc[i]
        out.append(h)
    return out


RECORDED = json.loads((Path(__file__).parent / "data" / "verdict_histories.json").read_text())


def recorded(name: str) -> dict:
    """The verdict and advice on a history recorded from a real run, as that run gave them."""
    r = RECORDED[name]
    cfg = preflight(r["overrides"])
    return diagnose(
        r["history"],
        r["task"],
        r["status"],
        initial_loss=r["initial_loss"],
        cfg=cfg,
        gradients=r.get("gradients"),
        overrides=r["overrides"],
    )


@pytest.mark.parametrize(
    ("name", "verdict", "cause", "first_try"),
    [
        ("sgd_small3", "underfitting", "lr too small", "dlx train opt=sgd opt.lr=0.1 epochs=3"),
        (
            "adam_small",
            "underfitting",
            "lr too small",
            "dlx train opt=adam opt.lr=0.0001 epochs=10",
        ),
        (
            "lr_too_high",
            "underfitting",
            "lr too large",
            "dlx train experiment=lr_too_high opt.lr=0.2",
        ),
        ("adam_big1", "underfitting", "lr too large", "dlx train opt.lr=0.01 epochs=10"),
        ("sgd_large", "underfitting", "lr too large", "dlx train opt=sgd opt.lr=0.1 epochs=10"),
        ("few_epochs", "underfitting", "too few epochs", "dlx train epochs=6"),
        (
            "underfitting",
            "underfitting",
            "capacity",
            "dlx train experiment=underfitting model.width=64 model.depth=2",
        ),
        (
            "cap_reg",
            "underfitting",
            "capacity",
            "dlx train data=function model=mlp model.width=64 model.depth=2 epochs=100 loss=mse",
        ),
        (
            "naive_init",
            "underfitting",
            "saturated gradients",
            "dlx train experiment=naive_init model.init=xavier",
        ),
        ("overfitting", "overfitting", None, "dlx train experiment=overfitting data.limit=null"),
        ("good_default", "good fit", None, None),
        ("ua", "good fit", None, None),
    ],
)
def test_recorded_runs_get_the_lectures_verdict_and_a_command_that_passes_preflight(
    name, verdict, cause, first_try
):
    d = recorded(name)
    assert (d["verdict"], d["cause"]) == (verdict, cause), d["evidence"]
    assert (d["try"][0] if d["try"] else None) == first_try
    for command in d["try"]:
        argv = shlex.split(command)
        assert argv[0] == "dlx" and argv[1] in ("train", "lr-find")
        preflight(argv[2:])  # what `dlx train` checks first: raises on a refused command
    if cause == "lr too small":
        assert "too large" not in d["evidence"] and "lr-find" in d["try"][-1]


def test_universal_approximation_is_a_good_fit_in_words_that_mean_what_they_say():
    d = recorded("ua")
    ev = d["evidence"]
    assert "%" not in ev, "no percentages of a noisy MSE"
    assert (
        "fell from 0.162 at the first step to 8.47e-05 at its best (epoch 226), 1,912x lower" in ev
    )
    assert not any("opt.lr" in t for t in d["try"]), "a good fit is never told to lower its lr"


def test_a_loss_stuck_at_chance_that_wobbles_cannot_be_told_apart_run_lr_find():
    """SGD at lr 1.4 on digits, say: flat at ln(10), up and down, no jump in the epoch means."""
    wobble = [2.303, 2.302, 2.303, 2.302]
    h = curves(wobble, wobble, [0.1] * 4, [0.1] * 4)
    cfg = preflight(["opt=sgd", "opt.lr=1.43", "epochs=4"])
    d = diagnose(
        h,
        "classification",
        "completed",
        initial_loss=2.303,
        cfg=cfg,
        overrides=["opt=sgd", "opt.lr=1.43", "epochs=4"],
    )
    assert (d["verdict"], d["cause"]) == ("underfitting", "can't tell")
    assert "lr-find" in d["evidence"] and "look the same" in d["evidence"]
    assert d["try"] == ["dlx lr-find opt=sgd opt.lr=1.43 epochs=4"], "the one cheap experiment"


def test_a_loss_that_went_up_and_stayed_up_is_a_too_large_lr_not_cant_tell():
    """Adam at lr 0.1 on 64 images, one step an epoch: 2.3 at the first step, then 20."""
    h = curves([2.3, 20.16], [26.7, 23.8], [0.06, 0.16], [0.07, 0.12])
    overrides = ["model=mlp", "epochs=2", "data.limit=64", "opt.lr=0.1"]
    d = diagnose(
        h,
        "classification",
        "completed",
        initial_loss=2.3,
        cfg=preflight(overrides),
        overrides=overrides,
    )
    assert (d["verdict"], d["cause"]) == ("underfitting", "lr too large"), d["evidence"]
    assert "jumped from 2.3 at the first step to 26.7" in d["evidence"]
    assert d["try"][0] == "dlx train model=mlp epochs=2 data.limit=64 opt.lr=0.01"


def test_regression_val_loss_rising_while_train_falls_is_overfitting():
    h = curves([1.0, 0.3, 0.1, 0.05, 0.02, 0.01], [0.9, 0.35, 0.2, 0.25, 0.3, 0.35])
    d = diagnose(h, "regression", "completed", overrides=["data=function", "model=shallow"])
    assert d["verdict"] == "overfitting" and "rose" in d["evidence"]
    assert not any("aug=" in t for t in d["try"]), "no image augmentation for a function"


def test_diverged_run_points_to_a_smaller_lr_then_the_init():
    overrides = ["model=mlp", "opt.lr=0.5", "model.init=normal"]
    d = diagnose(
        [],
        "classification",
        "diverged",
        error="the training loss became nan",
        cfg=preflight(overrides),
        overrides=overrides,
    )
    assert (d["verdict"], d["cause"]) == ("diverged", "lr too large") and "nan" in d["evidence"]
    assert d["try"][0] == "dlx train model=mlp opt.lr=0.05 model.init=normal"
    assert "dlx train model=mlp opt.lr=0.5 model.init=he" in d["try"]
    assert "dlx train model=mlp opt.lr=0.5 model.init=normal reg.batchnorm=true" in d["try"]


def test_no_epoch_no_verdict():
    assert diagnose([], "classification", "interrupted", overrides=[])["verdict"] == "unknown"


def test_switching_the_model_drops_the_keys_only_the_old_one_has():
    assert apply_change(
        ["model=mlp", "model.width=8", "model.init=he", "epochs=3"], ["model=cnn"]
    ) == ["model=cnn", "model.init=he", "epochs=3"]
    assert apply_change(["+opt.foo=1", "opt.lr=1"], ["opt.lr=0.1"]) == ["+opt.foo=1", "opt.lr=0.1"]


def test_a_suggestion_that_preflight_refuses_is_never_shown():
    """experiment=underfitting pins MLP keys: `model=cnn` on top of it would be refused."""
    overrides = ["experiment=underfitting"]
    out = suggest(["bigger_model", "capacity"], preflight(overrides), "classification", overrides)
    assert [s["command"] for s in out] == [
        "dlx train experiment=underfitting model.width=64 model.depth=2"
    ]


@pytest.mark.parametrize(
    "preset", sorted(p.stem for p in (conf_dir() / "experiment").glob("*.yaml"))
)
def test_every_presets_every_suggestion_passes_preflight(preset):
    overrides = [f"experiment={preset}"]
    cfg = preflight(overrides)
    task = "regression" if cfg.data.name == "function" else "classification"
    remedies = [r for r in vars(Knobs).keys() if not r.startswith("_") and r != "changes"]
    out = suggest(remedies, cfg, task, overrides, limit=50)
    assert out, "each preset has something that can be changed"
    for s in out:
        argv = shlex.split(s["command"])
        assert argv[2] == f"experiment={preset}", "relative to the run's own overrides"
        preflight(argv[2:])
        if s["kind"] == "train":
            model = preflight(argv[2:]).model
            for o in argv[3:]:
                key = o.split("=", 1)[0].lstrip("+")
                if key.startswith("model."):
                    assert key.split(".")[1] in model, f"{key} not a key of {model._target_}"


# ------------------------------------------------------------------ gradient flow


class Recorder:
    """Stands in for the Tracker and the RunConsole."""

    enabled = True

    def __init__(self) -> None:
        self.scalars: dict[str, list[tuple[int, float]]] = {}
        self.warnings: list[str] = []
        self.texts: list[str] = []

    def scalar(self, tag, value, step):
        self.scalars.setdefault(tag, []).append((step, value))

    def text(self, tag, text, step=0):
        self.texts.append(text)

    def warn(self, message):
        self.warnings.append(message)


def two_layers(first_grad: float, last_grad: float) -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    model[0].weight.grad = torch.full_like(model[0].weight, first_grad)
    model[2].weight.grad = torch.full_like(model[2].weight, last_grad)
    return model


@pytest.mark.parametrize(
    ("first", "last", "word"),
    [(1e4, 1.0, "exploding"), (1e-6, 1.0, "vanishing"), (float("nan"), 1, "NaN")],
)
def test_gradient_problems_warn_once_pointing_to_init_batchnorm_and_lr(first, last, word):
    rec = Recorder()
    mon = GradientMonitor(two_layers(first, last), rec, rec, every=10)
    for step in range(1, 31):
        mon.after_backward(step)
    assert len(rec.warnings) == 1 and word in rec.warnings[0]
    for knob in ("model.init", "reg=batchnorm", "opt.lr"):
        assert knob in rec.warnings[0]
    assert [s for s, _ in rec.scalars["grad_norm/0"]] == [1, 10, 20, 30]
    assert rec.texts, "the warning is TensorBoard text too"


def test_healthy_gradients_stay_quiet_and_off_means_off():
    rec = Recorder()
    mon = GradientMonitor(two_layers(0.1, 0.5), rec, rec, every=5)
    for step in range(1, 11):
        mon.after_backward(step)
    assert not rec.warnings and rec.scalars["grad_norm/2"][0] == (1, pytest.approx(0.5 * 8**0.5))
    off = Recorder()
    mon = GradientMonitor(two_layers(1e4, 1.0), off, off, every=0)
    mon.after_backward(1)
    assert not off.scalars and not off.warnings


def test_fp16_grad_scaler_scale_is_divided_out():
    class Scaler:
        def get_scale(self):
            return 65536.0

    rec = Recorder()
    mon = GradientMonitor(
        two_layers(65536.0 * 0.1, 65536.0 * 0.5), rec, rec, every=5, scaler=Scaler()
    )
    mon.after_backward(1)
    assert not rec.warnings
    assert rec.scalars["grad_norm/0"][0][1] == pytest.approx(0.1 * 4)


def test_saturated_sigmoids_are_reported():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Sigmoid(), nn.Linear(16, 2))
    nn.init.normal_(model[0].weight, std=10.0)  # huge pre-activations: sigmoid in its tails
    rec = Recorder()
    mon = GradientMonitor(model, rec, rec, every=50)
    model(torch.randn(32, 8)).sum().backward()
    mon.after_backward(1)
    assert rec.scalars["saturation/1"][0][1] > 0.5
    assert len(rec.warnings) == 1 and "saturating" in rec.warnings[0]


# ------------------------------------------------------------------ what the filters see


def test_first_conv_filters_and_feature_maps_become_images_rgb_and_many_filters_too():
    from dlx.tracking.visuals import log_conv_layer

    class Images:
        enabled = True

        def __init__(self) -> None:
            self.images: dict[str, torch.Tensor] = {}

        def image(self, tag, img, step=0):
            self.images[tag] = img

    conv_net = nn.Sequential(
        nn.Conv2d(3, 24, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2)
    )
    rec = Images()
    log_conv_layer(rec, conv_net, torch.randn(6, 3, 32, 32), step=0)
    assert set(rec.images) == {"filters/0", "feature_maps/0"}
    fmap = rec.images["feature_maps/0"]
    assert fmap.shape[0] == 3 and 0 <= fmap.min() and fmap.max() <= 1
    # 4 images (rows) x (input + 16 of the 24 maps) tiles of 48 px, 2 px apart
    assert fmap.shape[1:] == (4 * 50 + 2, 17 * 50 + 2)
    mlp = Images()
    log_conv_layer(mlp, nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.randn(2, 1, 2, 2), 0)
    assert mlp.images == {}, "no conv layer, no images"
