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
        Row(
            bench,
            "its ceiling on this CPU: 2 x (a trial with 2 threads / one with 1 thread, as the "
            "rows above), if the workers started and ended for free",
            f"{2 * median(trial_s['sequential']) / median(trial_s['joblib']):.2f}x",
            runs=len(trial_s["joblib"]),
        ),
    ]


# ------------------------------------------------------------- (prune) pruning and resume

SPACE = [
    "hydra.sweeper.params=null",  # the preset's space replaced by lr x weight decay x width
    "opt.lr=tag(log, interval(1e-4, 1e-1))",
    "reg.weight_decay=choice(0.0, 1e-5, 1e-4, 1e-3)",
    "model.width=choice(16, 32, 64, 128)",
]
SEARCH = ["model=mlp", "early_stopping.enabled=false", "log.graph=false", "num_threads=1"]


def _summary(sweep_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(sweep_dir / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _search(tmp: str, v: str, n: int, epochs: int, seed: int, log) -> dict:
    """One search (unpruned or pruned) with sampler seed `seed`: its time and ranked values."""
    sweep_dir = Path(tmp) / f"{v}{seed}"
    preset = "hparams_search=optuna_pruned" if v == "pruned" else "hparams_search=optuna"
    args = [preset, f"hydra.sweeper.n_trials={n}", f"epochs={epochs}", *SPACE, *SEARCH]
    args.append(f"hydra.sweeper.sampler.seed={seed}")
    p = check(
        run_proc(dlx_cmd("sweep", *args, f"hydra.sweep.dir={sweep_dir}"), cwd=tmp, timeout=3600),
        f"dlx sweep ({v}, seed {seed})",
    )
    rows = _summary(sweep_dir)
    vals = sorted(float(r["best_val"]) for r in rows if r["status"] == "completed")
    pruned = sum(r["status"] == "pruned" for r in rows)
    epochs_run = sum(int(r["epochs"] or 0) for r in rows)
    log(f"  (prune) seed {seed} {v}: {p.seconds:.1f} s, best {vals[0]:.4f}, {pruned} pruned")
    return {"s": p.seconds, "vals": vals, "pruned": pruned, "epochs": epochs_run}


def run_pruning(quick: bool = False, log=print, seeds: tuple[int, ...] = (0, 1, 2)) -> list[Row]:
    """A 16-trial Optuna search on digits (TPE), with and without ASHA pruning
    (`hparams_search=optuna_pruned`), timed end to end, once per sampler seed (0, 1, 2);
    then a 4-trial grid killed with SIGKILL after half its trials and `--resume`d, against
    the same grid never killed."""
    import os
    import signal
    import subprocess
    import time

    n, epochs = (6, 6) if quick else (16, 20)
    seeds = seeds[:1] if quick else seeds
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        bench = f"sweep: {n}-trial Optuna search on digits (mlp, {epochs} epochs, TPE)"
        shares, good, ideal, unpruned = [], [], [], []
        for seed in seeds:
            order = rotated(["unpruned", "pruned"], seed)
            r = {v: _search(tmp, v, n, epochs, seed, log) for v in order}
            share = r["pruned"]["s"] / r["unpruned"]["s"]
            third = r["unpruned"]["vals"][min(2, len(r["unpruned"]["vals"]) - 1)]
            best = r["pruned"]["vals"][0]
            shares.append(share)
            unpruned.append(r["unpruned"]["s"])
            ideal.append(r["pruned"]["epochs"] / r["unpruned"]["epochs"])
            good.append(best <= third)
            rows.append(
                Row(
                    bench,
                    f"sampler seed {seed}: wall time unpruned | pruned ({r['pruned']['pruned']} "
                    f"of {n} pruned); best val/loss unpruned | pruned (unpruned 3rd best)",
                    f"{r['unpruned']['s']:.1f} s | {r['pruned']['s']:.1f} s ({share:.0%}); "
                    f"{r['unpruned']['vals'][0]:.4f} | {best:.4f} ({third:.4f})",
                    runs=1,
                )
            )
        floor = []  # what no pruner can cut: the sweep's start and end, each trial's own cost
        for seed in seeds:
            one = [*SPACE, *SEARCH, f"hydra.sweeper.sampler.seed={seed}"]
            args = ["hparams_search=optuna", f"hydra.sweeper.n_trials={n}", "epochs=1", *one]
            d = f"hydra.sweep.dir={Path(tmp) / f'floor{seed}'}"
            p = check(run_proc(dlx_cmd("sweep", *args, d), cwd=tmp, timeout=3600), "floor")
            floor.append(p.seconds)
        rows += [
            Row(
                bench,
                f"the floor: the same search with 1 epoch a trial (the sweep's start, end and "
                f"{n} trials' fixed cost) / unpruned, every seed",
                " ".join(f"{f:.1f} s ({f / u:.0%})" for f, u in zip(floor, unpruned, strict=True)),
                runs=len(seeds),
            ),
            Row(
                bench,
                "pruned / unpruned wall time, every seed",
                " ".join(f"{x:.0%}" for x in shares),
                "<= 40%",
                all(x <= 0.40 for x in shares),
                len(seeds),
            ),
            Row(
                bench,
                "epochs the pruned search trained / the unpruned search's, every seed: the "
                "wall-time ratio if a trial and a sweep cost nothing but their epochs",
                " ".join(f"{x:.0%}" for x in ideal),
                runs=len(seeds),
            ),
            Row(
                bench,
                "pruned search's best within the unpruned search's top 3, every seed",
                " ".join("yes" if g else "no" for g in good),
                "every seed",
                all(good),
                len(seeds),
            ),
        ]
        grid = ["opt=adam,sgd,rmsprop,adagrad", f"epochs={max(4, epochs // 2)}", *SEARCH]
        never = Path(tmp) / "never"
        check(run_proc(dlx_cmd("sweep", *grid, f"hydra.sweep.dir={never}"), cwd=tmp), "grid")
        killed = Path(tmp) / "killed"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            dlx_cmd("sweep", *grid, f"hydra.sweep.dir={killed}"),
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        mark = killed / "2" / "checkpoints" / "best.pt"  # two trials done, the third under way
        while proc.poll() is None and not mark.is_file():
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check(run_proc(dlx_cmd("sweep", "--resume", str(killed)), cwd=tmp), "resume")

        def outcome(d: Path) -> dict[str, float]:
            return {r["overrides"]: float(r["best_val"]) for r in _summary(d)}

        a, b = outcome(never), outcome(killed)
        same = a.keys() == b.keys() and min(a.values()) == min(b.values())
        diff = max((abs(a[k] - b[k]) for k in a if k in b), default=float("nan"))
        rows.append(
            Row(
                "sweep: 4-trial grid killed (SIGKILL) in trial 3, then --resume",
                "same trials and best value as never killed (largest per-trial difference)",
                f"{'yes' if same else 'no'} ({diff:.2g})",
                "same",
                same,
                1,
            )
        )
    return rows


# ------------------------------------------------------------- (repeats) grouping is free


def run_repeats(quick: bool = False, log=print) -> list[Row]:
    """The same 15 trials (3 learning rates x 5 seeds, one split) as `--repeat 5` and as a
    plain grid over `seed=0,1,2,3,4`, timed end to end, interleaved (--quick: 2 x 2)."""
    lrs, n, epochs = ("0.003,0.001", 2, 1) if quick else ("0.003,0.001,0.0003", 5, 5)
    base = [f"opt.lr={lrs}", f"epochs={epochs}", "early_stopping.enabled=false", "log.graph=false"]
    seeds = ",".join(str(i) for i in range(n))
    variants = {
        "repeat": [*base, "--repeat", str(n)],
        "grid": [*base, f"seed={seeds}", "++data.seed=0"],
    }
    trials = len(lrs.split(",")) * n
    t: dict[str, list[float]] = {"repeat": [], "grid": []}
    reps = 1 if quick else 2
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(reps):
            for v in rotated(list(variants), r):
                sweep_dir = Path(tmp) / f"{v}{r}"
                cmd = dlx_cmd("sweep", *variants[v], f"hydra.sweep.dir={sweep_dir}")
                p = check(run_proc(cmd, cwd=tmp, timeout=3600), f"dlx sweep ({v})")
                done = sorted(sweep_dir.glob("*/metrics.json"))
                if len(done) != trials:
                    raise RuntimeError(f"dlx sweep ({v}) left {len(done)} trials, not {trials}")
                t[v].append(p.seconds)
                log(f"  (repeats) {r + 1}/{reps} {v}: {p.seconds:.1f} s")
    ratio = median([a / b for a, b in zip(t["repeat"], t["grid"], strict=True)])
    bench = f"sweep: {trials // n} configurations x {n} seeds on digits ({epochs} epochs)"
    return [
        Row(
            bench,
            f"wall time, `--repeat {n}` | plain grid `seed={seeds}`",
            f"{spread(t['repeat'], digits=1)} | {spread(t['grid'], digits=1)}",
            runs=reps,
        ),
        Row(bench, "repeats / plain grid", f"{ratio:.2f}x", "<= 1.1x", ratio <= 1.1, reps),
    ]
