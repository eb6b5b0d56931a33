"""(2) Start-up and (5) peak memory: fresh processes, timed end to end, interleaved.

- `python -c "import torch"`: the floor every PyTorch program pays.
- `dlx --help`: must answer without importing torch.
- `dlx train epochs=1` on digits (the defaults otherwise) vs the hand-written
  `plain_digits.py` (import torch, scikit-learn's digits, the same LeNet + Adam, one epoch).
  The target compares dlx with `import torch` + the plain loop (model, Adam, one epoch, as
  timed inside the plain script); the whole plain script is shown next to it.
- Peak RSS of those two runs, from `os.wait4` (each child's own maximum).
"""

from __future__ import annotations

import json
import sys
import tempfile

from benchlib import HERE, Row, check, dlx_cmd, median, rotated, run_proc, spread


def run(quick: bool = False, repeats: int | None = None, log=print) -> list[Row]:
    reps = repeats or (1 if quick else 3)
    small_reps = max(reps, 3) if not quick else 2  # the cheap commands: more runs, same cost
    t: dict[str, list[float]] = {k: [] for k in ("torch", "help", "plain", "plain_loop", "dlx")}
    rss: dict[str, list[float]] = {k: [] for k in ("torch", "plain", "dlx")}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(small_reps):
            for v in rotated(["torch", "help"], r):
                if v == "torch":
                    p = check(run_proc([sys.executable, "-c", "import torch"]), "import torch")
                    rss["torch"].append(p.max_rss_mb)
                else:
                    p = check(run_proc(dlx_cmd("--help"), cwd=tmp), "dlx --help")
                t[v].append(p.seconds)
        for r in range(reps):
            for v in rotated(["plain", "dlx"], r):
                if v == "plain":
                    p = check(
                        run_proc([sys.executable, str(HERE / "plain_digits.py")], cwd=tmp),
                        "plain_digits.py",
                    )
                    parts = json.loads(p.output.strip().splitlines()[-1])
                    t["plain_loop"].append(parts["setup_s"] + parts["train_s"])
                else:
                    p = check(
                        run_proc(
                            dlx_cmd("train", "epochs=1", f"hydra.run.dir={tmp}/run{r}"), cwd=tmp
                        ),
                        "dlx train epochs=1",
                    )
                t[v].append(p.seconds)
                rss[v].append(p.max_rss_mb)
                log(f"  (2) repeat {r + 1}/{reps} {v}: {p.seconds:.2f} s, {p.max_rss_mb:.0f} MB")
    bench = "2 start-up (fresh processes)"
    baseline = median(t["torch"]) + median(t["plain_loop"])
    ratio = median(t["dlx"]) / baseline
    help_s = median(t["help"])
    rows = [
        Row(bench, '`python -c "import torch"`', spread(t["torch"]), runs=small_reps),
        Row(
            bench,
            "`dlx --help`",
            spread(t["help"], digits=3),
            "<= 0.25 s",
            help_s <= 0.25,
            small_reps,
        ),
        Row(
            bench,
            "plain loop inside its script (LeNet + Adam set-up, 1 epoch)",
            spread(t["plain_loop"]),
            runs=reps,
        ),
        Row(
            bench,
            "plain script end to end (import torch, sklearn digits, LeNet, 1 epoch)",
            spread(t["plain"]),
            runs=reps,
        ),
        Row(bench, "`dlx train epochs=1` on digits, end to end", spread(t["dlx"]), runs=reps),
        Row(
            bench,
            "dlx train / (import torch + plain loop)",
            f"{ratio:.2f}x",
            "<= 1.3x",
            ratio <= 1.3,
            reps,
        ),
        Row(
            bench,
            "dlx train / plain script end to end",
            f"{median(t['dlx']) / median(t['plain']):.2f}x",
            runs=reps,
        ),
    ]
    mem = "5 peak RSS (digits, 1 epoch)"
    rows += [
        Row(mem, '`python -c "import torch"`', spread(rss["torch"], "MB", 0), runs=small_reps),
        Row(mem, "plain script", spread(rss["plain"], "MB", 0), runs=reps),
        Row(mem, "`dlx train epochs=1`", spread(rss["dlx"], "MB", 0), runs=reps),
        Row(
            mem,
            "dlx / plain script",
            f"{median(rss['dlx']) / median(rss['plain']):.2f}x",
            runs=reps,
        ),
    ]
    return rows
