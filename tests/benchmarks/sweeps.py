"""(3) Sweep throughput: the same 4 trials as one `dlx sweep`, sequential (Hydra's basic
launcher, one process) vs `hydra/launcher=joblib hydra.launcher.n_jobs=2` (two worker
processes, one torch thread each), timed end to end, interleaved.

A trial is a default digits run (model=cnn) for a fixed number of epochs without early
stopping, so the four cost the same and two workers split them evenly.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from benchlib import Row, check, dlx_cmd, median, rotated, run_proc, spread

JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
# A trial of ~15-25 s on one core (a digits epoch is ~0.05-0.08 s): long enough that the
# workers' own start (Python, torch, the first epoch's warm-up: a few seconds each) does not
# decide it, short enough that `make bench` stays under 10 minutes on a busy machine.
EPOCHS = 300


def trial_overrides(epochs: int) -> list[str]:
    return ["seed=0,1,2,3", f"epochs={epochs}", "early_stopping.enabled=false", "log.graph=false"]


def run(
    quick: bool = False, repeats: int | None = None, epochs: int | None = None, log=print
) -> list[Row]:
    reps = repeats or (1 if quick else 2)
    epochs = epochs or (10 if quick else EPOCHS)
    t: dict[str, list[float]] = {"sequential": [], "joblib": []}
    trial_s: dict[str, list[float]] = {"sequential": [], "joblib": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(reps):
            for v in rotated(["sequential", "joblib"], r):
                sweep_dir = Path(tmp) / f"{v}{r}"
                extra = JOBLIB if v == "joblib" else []
                p = check(
                    run_proc(
                        dlx_cmd(
                            "sweep",
                            *trial_overrides(epochs),
                            *extra,
                            f"hydra.sweep.dir={sweep_dir}",
                        ),
                        cwd=tmp,
                    ),
                    f"dlx sweep ({v})",
                )
                t[v].append(p.seconds)
                done = sorted(sweep_dir.glob("*/metrics.json"))
                if len(done) != 4:
                    raise RuntimeError(
                        f"dlx sweep ({v}) left {len(done)} trials, expected 4:\n{p.output[-2000:]}"
                    )
                trial_s[v] += [json.loads(f.read_text())["wall_time_s"] for f in done]
                log(f"  (3) repeat {r + 1}/{reps} {v}: {p.seconds:.1f} s")
    speedup = median([s / j for s, j in zip(t["sequential"], t["joblib"], strict=True)])
    bench = f"3 sweep: 4 digits trials, {epochs} epochs each"
    return [
        Row(
            bench,
            "one trial's run (`wall_time_s`): sequential | in a joblib worker (1 thread)",
            f"{spread(trial_s['sequential'])} | {spread(trial_s['joblib'])}",
            runs=len(trial_s["joblib"]),
        ),
        Row(
            bench,
            "`dlx sweep`, sequential (basic launcher)",
            spread(t["sequential"], digits=1),
            runs=reps,
        ),
        Row(
            bench,
            "`dlx sweep hydra/launcher=joblib hydra.launcher.n_jobs=2`",
            spread(t["joblib"], digits=1),
            runs=reps,
        ),
        Row(
            bench,
            "speed-up, sequential / joblib",
            f"{speedup:.2f}x",
            ">= 1.7x",
            speedup >= 1.7,
            reps,
        ),
    ]
