"""`dlx lr-find`: the learning-rate range test, its curve in TensorBoard, a suggested opt.lr."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from conftest import FAST, all_tags, scalar_tags


def lr_find_in_process(args: list[str]):
    from dlx.cli.app import app

    result = CliRunner().invoke(app, ["lr-find", *args])
    return result.exit_code, result.output


def test_lr_find_suggests_an_lr_and_logs_the_curve_in_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, text = lr_find_in_process(["data.limit=300", "lr_find.steps=120", *FAST])
    assert code == 0, text
    folders = list(tmp_path.glob("outputs/lr_find/*/*"))
    assert len(folders) == 1, "outputs/lr_find/DATE/TIME, apart from the training runs"
    out = folders[0]
    result = json.loads((out / "lr_find.json").read_text())
    lrs, losses = result["lrs"], result["losses"]
    assert len(losses) == len(lrs) == result["steps_run"] <= 120
    assert lrs[0] == pytest.approx(1e-7), "the ramp starts at lr_find.start_lr"
    assert all(b > a for a, b in zip(lrs, lrs[1:], strict=False)), "and grows"
    assert lrs[1] / lrs[0] == pytest.approx(lrs[-1] / lrs[-2], rel=1e-6)
    assert 1e-5 <= result["suggested"] <= 1.0, "Adam on digits: a suggestion in a sane range"
    assert result["suggested"] <= result["min_loss_lr"]
    assert f"opt.lr={result['suggested']:.3g}" in text
    tags = all_tags(out)
    assert "lr_find" in tags["images"], "the loss-vs-lr figure"
    assert (out / "lr_find.png").is_file(), "and as a PNG, for a report without TensorBoard"
    scalars = scalar_tags(out)
    assert len(scalars["lr_find/loss"]) == len(lrs) and len(scalars["lr_find/lr"]) == len(lrs)


def test_lr_find_stops_when_the_loss_explodes_and_restores_the_model():
    from dlx.launch.lrfind import range_test

    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    model = torch.nn.Linear(4, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]
    curve = range_test(
        model,
        opt,
        loader,
        torch.nn.MSELoss(),
        torch.device("cpu"),
        start_lr=1e-4,
        end_lr=100.0,
        steps=300,
        smooth=0.9,
    )
    assert len(curve["lrs"]) < 300, "SGD on least squares diverges well before lr=100"
    assert "4 x its best" in curve["stopped"] or "became" in curve["stopped"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "weights restored"
    assert opt.param_groups[0]["lr"] == 0.01 and not opt.state, "optimizer restored"


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    from dlx.launch.lrfind import suggest

    lrs = [10 ** (-6 + i * 0.05) for i in range(100)]
    # flat, a fast drop centered at 1e-3, a minimum at ~1e-2, then a blow-up
    losses = [
        2 - math.tanh(3 * (math.log10(lr) + 3)) + (max(0, math.log10(lr) + 2) ** 2) * 5
        for lr in lrs
    ]
    tips = suggest(lrs, losses)
    assert tips["steepest"] == pytest.approx(1e-3, rel=0.15)
    assert tips["min_loss_lr"] == pytest.approx(1e-2, rel=0.5)
    assert tips["suggested"] == min(tips["steepest"], tips["min_loss_lr"] / 10)


def test_a_loss_that_falls_off_a_cliff_gets_a_suggestion_well_below_the_edge():
    """SGD on digits: flat, then the loss drops only right at its minimum, where the next step
    up diverges. The steepest point is the minimum itself; the suggestion stays 10x below."""
    from dlx.launch.lrfind import suggest

    lrs = [10 ** (-5 + i * 0.05) for i in range(106)]  # 1e-5 .. ~1.4
    losses = [2.3] * 104 + [1.9, 9.0]  # flat at ln(10), a last drop, then divergence
    tips = suggest(lrs, losses)
    assert tips["steepest"] == pytest.approx(tips["min_loss_lr"])
    assert tips["suggested"] == pytest.approx(tips["min_loss_lr"] / 10)


def test_a_slow_fall_over_many_decades_gets_the_minimum_over_10_not_1e_7():
    """The lecture's function under Adam: the MSE wiggles at tiny lrs (batch noise), then falls
    slowly from 1e-5 to 1e-2. Its steepest point says nothing about a good lr (it suggested
    1.7e-07, then 3.4e-05); the minimum's lr / 10 does."""
    from dlx.launch.lrfind import suggest

    lrs = [10 ** (-7 + i * 0.04) for i in range(140)]  # 1e-7 .. ~3e-2
    wiggle = [0.162, 0.169, 0.161, 0.160, 0.164]
    losses = [
        wiggle[i % 5] if lr < 5e-6 else 0.155 - 0.036 * (math.log10(lr) + 5.3)
        for i, lr in enumerate(lrs)
    ]
    losses = [*losses[:-5], *(losses[-6] * (1.5 + k) for k in range(5))]
    tips = suggest(lrs, losses)
    assert tips["suggested"] == pytest.approx(tips["min_loss_lr"] / 10)
    assert tips["suggested"] > 5e-4


@pytest.mark.parametrize(
    "override, says",
    [
        ("lr_find.steps=3", "lr_find.steps"),
        ("lr_find.end_lr=1e-9", "lr_find.end_lr"),
        ("lr_find.speed=2", "lr_find.start_lr"),  # unknown key: lists the allowed ones
        ("opt.lr=-1", "opt.lr"),
    ],
)
def test_lr_find_bad_settings_exit_2(override, says, tmp_path):
    code, text = lr_find_in_process([override, f"hydra.run.dir={tmp_path / 'x'}"])
    assert code == 2 and says in text and "Traceback" not in text
    assert not (tmp_path / "x").exists(), "nothing is written for bad input"
