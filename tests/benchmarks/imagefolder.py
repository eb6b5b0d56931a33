"""Image folders: `dlx train data=imagefolder` (the decode cache) against the plain torchvision
script (`plain_imagefolder.py`: ImageFolder + DataLoader(num_workers=2, persistent_workers=True),
the same LeNet, every image), fresh processes, paired and interleaved.

(a) 10,000 PNGs of 32x32 in 4 classes, 3 epochs, the whole process; dlx's first run on the
    folder (the cache is built: every image decoded once) and a later run (cache reused).
(b) the epoch after the first (dlx: from train.log's epoch lines; training on its 70% split
    plus validating on 15%, the plain script trains on all images).
(c) a folder whose decoded pixels are larger than the memory budget (BUDGET_MB for the
    whole process, `data.memory_limit_mb` for the pixels): dlx picks the memory-mapped cache
    (`data.cache=auto`); its peak RSS against the budget, and its epoch time against the plain
    script's. Scaled down from 200,000 images (BIG: 40,000 at 64x64, 0.46 GiB of pixels, against a
    256 MiB data budget) to fit this benchmark's time on 2 shared cores.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchlib import HERE, Row, bench_env, check, dlx_cmd, median, run_proc, spread

SMALL = (10_000, 32, 4)  # images, size, classes
BIG = (40_000, 64, 4)  # 0.46 GiB of uint8 pixels (200,000 would take over an hour here)
BUDGET_MB = 1280  # (c): the process's peak RSS may not pass this
DATA_LIMIT_MB = 256  # (c): data.memory_limit_mb, what auto may hold in memory
TIMEOUT = 3600  # per process: a loaded 2-core machine is slow


def make_folder(root: Path, n: int, size: int, classes: int, seed: int = 0) -> Path:
    """n PNGs, each class its own colour with noise (easy to learn, not trivial to compress)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (classes, 1, 1, 3))
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        c = i % classes
        img = (base[c] * 0.6 + rng.integers(0, 100, (size, size, 3))).astype(np.uint8)
        Image.fromarray(img).save(root / f"class{c}" / f"{i:06d}.png", compress_level=1)
    return root


def drop_cache(root: Path) -> None:
    for p in root.glob(".dlx-cache-*"):
        p.unlink()


