"""(1) Step overhead: one epoch of the same LeNet on MNIST-sized random tensors (60,000 x
1x28x28, batch 128, Adam), through dlx's training loop and three hand-written alternatives,
side by side in this process, interleaved, each repeated; medians and paired ratios.

- dlx: `dlx train data=bench_mnist model=cnn batch_size=128 epochs=1` in this process (Hydra,
  `training.loop.fit`, the in-memory fast path); its epoch as the run's console sees it
  (training, the 256-image validation, checkpoints, TensorBoard).
- plain, one tensor: a hand-written loop slicing a shuffled index into the tensor.
- plain, DataLoader: the same loop over `DataLoader(TensorDataset, shuffle=True)` (per-sample
  indexing and collate, as most hand-written PyTorch does).
- Lightning: `Trainer(max_epochs=1)` on the same DataLoader (skipped if not installed).
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from benchdata import tensors
from benchlib import Row, dlx_fit, median, rotated, spread
from torch.utils.data import DataLoader, TensorDataset

from dlx.models.cnn import LeNet

N, BATCH, LR, SHAPE = 60_000, 128, 1e-3, (1, 28, 28)


def new_model() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)  # dlx builds its model after the same seed: the same init
    model = LeNet(SHAPE, 10)
    return model, torch.optim.Adam(model.parameters(), lr=LR)


def plain_tensor(x: torch.Tensor, y: torch.Tensor) -> float:
    model, opt = new_model()
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    model.train()
    perm = torch.randperm(len(x), generator=gen)
    for i in range(0, len(x), BATCH):
        idx = perm[i : i + BATCH]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def plain_dataloader(x: torch.Tensor, y: torch.Tensor) -> float:
    model, opt = new_model()
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=BATCH,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    start = time.perf_counter()
    model.train()
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def lightning_available() -> bool:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return False
    return True


def lightning_epoch(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(the epoch as Lightning's own hooks see it, the whole `trainer.fit` call)."""
    import lightning as L

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)

    class Lit(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net, _ = new_model()

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            return F.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=LR)

    marks: list[float] = []

    class EpochTimer(L.Callback):
        def on_train_epoch_start(self, trainer, module) -> None:
            marks.append(time.perf_counter())

        def on_train_epoch_end(self, trainer, module) -> None:
            marks.append(time.perf_counter())

    threads = torch.get_num_threads()
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[EpochTimer()],
    )
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=BATCH,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    module = Lit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "consider more workers", "no val loop", ...
        start = time.perf_counter()
        trainer.fit(module, loader)
        whole = time.perf_counter() - start
    torch.set_num_threads(threads)  # the same threads for every variant
    return marks[1] - marks[0], whole


def run(quick: bool = False, repeats: int | None = None, log=print) -> list[Row]:
    n = 12_000 if quick else N
    repeats = repeats or (1 if quick else 5)  # each repeat swings +-8% here: 5 for the median
    x, y = tensors(n, SHAPE)
    have_lightning = lightning_available()
    plain_tensor(x[:4096], y[:4096])  # warm-up: kernels, allocator, thread pool
    # and dlx's: its first fit in a process imports what the loop needs on first use
    # (TensorBoard's writer, the figures' matplotlib), which no later repeat pays again
    dlx_args = [
        "data=bench_mnist",
        "model=cnn",
        "opt=adam",
        f"opt.lr={LR}",
        f"batch_size={BATCH}",
        "epochs=1",
        "device=cpu",
        "seed=0",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        dlx_fit([*dlx_args, "data.n=4096"], Path(tmp) / "warm-up")
    times: dict[str, list[float]] = {
        "dlx": [],
        "dlx_run": [],
        "tensor": [],
        "dataloader": [],
        "lightning": [],
        "lightning_fit": [],
    }
    variants = ["dlx", "tensor", "dataloader"] + (["lightning"] if have_lightning else [])
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for v in rotated(variants, r):
                if v == "dlx":
                    m = dlx_fit([*dlx_args, f"data.n={n}"], Path(tmp) / f"dlx{r}")
                    times["dlx"].append(m["epoch_s"][0])
                    times["dlx_run"].append(m["call_s"])
                elif v == "tensor":
                    times["tensor"].append(plain_tensor(x, y))
                elif v == "dataloader":
                    times["dataloader"].append(plain_dataloader(x, y))
                else:
                    epoch, whole = lightning_epoch(x, y)
                    times["lightning"].append(epoch)
                    times["lightning_fit"].append(whole)
                log(f"  (1) repeat {r + 1}/{repeats} {v}: {times[v][-1]:.2f} s")

    def ratio(a: str, b: str) -> float:  # paired: the same repeat, then the median
        return median([p / q for p, q in zip(times[a], times[b], strict=True)])

    bench = f"1 step overhead ({n:,} x 1x28x28, batch {BATCH}, Adam, 1 epoch)"
    runs = repeats
    rows = [
        Row(bench, "plain loop, one tensor: s/epoch", spread(times["tensor"]), runs=runs),
        Row(
            bench,
            "dlx (`training.loop.fit`, in-memory fast path): s/epoch",
            spread(times["dlx"]),
            runs=runs,
        ),
        Row(
            bench,
            "dlx / plain tensor loop",
            f"{ratio('dlx', 'tensor'):.3f}x",
            "<= 1.03x",
            ratio("dlx", "tensor") <= 1.03,
            runs,
        ),
        Row(
            bench,
            "plain loop, per-sample DataLoader: s/epoch",
            spread(times["dataloader"]),
            runs=runs,
        ),
        Row(
            bench,
            "DataLoader loop / dlx",
            f"{ratio('dataloader', 'dlx'):.3f}x",
            "> 1 (dlx faster)",
            ratio("dataloader", "dlx") > 1,
            runs,
        ),
    ]
    if have_lightning:
        rows += [
            Row(
                bench,
                "Lightning Trainer (same DataLoader): s/epoch",
                spread(times["lightning"]),
                runs=runs,
            ),
            Row(
                bench,
                "Lightning / dlx",
                f"{ratio('lightning', 'dlx'):.3f}x",
                "> 1 (dlx faster)",
                ratio("lightning", "dlx") > 1,
                runs,
            ),
            Row(
                bench,
                "whole call incl. set-up: `dlx.train` vs `trainer.fit`",
                f"{median(times['dlx_run']):.2f} s vs {median(times['lightning_fit']):.2f} s",
                runs=runs,
            ),
        ]
    else:
        rows.append(
            Row(
                bench,
                "Lightning Trainer",
                "skipped: lightning is not installed (pip install -e '.[bench]')",
            )
        )
        rows.append(
            Row(
                bench,
                "whole call incl. set-up: `dlx.train`",
                f"{median(times['dlx_run']):.2f} s",
                runs=runs,
            )
        )
    return rows
