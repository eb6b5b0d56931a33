"""The training knobs and debug aids as plain objects: each does what its name says, numerically
(the CLI tests in test_knobs.py show the same through `dlx train`)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from dlx.errors import UserError


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


def _batch(n: int = 24):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 16, generator=g), torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize("accum", [2, 3, 4, 5])
def test_accumulated_micro_batches_give_the_big_batchs_step(accum):
    from dlx.training.step import Step, train_step

    x, y = _batch(24)  # 5 does not divide 24: uneven slices still weigh by their size
    results = []
    for micro in (1, accum):
        model = _mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        step = Step(model, model, nn.CrossEntropyLoss(), opt, torch.device("cpu"), accum=micro)
        out, loss = train_step(step, x, y)
        results.append((loss, out, [p.detach().clone() for p in model.parameters()]))
    (loss1, out1, w1), (loss_n, out_n, w_n) = results
    assert torch.allclose(loss1, loss_n, atol=1e-6)
    assert torch.allclose(out1, out_n, atol=1e-6)
    for a, b in zip(w1, w_n, strict=True):
        assert torch.allclose(a, b, atol=1e-6), "the accumulated step differs from the big batch"
    assert any(not torch.equal(a, p) for a, p in zip(w1, _mlp().parameters(), strict=True))


def test_clipping_bounds_the_update_and_reports_the_norm_before():
    from dlx.training.clipping import GradClip

    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    x, y = _batch()
    (nn.CrossEntropyLoss()(model(x), y) * 1000).backward()  # a huge gradient
    clip = GradClip(opt, max_norm=0.01)
    pre = clip()
    assert pre > 1.0
    opt.step()
    update = torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)]
    )
    assert update.norm() <= 0.01 * 1.0001  # lr * max_norm
    stats = clip.epoch_stats()
    assert stats["grad_clip/norm_mean"] == pytest.approx(pre.item())
    assert stats["grad_clip/clipped_fraction"] == 1.0


def test_warmup_raises_the_lr_linearly_then_the_schedule_starts_from_opt_lr():
    from omegaconf import OmegaConf

    from dlx.training.warmup import build_schedule

    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched_cfg = OmegaConf.create(
        {
            "name": "step",
            "_target_": "torch.optim.lr_scheduler.StepLR",
            "_partial_": True,
            "step_size": 1,
            "gamma": 0.5,
            "warmup_epochs": 2,
        }
    )
    sched = build_schedule(sched_cfg, opt, epochs=4, steps_per_epoch=2)
    seen = []
    for epoch in range(1, 5):
        for _ in range(2):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.after_step()
        sched.after_epoch(epoch, 0.0)
    assert seen == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.05, 0.05])


def test_warmup_resumes_exactly_from_its_state_and_the_optimizers():
    from omegaconf import OmegaConf

    from dlx.training.warmup import build_schedule

    cfg = OmegaConf.create({"name": "none", "warmup_epochs": 2})

    def run(stop_at: int | None):
        model = _mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = build_schedule(cfg, opt, epochs=3, steps_per_epoch=3)
        lrs = []
        for i in range(9):
            if stop_at is not None and i == stop_at:  # "kill": rebuild, load what was saved
                state, opt_state = copy.deepcopy(sched.state_dict()), opt.state_dict()
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
                sched = build_schedule(cfg, opt, epochs=3, steps_per_epoch=3)
                opt.load_state_dict(opt_state)
                sched.load_state_dict(state)
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.after_step()
        return lrs

    assert run(None) == run(4)
    assert run(None)[0] < run(None)[5] == pytest.approx(0.1)


def test_ema_averages_the_weights_and_its_state_round_trips():
    from dlx.training.ema import EMA

    model = _mlp()
    ema = EMA(model, 0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = _batch()
    for _ in range(3):
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(x), y).backward()
        opt.step()
        ema.update(model)
    raw, avg = model.state_dict(), ema.module.state_dict()
    assert raw.keys() == avg.keys()
    assert any(not torch.equal(raw[k], avg[k]) for k in raw), "EMA equals the raw weights"
    other = EMA(_mlp(), 0.5)
    other.load_state_dict(ema.state_dict())
    assert all(torch.equal(other.module.state_dict()[k], avg[k]) for k in avg)
    assert int(other.averaged.n_averaged) == 3


def test_mixing_mixes_images_and_labels_and_refuses_regression():
    from omegaconf import OmegaConf

    from dlx.data import DataBundle
    from dlx.data.mixing import build_mixing

    empty = torch.utils.data.TensorDataset(torch.zeros(1))
    images = DataBundle(empty, empty, empty, "classification", (1, 8, 8), num_classes=10)
    aug = OmegaConf.create({"mixup": 1.0, "cutmix": 1.0})
    mix = build_mixing(aug, images)
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 10
    xm, ym = mix(x, y)
    assert ym.shape == (16, 10) and torch.allclose(ym.sum(1), torch.ones(16))
    assert (ym.max(1).values < 1).any(), "no soft label: nothing was mixed"
    assert not torch.equal(xm, x)
    assert build_mixing(OmegaConf.create({"mixup": 0.0, "cutmix": 0}), images) is None
    regression = DataBundle(empty, empty, empty, "regression", (1,), name="function")
    with pytest.raises(UserError, match="aug.mixup"):
        build_mixing(OmegaConf.create({"mixup": 0.2}), regression)


def test_deterministic_mode_names_the_op_without_a_deterministic_version_and_restores():
    from dlx.training.determinism import deterministic_mode

    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    with pytest.raises(UserError, match="`max_unpooling2d_forward_out`") as info:
        with deterministic_mode(True):
            assert torch.are_deterministic_algorithms_enabled()
            unpool(*pool(torch.randn(1, 1, 4, 4)))  # no deterministic version on any device
    assert info.value.key == "deterministic"
    assert not torch.are_deterministic_algorithms_enabled()


def test_anomaly_names_the_op_that_made_nan():
    from dlx.training.debug import Anomaly

    anomaly = Anomaly()
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.fill_(1e38)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with anomaly.detecting(), pytest.raises(RuntimeError) as info:
            loss = nn.functional.cross_entropy(model(torch.randn(2, 4) * 1e5), torch.tensor([0, 1]))
            loss.backward()
    msg = anomaly.message(info.value, step=7)
    assert "log_softmax" in msg and "LogSoftmaxBackward0" in msg and "step 7" in msg
    assert "cross_entropy" in msg
    assert not torch.is_anomaly_enabled()


def test_limit_batches_counts_and_shares():
    from dlx.training.debug import Limited, batches_kept, limit_loader

    assert batches_kept(20, None) == 20
    assert batches_kept(20, 1) == 1
    assert batches_kept(20, 0.25) == 5
    assert batches_kept(20, 0.01) == 1
    assert batches_kept(3, 10) == 3
    loader = limit_loader(list(range(20)), 3)
    assert isinstance(loader, Limited) and list(loader) == [0, 1, 2] and len(loader) == 3
