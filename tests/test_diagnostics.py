"""Diagnostics that teach: the fit verdict, gradient flow, filters and feature maps, and the
lecture's presets (`experiment=overfitting|underfitting|lr_too_high|naive_init|regularized`)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from conftest import FAST, all_tags, read_metrics, scalar_tags
from dlx.tracking.diagnostics import GradientMonitor, diagnose


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


def test_overfitting_preset_ends_with_verdict_overfitting_and_says_what_to_try(overfitting):
    m, printed, run_dir = overfitting
    d = m["diagnosis"]
    assert d["verdict"] == "overfitting"
    assert d["numbers"]["val_rise"] > 0.25 or d["numbers"]["acc_gap"] > 0.07
    assert "val loss" in d["evidence"] and any(c.isdigit() for c in d["evidence"]), "the numbers"
    assert d["try"][0] == "reg=[l2,dropout]" and "data.limit=null" in d["try"]
    assert read_metrics(run_dir)["diagnosis"]["verdict"] == "overfitting"
    assert "overfitting" in diagnosis_text(run_dir), "the verdict is TensorBoard text too"
    # the console summary: verdict, evidence, and the overrides verbatim (brackets included)
    assert "verdict" in printed and "overfitting" in printed
    assert "reg=[l2,dropout]" in printed


def test_regularized_preset_narrows_the_train_val_gap_of_the_overfitting_one(overfitting, tmp_path):
    over = overfitting[0]
    reg, _ = train(tmp_path / "run", "experiment=regularized")
    cfg = OmegaConf.load(tmp_path / "run" / ".hydra" / "config.yaml")
    assert cfg.reg.weight_decay > 0 and cfg.reg.dropout > 0 and cfg.early_stopping.enabled
    assert cfg.data.limit == 100 and cfg.model.width == 512, "the overfitting preset underneath"
    assert reg["diagnosis"]["numbers"]["gap"] < over["diagnosis"]["numbers"]["gap"]
    assert reg["diagnosis"]["numbers"]["acc_gap"] < over["diagnosis"]["numbers"]["acc_gap"]
    assert reg["diagnosis"]["verdict"] != "overfitting"


def test_underfitting_preset_ends_with_verdict_underfitting(tmp_path):
    m, _ = train(tmp_path / "run", "experiment=underfitting")
    d = m["diagnosis"]
    assert d["verdict"] == "underfitting"
    assert d["numbers"]["train_acc"] < 0.9 and d["numbers"]["best_val_acc"] < 0.9
    assert "model.width=64" in d["try"], "more capacity, as a concrete override"


def test_default_cnn_run_is_a_good_fit_with_filters_feature_maps_and_gradient_norms(tmp_path):
    run_dir = tmp_path / "run"
    m, _ = train(run_dir)  # the defaults: model=cnn on digits
    assert m["diagnosis"]["verdict"] == "good fit", m["diagnosis"]
    images = all_tags(run_dir)["images"]
    assert "filters/features.0" in images and "feature_maps/features.0" in images
    scalars = scalar_tags(run_dir)
    norms = [t for t in scalars if t.startswith("grad_norm/")]
    assert "grad_norm/features.0" in norms and len(norms) >= 4, "every weight layer"
    steps = [s for s, _ in scalars["grad_norm/features.0"]]
    assert steps[:3] == [1, 50, 100], "the first step, then every log.grad_norm_every=50 steps"


def test_naive_init_preset_warns_about_gradients_and_logs_their_norms(tmp_path):
    run_dir = tmp_path / "run"
    m, printed = train(run_dir, "experiment=naive_init")
    assert "warning" in printed and "model.init=xavier" in printed and "reg=batchnorm" in printed
    assert "opt.lr" in printed
    tags = scalar_tags(run_dir)
    assert any(t.startswith("grad_norm/") for t in tags)
    assert any(t.startswith("saturation/") for t in tags), "why the gradients die: saturation"
    assert any(t.startswith("diagnostics") for t in all_tags(run_dir)["tensors"])
    assert m["diagnosis"]["try"][0] == "model.init=xavier", "the verdict names the fix too"
    assert "saturat" in (run_dir / "train.log").read_text()


def test_lr_too_high_preset_shows_the_loss_jumping_and_points_to_a_smaller_lr(tmp_path):
    m, _ = train(tmp_path / "run", "experiment=lr_too_high")
    d = m["diagnosis"]
    assert d["verdict"] in ("underfitting", "diverged")
    assert d["numbers"]["unstable"] is True
    assert d["try"][0] == "opt.lr=0.2", "a 10x smaller learning rate first"
    assert "learning rate" in d["evidence"]


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


def test_a_run_cut_short_while_still_learning_is_underfitting_with_more_epochs():
    h = curves(
        [2.3, 1.2, 0.6, 0.3], [1.5, 0.8, 0.4, 0.25], [0.3, 0.7, 0.9, 0.93], [0.5, 0.8, 0.9, 0.92]
    )
    cfg = OmegaConf.create({"epochs": 4, "opt": {"lr": 1e-3}})
    d = diagnose(h, "classification", "completed", initial_loss=2.3, cfg=cfg)
    assert d["verdict"] == "underfitting" and "still falling" in d["evidence"]
    assert d["try"][0] == "epochs=8"


def test_a_loss_stuck_at_chance_points_to_a_smaller_lr_not_more_epochs():
    """SGD at lr 1.4 on digits: flat at ln(10) from start to end, accuracy at chance."""
    flat = [2.303, 2.302, 2.303, 2.302]
    h = curves(flat, flat, [0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1])
    cfg = OmegaConf.create({"epochs": 4, "opt": {"lr": 1.43}})
    d = diagnose(h, "classification", "completed", initial_loss=2.303, cfg=cfg)
    assert d["verdict"] == "underfitting" and "never moved" in d["evidence"]
    assert d["try"][0] == "opt.lr=0.143" and "lr-find" in d["evidence"]


def test_regression_val_loss_rising_while_train_falls_is_overfitting():
    h = curves([1.0, 0.3, 0.1, 0.05, 0.02, 0.01], [0.9, 0.35, 0.2, 0.25, 0.3, 0.35])
    d = diagnose(h, "regression", "completed")
    assert d["verdict"] == "overfitting" and "rose" in d["evidence"]


def test_flat_close_curves_are_a_good_fit():
    h = curves(
        [1.0, 0.2, 0.05, 0.048],
        [0.9, 0.2, 0.06, 0.059],
        [0.6, 0.95, 0.99, 0.99],
        [0.6, 0.95, 0.98, 0.98],
    )
    assert diagnose(h, "classification", "completed")["verdict"] == "good fit"


def test_diverged_run_points_to_a_smaller_lr():
    cfg = OmegaConf.create({"opt": {"lr": 0.5}, "model": {"activation": "relu", "init": "normal"}})
    d = diagnose([], "classification", "diverged", error="the training loss became nan", cfg=cfg)
    assert d["verdict"] == "diverged" and "nan" in d["evidence"]
    assert d["try"][:2] == ["opt.lr=0.05", "reg=batchnorm"] and "model.init=he" in d["try"]


def test_no_epoch_no_verdict():
    assert diagnose([], "classification", "interrupted")["verdict"] == "unknown"


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
