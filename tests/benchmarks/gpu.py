"""`make bench-gpu`: ResNet-18 on CIFAR-shaped synthetic data (50,000 x 3x32x32), images/s.

    python tests/benchmarks/gpu.py                     # on a machine with a CUDA GPU
    python tests/benchmarks/gpu.py --device cpu --quick  # smoke test of the same code on a CPU

Variants, in one process, each trained for a warm-up epoch and then a measured one:
- dlx fp32; dlx bf16 + channels_last; dlx bf16 + channels_last + compile: `dlx train
  data=bench_cifar model=resnet` in this process, so the data sits on the GPU (in-memory fast
  path) and batches are index slices there;
- a plain loop with a DataLoader (pinned memory, workers, non-blocking copies), fp32 and
  bf16 + channels_last: torchvision's resnet18, what one would write by hand.

dlx turns on cuDNN's autotuner on CUDA (`training/device.py: tune_backends`); the plain loop
runs with torch's defaults, as written by hand.

images/s counts the training steps of the measured epoch between two loss read-outs (every
`log.every_n_steps`, where dlx syncs anyway; the plain loop reads its loss at the same
steps), so both sides are timed on the same kind of interval. "epoch s" is the whole measured
epoch (dlx's includes validation on 512 images and its two checkpoints).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from benchdata import tensors  # noqa: E402
from benchlib import dlx_fit  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

SHAPE = (3, 32, 32)
LR = 1e-3


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dlx_variant(
    device: str,
    n: int,
    batch: int,
    every: int,
    precision: str,
    channels_last: bool,
    compile_: bool,
    tmp: Path,
) -> dict[str, float]:
    marks: list[tuple[float, int]] = []
    from dlx.training import loop

    base = loop.RunConsole
    state = {"epoch": 0, "step": 0}

    class StepTimer(base):  # type: ignore[misc, valid-type]
        """Marks the read-outs of the last epoch (dlx has just synced on the loss there)."""

        def epoch_start(self, epoch: int) -> None:
            state["epoch"], state["step"] = epoch, 0
            marks.clear()
            super().epoch_start(epoch)

        def tick(self) -> None:  # one optimizer step (host side)
            state["step"] += 1
            super().tick()

        def show(self, *args, **kwargs) -> None:  # a read-out: dlx has just synced on the loss
            marks.append((time.perf_counter(), state["step"]))
            super().show(*args, **kwargs)

    loop.RunConsole = StepTimer
    try:
        m = dlx_fit(
            [
                "data=bench_cifar",
                f"data.n={n}",
                "model=resnet",
                "model.arch=resnet18",
                "opt=adam",
                f"opt.lr={LR}",
                f"batch_size={batch}",
                "epochs=2",
                "early_stopping.enabled=false",
                f"device={device}",
                f"precision={precision}",
                f"channels_last={str(channels_last).lower()}",
                f"compile={str(compile_).lower()}",
                f"log.every_n_steps={every}",
                "log.graph=false",
                "seed=0",
            ],
            tmp,
        )
    finally:
        loop.RunConsole = base
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return {"images_s": (s1 - s0) * batch / (t1 - t0), "epoch_s": m["epoch_s"][-1]}


def plain_variant(
    device: str, n: int, batch: int, every: int, precision: str, channels_last: bool, workers: int
) -> dict[str, float]:
    import torchvision

    dev = torch.device(device)
    x, y = tensors(n, SHAPE)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        pin_memory=dev.type == "cuda",
        persistent_workers=workers > 0,
    )
    amp = (
        torch.autocast(dev.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    result: dict[str, float] = {}
    for _epoch in range(2):  # warm-up, then the measured one
        marks: list[tuple[float, int]] = []
        sync(dev)
        start = time.perf_counter()
        for i, (xb, yb) in enumerate(loader, start=1):
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with amp:
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i % every == 0:
                loss.item()  # what a loop that logs its loss does, and a sync point to time at
                marks.append((time.perf_counter(), i))
        sync(dev)
        result["epoch_s"] = time.perf_counter() - start
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    result["images_s"] = (s1 - s0) * batch / (t1 - t0)
    return result


def device_name(device: str) -> str:
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    return f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true", help="a few hundred images: a smoke test")
    ap.add_argument(
        "--n", type=int, default=None, help="training images (default 50,000; quick 256)"
    )
    ap.add_argument("--batch", type=int, default=None, help="batch size (default 256; quick 32)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    ap.add_argument(
        "--workers", type=int, default=None, help="DataLoader workers for the plain loop"
    )
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "error: `make bench-gpu` needs a CUDA GPU, and torch sees none here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Run it on a "
            "machine with an NVIDIA GPU, or try the code path on this CPU with "
            "`python tests/benchmarks/gpu.py --device cpu --quick`.",
            file=sys.stderr,
        )
        return 2
    n = args.n or (256 if args.quick else 50_000)
    batch = args.batch or (32 if args.quick else 256)
    steps = n // batch
    every = max(1, min(20, steps // 4))  # at least a few read-outs per epoch
    if steps < 2 * every:
        print(
            f"error: --n {n} with --batch {batch} gives {steps} steps: too few to time",
            file=sys.stderr,
        )
        return 2
    workers = (
        args.workers if args.workers is not None else min(8, max(0, (os.cpu_count() or 1) - 1))
    )

    variants = [
        ("dlx", "fp32", False, False),
        ("dlx", "bf16", True, False),
        ("dlx", "bf16", True, True),
        ("plain DataLoader", "fp32", False, False),
        ("plain DataLoader", "bf16", True, False),
    ]
    if args.no_compile:
        variants = [v for v in variants if not v[3]]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (who, precision, cl, comp) in enumerate(variants):
            if args.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            if who == "dlx":
                r = dlx_variant(
                    args.device, n, batch, every, precision, cl, comp, Path(tmp) / f"v{k}"
                )
            else:
                torch.backends.cudnn.benchmark = (
                    False  # torch's default, as a hand-written loop has it
                )
                r = plain_variant(args.device, n, batch, every, precision, cl, workers)
            r["wall_s"] = time.perf_counter() - start
            r["peak_gib"] = (
                torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else 0.0
            )
            name = (
                f"{who}, {precision}"
                + (" + channels_last" if cl else "")
                + (" + compile" if comp else "")
            )
            results.append((name, r))
            print(
                f"  {name}: {r['images_s']:,.0f} images/s, epoch {r['epoch_s']:.2f} s, "
                f"run {r['wall_s']:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    base = results[0][1]["images_s"]
    by_name = dict(results)
    print(
        f"ResNet-18, {n:,} x 3x32x32 synthetic images, batch {batch}, Adam; "
        f"{device_name(args.device)}; torch {torch.__version__}; "
        f"plain loop: {workers} DataLoader workers\n"
    )
    print("| variant | images/s | vs dlx fp32 | epoch s | peak GPU memory |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in results:
        mem = f"{r['peak_gib']:.1f} GiB" if args.device == "cuda" else "-"
        speed = f"{r['images_s']:,.0f} | {r['images_s'] / base:.2f}x"
        print(f"| {name} | {speed} | {r['epoch_s']:.2f} | {mem} |")
    for prec in ("fp32", "bf16 + channels_last"):
        d, p = by_name.get(f"dlx, {prec}"), by_name.get(f"plain DataLoader, {prec}")
        if d and p:
            print(
                f"| dlx / plain DataLoader, {prec} | {d['images_s'] / p['images_s']:.2f}x | | | |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
