"""Data-parallel training (DDP, gloo on the CPU): `dlx train trainer.devices=2` and
`torchrun --nproc_per_node=2 -m dlx train` each make ONE run folder, and the weights they
end with are the ones a single process reaches over the same global batches."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import dlx
from conftest import FAST, read_metrics
from dlx.data.loader import make_loader
from dlx.errors import UserError

# 192 training samples in global batches of 32: every batch splits evenly over 2 ranks.
# The default cnn has no BatchNorm and no dropout, so DDP must match one process exactly.
# Batch norm (the default cnn's) keeps per-rank batch statistics under data parallelism, as
# PyTorch's DDP does without SyncBatchNorm: equal weights need a model without it.
SMALL = [
    *FAST,
    "device=cpu",
    "data.limit=192",
    "batch_size=32",
    "epochs=2",
    "opt.lr=0.01",
    "model.batchnorm=false",
]
# Float sums in another order (each rank's kernels with their own thread count) move weights
# by ~1e-5 after these 12 Adam steps: one process with 1 torch thread vs 2 differs by 1.2e-5 on
# an AMD EPYC. A wrong split is 4 orders larger: batches of 16 instead of 32 differ by 0.24.
TOL = 1e-4


def run_folders(cwd: Path) -> list[Path]:
    """Every run folder under cwd/outputs/DATE/."""
    return [p for p in (cwd / "outputs").glob("*/*") if p.is_dir()]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    worst = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)
    assert worst < TOL, f"weights differ by {worst:.3g} (tolerance {TOL})"


def assert_one_run(cwd: Path) -> Path:
    folders = run_folders(cwd)
    assert len(folders) == 1, f"expected one run folder, got {folders}"
    run = folders[0]
    events = list(run.glob("events.out.tfevents.*"))
    assert len(events) == 1, f"expected one event file, got {events}"
    assert (run / ".hydra" / "config.yaml").is_file()
    assert read_metrics(run)["status"] == "completed"
    return run


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """The reference: one process over the same global batches."""
    run = tmp_path_factory.mktemp("single") / "run"
    dlx.train([*SMALL, f"hydra.run.dir={run}"])
    return run


# ----------------------------------------------------------------------------- batches


class Plain(Dataset):
    """Not a TensorDataset: goes through the DataLoader path. Item = its own index."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor([float(i)]), torch.tensor(i)


def batches(n: int, bs: int, rank: int, world: int, fast: bool) -> list[list[int]]:
    ids = torch.arange(n)
    data = TensorDataset(ids.float().unsqueeze(1), ids) if fast else Plain(n)
    gen = torch.Generator().manual_seed(0)
    loader = make_loader(
        data, bs, True, torch.device("cpu"), gen, num_workers=0, rank=rank, world_size=world
    )
    out = [yb.tolist() for _, yb in loader]
    assert len(out) == len(loader)
    return out


@pytest.mark.parametrize("fast", [True, False], ids=["in-memory", "DataLoader"])
@pytest.mark.parametrize("n,bs,world", [(100, 32, 2), (99, 33, 2), (64, 10, 3)])
def test_each_rank_gets_its_share_of_the_same_global_batch(fast, n, bs, world):
    whole = batches(n, bs, 0, 1, fast)
    shares = [batches(n, bs, r, world, fast) for r in range(world)]
    steps = {len(s) for s in shares}
    assert len(steps) == 1, f"ranks would take different numbers of steps: {steps} (DDP hangs)"
    for step, global_batch in enumerate(whole[: steps.pop()]):
        parts = [s[step] for s in shares]
        assert sorted(i for p in parts for i in p) == sorted(global_batch)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


# ---------------------------------------------------------------- 2 processes = 1 process


def test_devices_2_matches_one_process_in_one_folder(single, tmp_path, monkeypatch):
    """`dlx train trainer.devices=2`: 2 CPU processes (gloo), Hydra's default run folder."""
    monkeypatch.chdir(tmp_path)
    metrics = dlx.train([*SMALL, "trainer.devices=2"])
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 2
    run = assert_one_run(tmp_path)
    assert len(re.findall(r"epoch +2/2 ", (run / "train.log").read_text())) == 1  # rank 0 alone
    assert_same_weights(run, single)
    ref = read_metrics(single)
    assert metrics["val"]["loss"] == pytest.approx(ref["val"]["loss"], abs=1e-5)
    assert metrics["history"][-1]["train"]["loss"] == pytest.approx(
        ref["history"][-1]["train"]["loss"], abs=1e-5
    )


def test_torchrun_ranks_share_one_run_folder(single, tmp_path):
    """The Hydra + DDP pitfall: every rank running Hydra must not make a folder of its own."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "dlx",
            "train",
            *SMALL,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = assert_one_run(tmp_path)
    assert proc.stdout.count("dlx run summary") == 1  # ranks > 0 stay quiet
    assert_same_weights(run, single)


def test_resume_continues_with_the_same_processes(single, tmp_path):
    """`dlx train --resume` of a trainer.devices=2 run restarts 2 ranks; the resumed run ends
    where an uninterrupted one-process run ends."""
    from dlx.launch.resume import resume

    run = tmp_path / "run"
    dlx.train([*SMALL, "trainer.devices=2", "epochs=1", f"hydra.run.dir={run}"])
    metrics = resume(str(run), ["epochs=2"])
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 2
    assert_same_weights(run, single)


def test_ctrl_c_stops_every_rank_and_keeps_the_checkpoint(tmp_path):
    """One Ctrl-C: all ranks leave the loop together (no rank left waiting in an all-reduce)."""
    e = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlx",
            "train",
            *SMALL,
            "trainer.devices=2",
            "epochs=100000",
            "early_stopping.enabled=false",
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=e,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "train.log").is_file() or not re.search(
            r"epoch +1/", (run / "train.log").read_text()
        ):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-3000:]
    metrics = read_metrics(run)
    assert metrics["status"] == "interrupted"
    assert (run / "checkpoints" / "last.pt").is_file()


# ---------------------------------------------------------------------------- bad input


def test_an_error_in_the_ranks_reaches_the_caller(tmp_path):
    """A UserError raised inside the spawned ranks comes back as itself (the CLI: exit 2)."""
    run = tmp_path / "run"
    with pytest.raises(UserError, match="needs trainer.devices=1") as err:
        dlx.train(
            [
                *SMALL,
                "epochs=1",
                "trainer.devices=2",
                "+model.unfreeze_at_epoch=1",
                f"hydra.run.dir={run}",
            ]
        )
    assert err.value.key == "model.unfreeze_at_epoch"


def test_torchrun_refuses_what_it_cannot_do(monkeypatch):
    from dlx.launch.preflight import preflight

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(UserError, match="trainer.devices") as err:
        preflight(["trainer.devices=3", "device=cpu"])
    assert err.value.key == "trainer.devices"
    with pytest.raises(UserError, match="Sweeps do not run under torchrun"):
        preflight(["opt.lr=0.1,0.01", "device=cpu"], multirun=True)


def test_data_parallel_device_requests_are_checked_before_the_run(monkeypatch):
    """More ranks than GPUs, or MPS (no torch.distributed backend): exit 2, named key."""
    from dlx.launch.preflight import preflight

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match="only 1 CUDA GPU") as err:
        preflight(["trainer.devices=2", "device=cuda"])
    assert err.value.key == "trainer.devices"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    with pytest.raises(UserError, match="MPS"):
        preflight(["trainer.devices=2", "device=mps"])
