"""Every option of every config group composes (with dlx's own compose), validates, builds, and
trains: one training step each, an epoch and its end for the schedulers (so onecycle and plateau
step for real). No network: the torchvision sets are small fakes, the image folder is written
here, and transfer learning runs without its ImageNet download (model.pretrained=false)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dlx.config.compose import compose, conf_dir, group_options
from dlx.config.rules import validate
from dlx.errors import UserError

GROUPS = sorted(p.name for p in conf_dir().iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(g, o) for g in GROUPS for o in group_options(g)]
TINY = ["batch_size=64", "epochs=2", "log.graph=false", "log.grad_norm_every=1"]
VISION = ("mnist", "fashion_mnist", "cifar10")


class FakeVision:
    """torchvision's MNIST / FashionMNIST / CIFAR10 as dlx reads them: `.data`, `.targets`,
    `.classes`, MNIST's (N, 28, 28) uint8 tensor or CIFAR's (N, 32, 32, 3) uint8 array."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, root, train=True, download=False, transform=None):
        rng = np.random.default_rng(0 if train else 1)
        n = 160 if train else 40
        if self.name == "CIFAR10":
            self.data = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
        else:
            self.data = torch.as_tensor(rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        self.targets = rng.integers(0, 10, n).tolist()
        self.classes = [str(c) for c in range(10)]
        return self


@pytest.fixture
def no_downloads(monkeypatch):
    import dlx.data.vision as vision

    monkeypatch.setattr(vision, "ensure", lambda source, root, download: None)
    monkeypatch.setattr(vision, "torchvision_class", lambda name: FakeVision(name))


def image_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            img = rng.integers(0, 80, (20 + i % 3, 24, 3)).astype(np.uint8)
            img[..., 2 * c] += 150
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


def partners(group: str, option: str, tmp_path: Path) -> list[str]:
    """What an option needs beside it to make a run."""
    vision = [f"data.root={tmp_path / 'data'}", "data.download=false"]
    if group == "data" and option in VISION:
        return vision
    if group == "data" and option == "function":
        return ["model=mlp"]  # a conv net needs images (refused by name otherwise)
    if group == "data" and option == "imagefolder":
        return [f"data.root={image_folder(tmp_path / 'images')}", "data.image_size=16"]
    if group == "aug" and option in ("cifar", "mnist"):  # their crops are those sets' sizes
        return ["data=cifar10" if option == "cifar" else "data=mnist", *vision]
    if group == "experiment" and option == "transfer_learning":
        return ["model.pretrained=false"]  # the ImageNet weights are a download
    return []


def start(cfg, run_dir: Path):
    from dlx.tracking.console import RunConsole
    from dlx.training.run import Dist, begin, build_run

    run = build_run(cfg, run_dir, Dist(), RunConsole(enabled=False))
    begin(run, resume=False)
    return run


def device_missing(cfg) -> bool:
    kind = str(cfg.device.type)
    mps = getattr(torch.backends, "mps", None)
    return (kind == "cuda" and not torch.cuda.is_available()) or (
        kind == "mps" and not (mps and mps.is_available())
    )


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_builds_and_takes_a_training_step(
    group, option, tmp_path, no_downloads
):
    cfg = compose([f"{group}={option}", *partners(group, option, tmp_path), *TINY])
    validate(cfg)
    if device_missing(cfg):  # asked for a device that is not here: one clear refusal
        with pytest.raises(UserError, match="device=") as err:
            start(cfg, tmp_path / "run")
        assert err.value.key == "device"
        return
    one_step(cfg, tmp_path, f"{group}={option}")


def one_step(cfg, tmp_path: Path, label: str) -> None:
    """Build the run and take one training step: finite loss, some weight moved."""
    from dlx.training.step import train_step

    run = start(cfg, tmp_path / "run")
    try:
        trainable = [p for p in run.model.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in trainable]
        xb, yb = next(iter(run.train_loader))
        run.state.global_step = 1
        out, loss = train_step(run.step, xb.to(run.device), yb.to(run.device))
        assert out.shape[0] == len(yb)
        assert torch.isfinite(loss), f"{label}: loss {loss}"
        changed = sum(
            not torch.equal(a, p.detach()) for a, p in zip(before, trainable, strict=True)
        )
        assert changed, f"{label}: the step changed no weight"
    finally:
        run.tracker.close()


# The lecture's model knobs (keys, not group options): each composed, validated, built, stepped.
KNOBS = [
    ["model.kernel_size=3", "model.padding=0"],
    ["model.stride=2", "model.pool=avg"],
    ["model.pool=none", "model.kernel_size=3", "model.padding=1"],
    ["model.pool=max", "model.pool_size=3", "model.pool_stride=1"],
    ["model=alexnet", "model.kernel_size=3", "model.stride=2", "model.padding=0"],
    ["model=alexnet", "model.pool=avg", "model.pool_size=2", "model.pool_stride=null"],
    ["data=moons", "loss=bce", "data.n_samples=100", "data.noise=0.3"],
    ["data=spiral", "loss=bce", "data.turns=2.5", "model.width=16"],
    ["data=circles", "data.factor=0.3", "model.depth=3"],
]


@pytest.mark.parametrize("knobs", KNOBS, ids=[" ".join(k) for k in KNOBS])
def test_every_lecture_knob_composes_builds_and_takes_a_training_step(knobs, tmp_path):
    cfg = compose([*knobs, *TINY, "data.limit=64"])
    validate(cfg)
    one_step(cfg, tmp_path, " ".join(knobs))


@pytest.mark.parametrize("option", group_options("sched"))
def test_every_scheduler_steps_in_a_real_epoch(option, tmp_path, no_downloads):
    from dlx.training.loop import end_epoch, train_epoch
    from dlx.training.signals import StopRequested

    cfg = compose([f"sched={option}", *TINY, "early_stopping.enabled=false"])
    run = start(cfg, tmp_path / "run")
    try:
        lr0 = run.optimizer.param_groups[0]["lr"]
        with StopRequested() as stop:
            train_stats = train_epoch(run, stop)
        assert train_stats is not None
        assert end_epoch(run, 1, train_stats) is None
        steps = len(run.train_loader)
        lr1 = run.optimizer.param_groups[0]["lr"]
        if option == "none":
            assert run.scheduler is None and lr1 == lr0
            return
        # stepped once per batch (onecycle) or once per epoch (the others, plateau with the
        # validation loss)
        expected = steps if run.sched_when == "batch" else 1
        assert run.scheduler.last_epoch == expected, (option, run.sched_when)
        if option == "onecycle":  # warm-up from max_lr / div_factor: the lr has moved
            assert lr1 != lr0
        if option == "plateau":
            assert (
                run.sched_when == "plateau"
                and run.scheduler.best == run.state.history[0]["val"]["loss"]
            )
        assert (run.ckpt_dir / "last.pt").is_file()
    finally:
        run.tracker.close()


@pytest.mark.parametrize("option", group_options("hparams_search"))
def test_every_search_space_names_keys_the_config_has(option):
    cfg = compose([f"hparams_search={option}"], with_hydra=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params, f"hparams_search={option} searches nothing"
    for key in params:
        assert OmegaConf.select(cfg, key, default="<missing>") != "<missing>", (option, key)


@pytest.mark.parametrize("option", group_options("hydra/launcher"))
def test_every_launcher_preset_composes(option):
    try:
        cfg = compose([f"hydra/launcher={option}"], with_hydra=True)
    except UserError as exc:  # the launcher's plugin is an optional extra
        pytest.skip(f"hydra/launcher={option}: plugin not installed ({str(exc)[:80]})")
    assert str(cfg.hydra.launcher._target_).startswith("hydra_plugins.")