def epoch_times(run_dir: Path) -> list[float]:
    """Seconds between the epoch lines of train.log (epoch 2 on: each one's full time)."""
    stamps = []
    for line in (run_dir / "train.log").read_text().splitlines():
        m = re.match(r"\[([\d-]+ [\d:]+,\d+)\]\[INFO\] epoch +\d+/\d+", line)
        if m:
            stamps.append(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def dlx_run(root: Path, size: int, epochs: int, out: Path, *extra: str):
    run_dir = out / f"dlx-{time.time_ns()}"
    args = [
        "train",
        "data=imagefolder",
        f"data.root={root}",
        f"data.image_size={size}",
        "model=cnn",
        f"epochs={epochs}",
        "early_stopping.enabled=false",
        "log.graph=false",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    proc = check(
        run_proc(dlx_cmd(*args), cwd=out, env=bench_env(), timeout=TIMEOUT), "dlx train imagefolder"
    )
    served = next(
        (ln for ln in proc.output.splitlines() if ln.startswith("data:") and "cache" in ln), ""
    )
    return proc, epoch_times(run_dir), served


def plain_run(root: Path, size: int, epochs: int, out: Path, preloaded: bool = False):
    script = str(HERE / "plain_imagefolder.py")
    import sys

    proc = check(
        run_proc(
            [sys.executable, script, str(root), str(size), str(epochs)]
            + (["preloaded"] if preloaded else []),
            cwd=out,
            env=bench_env(),
            timeout=TIMEOUT,
        ),
        "plain_imagefolder.py",
    )
    report = json.loads(proc.output.strip().splitlines()[-1])
    return proc, report["epoch_s"]


def run(quick: bool = False, repeats: int | None = None, log=print) -> list[Row]:
    reps = repeats or (1 if quick else 3)
    n, size, k = (2_000, 32, 4) if quick else SMALL
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="dlx-bench-if-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        root = make_folder(tmp / "small", n, size, k)
        log(f"imagefolder: {n:,} PNGs {size}x{size} written in {time.perf_counter() - t:.0f} s")
        cold, warm, plain, dlx_ep, plain_ep, floor_ep = [], [], [], [], [], []
        for r in range(reps):
            order = ["cold", "plain", "floor"] if r % 2 == 0 else ["floor", "plain", "cold"]
            for which in order:
                if which == "cold":
                    drop_cache(root)
                    p, ep, served = dlx_run(root, size, 3, tmp)
                    cold.append(p.seconds)
                    p, ep, served = dlx_run(root, size, 3, tmp)  # the cache from the run before
                    warm.append(p.seconds)
                    dlx_ep.append(median(ep))
                elif which == "plain":
                    p, ep = plain_run(root, size, 3, tmp)
                    plain.append(p.seconds)
                    plain_ep.append(median(ep[1:]))
                else:  # the same steps from one preloaded tensor: the epoch's compute alone
                    p, ep = plain_run(root, size, 2, tmp, preloaded=True)
                    floor_ep.append(ep[-1])
            log(
                f"  repeat {r + 1}: dlx first {cold[-1]:.1f} s, later {warm[-1]:.1f} s, "
                f"plain {plain[-1]:.1f} s"
            )
        bench = f"imagefolder (a, b): {n:,} PNGs {size}x{size}, {k} classes, LeNet, 3 epochs"
        rows += [
            Row(bench, "plain torchvision script, whole process", spread(plain), runs=reps),
            Row(
                bench,
                "`dlx train data=imagefolder` first run (builds the cache)",
                spread(cold),
                runs=reps,
            ),
            Row(bench, "dlx later run (cache reused)", spread(warm), runs=reps),
            ratio_row(bench, "(a) plain / dlx first run", plain, cold, 2.0),
            ratio_row(bench, "(a) plain / dlx later run", plain, warm, 2.0),
            Row(
                bench,
                "epoch after the first: plain (all images) vs dlx (70% train + 15% val)",
                f"{spread(plain_ep)} vs {spread(dlx_ep)}",
                runs=reps,
            ),
            ratio_row(bench, "(b) plain / dlx, epoch after the first", plain_ep, dlx_ep, 5.0),
            Row(
                bench,
                "the same LeNet steps from one preloaded tensor (all images): s/epoch",
                spread(floor_ep),
                runs=reps,
            ),
            Row(
                bench,
                "(b)'s ceiling: plain / compute alone (no data pipeline can beat it)",
                f"{median(sorted(a / b for a, b in zip(plain_ep, floor_ep, strict=True))):.2f}x",
                runs=reps,
            ),
        ]
        log(f"  served: {served}")
        shutil.rmtree(root)
        rows += big_rows(tmp, quick, log)
    return rows


def ratio_row(bench: str, what: str, num: list[float], den: list[float], target: float) -> Row:
    ratios = sorted(a / b for a, b in zip(num, den, strict=True))
    value = f"{median(ratios):.2f}x" + (
        f" ({ratios[0]:.2f}-{ratios[-1]:.2f})" if len(ratios) > 1 else ""
    )
    return Row(bench, what, value, f">= {target:g}x", median(ratios) >= target, len(ratios))


def big_rows(tmp: Path, quick: bool, log) -> list[Row]:
    n, size, k = (12_000, 64, 4) if quick else BIG
    budget, limit = (BUDGET_MB, 64) if quick else (BUDGET_MB, DATA_LIMIT_MB)
    t = time.perf_counter()
    root = make_folder(tmp / "big", n, size, k, seed=1)
    log(f"imagefolder (c): {n:,} PNGs {size}x{size} written in {time.perf_counter() - t:.0f} s")
    pixels_mb = n * 3 * size * size / 2**20
    dlx, ep, served = dlx_run(root, size, 2, tmp, f"data.memory_limit_mb={limit}")
    log(f"  dlx: {dlx.seconds:.0f} s, peak RSS {dlx.max_rss_mb:.0f} MB; {served}")
    plain, pep = plain_run(root, size, 2, tmp)
    log(f"  plain: {plain.seconds:.0f} s, peak RSS {plain.max_rss_mb:.0f} MB")
    bench = (
        f"imagefolder (c): {n:,} PNGs {size}x{size} ({pixels_mb / 1024:.2f} GiB of pixels), "
        f"budget {budget} MB RSS, data.memory_limit_mb={limit}, 2 epochs"
    )
    mapped = "decode cache mmap" in served
    return [
        Row(
            bench,
            "how dlx served it",
            "memory-mapped (auto)" if mapped else served[:80],
            "mmap",
            mapped,
            1,
        ),
        Row(
            bench,
            "peak RSS: dlx (main process) vs plain script (main process)",
            f"{dlx.max_rss_mb:.0f} MB vs {plain.max_rss_mb:.0f} MB",
            f"dlx <= {budget} MB",
            dlx.max_rss_mb <= budget,
            1,
        ),
        Row(
            bench,
            "second epoch: plain (all images) vs dlx (70% train + 15% val)",
            f"{pep[-1]:.1f} s vs {ep[-1]:.1f} s",
            "dlx no slower",
            ep[-1] <= pep[-1],
            1,
        ),
        Row(
            bench,
            "whole process: plain vs dlx (first run: decode included)",
            f"{plain.seconds:.0f} s vs {dlx.seconds:.0f} s",
            "",
            None,
            1,
        ),
    ]
