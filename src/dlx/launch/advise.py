"""`dlx advise RUN_DIR`: the verdict's remedies, tested instead of guessed.

Each candidate change (the verdict's own suggestions plus the standard alternatives for its
cause) runs as a short probe from the run's own seed and config, next to a probe of the
unchanged config (the same budget: a few epochs, or a time limit), in parallel where the
cores allow. What comes back is ranked by the best val loss each probe reached; changes that
did not beat the unchanged probe are dropped, so every command printed under "tested" made
the loss lower when it was tried. The result goes into RUN_DIR/advice.json and the run's
TensorBoard (text `advice`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dlx.errors import UserError
from dlx.record import names

PROBE_EPOCHS = 5  # each probe trains at most this many epochs (fewer if the run had fewer)
HELPS = 0.05  # a probe's best val loss at least this share below the unchanged one's: it helped
ALTERNATIVES = {  # the standard remedies for each cause, tried beside the verdict's own
    "exploding gradients": ["better_init", "batchnorm", "lower_lr", "lower_lr3"],
    "lr too large": ["lower_lr", "lower_lr3", "batchnorm", "grad_clip"],
    "lr too small": ["raise_lr", "raise_lr3", "longer"],
    "too few epochs": ["longer", "raise_lr3"],
    "capacity": ["capacity", "bigger_model", "raise_lr3", "less_reg", "longer"],
    "saturated gradients": ["better_init", "batchnorm", "relu"],
    "can't tell": ["lower_lr", "raise_lr"],
    None: [],  # overfitting and good fit: the verdict's own remedies
}


def _load(run_dir: Path) -> dict[str, Any]:
    path = run_dir / names.METRICS
    if not run_dir.is_dir():
        raise UserError(f"`{run_dir}`: there is no such run folder.", key="RUN_DIR")
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(
            f"`{path}` cannot be read ({type(exc).__name__}): `dlx advise` needs a finished "
            "run's metrics.json.",
            key="RUN_DIR",
        ) from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("diagnosis"), dict):
        raise UserError(f"`{path}` has no verdict to act on (not a finished dlx run).", "RUN_DIR")
    return metrics


def candidates(run_dir: Path, metrics: dict[str, Any], limit: int) -> dict[str, Any]:
    """The run's overrides, its config dir, and up to `limit` candidate changes."""
    from dlx.launch.preflight import passes_preflight, preflight
    from dlx.tracking.advice import run_overrides, suggest

    overrides, config_dir = run_overrides(run_dir)
    if overrides is None:
        raise UserError(
            f"`{run_dir}` has no .hydra/overrides.yaml to start probes from.", "RUN_DIR"
        )
    overrides = [o for o in overrides if not o.lstrip("+~").startswith(("debug", "advise"))]
    diag = metrics["diagnosis"]
    cfg = preflight(overrides, False, config_dir)
    remedies = list(diag.get("remedies") or [])
    remedies += [r for r in ALTERNATIVES.get(diag.get("cause"), []) if r not in remedies]
    task = metrics.get("task", "")
    found = suggest(remedies, cfg, task, overrides, config_dir, limit=limit, check=passes_preflight)
    return {
        "overrides": overrides,
        "config_dir": config_dir,
        "epochs": int(cfg.epochs),
        "seed": int(cfg.seed),
        "changes": [s for s in found if s["kind"] == "train"],
    }


def _epochs_of(overrides: list[str], default: int) -> int:
    for o in reversed(overrides):
        if o.split("=", 1)[0].lstrip("+") == "epochs":
            try:
                return int(o.split("=", 1)[1])
            except ValueError:
                return default
    return default


def _probe_cmd(overrides: list[str], epochs: int, folder: Path, threads: int, cdir) -> list[str]:
    head = [sys.executable, "-m", "dlx", "train"] + (["--config-dir", cdir] if cdir else [])
    tail = [
        f"epochs={epochs}",
        "advise=null",
        "log.graph=false",
        f"num_threads={threads}",
        f"hydra.run.dir={folder}",
    ]
    return head + [o for o in overrides if o.split("=", 1)[0] != "epochs"] + tail


def run_probes(plan: list[dict[str, Any]], jobs: int, seconds: float) -> None:
    """Start the probes, `jobs` at a time; each gets its best val loss (inf: diverged, failed
    or out of time) and its wall time."""
    pending, running = list(plan), []
    while pending or running:
        while pending and len(running) < jobs:
            p = pending.pop(0)
            p["folder"].mkdir(parents=True, exist_ok=True)
            log = open(p["folder"] / "probe.log", "wb")  # noqa: SIM115 (closed when it ends)
            env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
            proc = subprocess.Popen(p["cmd"], stdout=log, stderr=subprocess.STDOUT, env=env)
            running.append((p, proc, log, time.perf_counter()))
        time.sleep(0.05)
        for item in list(running):
            p, proc, log, t0 = item
            late = time.perf_counter() - t0 > seconds
            if proc.poll() is None and not late:
                continue
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                p["note"] = f"out of time ({seconds:g} s)"
            log.close()
            p["seconds"] = round(time.perf_counter() - t0, 1)
            p["best_val_loss"], p["status"] = _probe_result(p["folder"])
            running.remove(item)


def _probe_result(folder: Path) -> tuple[float, str]:
    try:
        m = json.loads((folder / names.METRICS).read_text())
    except (OSError, ValueError):
        return math.inf, "failed"
    losses = [float(h["val"]["loss"]) for h in m.get("history") or []]
    finite = [v for v in losses if math.isfinite(v)]
    if m.get("status") == "diverged" or not finite:
        return math.inf, str(m.get("status"))
    return min(finite), str(m.get("status"))


def _plan(run_dir: Path, c: dict[str, Any], budget: int, threads: int) -> list[dict[str, Any]]:
    base_epochs = min(c["epochs"], budget)
    probes = run_dir / names.ADVICE_PROBES
    out = [
        {
            "name": "unchanged",
            "change": [],
            "epochs": base_epochs,
            "cmd": _probe_cmd(c["overrides"], base_epochs, probes / "0", threads, c["config_dir"]),
            "folder": probes / "0",
        }
    ]
    for i, s in enumerate(c["changes"], 1):
        epochs = _epochs_of(s["change"], c["epochs"])
        if epochs != c["epochs"]:  # more epochs: measurable only where the run was short
            if c["epochs"] > budget:
                continue
            epochs = min(epochs, 2 * budget)
        epochs = min(epochs, budget) if epochs == c["epochs"] else epochs
        folder = probes / str(i)
        out.append(
            {
                "name": " ".join(s["change"]),
                "change": s["change"],
                "command": s["command"],
                "epochs": epochs,
                "cmd": _probe_cmd(s["overrides"], epochs, folder, threads, c["config_dir"]),
                "folder": folder,
            }
        )
    return out


def _ranked(plan: list[dict[str, Any]]) -> tuple[list, list, float]:
    base = plan[0]["best_val_loss"]
    tried = plan[1:]
    for p in tried:
        p["helped"] = math.isfinite(p["best_val_loss"]) and (
            not math.isfinite(base) or p["best_val_loss"] < (1 - HELPS) * base
        )
    helped = sorted((p for p in tried if p["helped"]), key=lambda p: p["best_val_loss"])
    return helped, [p for p in tried if not p["helped"]], base


def _n(v: float) -> str:
    from dlx.tracking.curves import fmt

    return fmt(v) if math.isfinite(v) else "diverged"


def report(plan: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    """advice.json's content: what was tried, what helped (ranked), the sentence to print."""
    helped, dropped, base = _ranked(plan)
    tried = plan[1:]
    each = sorted({p["epochs"] for p in tried} | {plan[0]["epochs"]})
    span = f"{each[0]} epochs" if len(each) == 1 else f"{each[0]}-{each[-1]} epochs"
    head = (
        f"tried {len(tried)} change{'s' * (len(tried) != 1)} for {span} each from the same seed "
        f"(best val loss; unchanged: {_n(base)})"
    )
    ranked = "; ".join(
        f"{p['name']} val loss {_n(base)} -> {_n(p['best_val_loss'])}" for p in helped
    )
    slight = [p for p in dropped if math.isfinite(p["best_val_loss"]) and p["best_val_loss"] < base]
    worse = [p for p in dropped if p not in slight]
    said = [
        (
            f"within noise (less than {HELPS:.0%} better; `dlx sweep ... --repeat 3` "
            "tells noise from a gain): ",
            slight,
        ),
        ("did not help: ", worse),
    ]
    return {
        "summary": head + (": " + ranked if ranked else ": none helped"),
        "dropped": "; ".join(
            label + ", ".join(f"{p['name']} ({_n(p['best_val_loss'])})" for p in ps)
            for label, ps in said
            if ps
        ),
        "unchanged": {"epochs": plan[0]["epochs"], "best_val_loss": base},
        "tried": [
            {
                k: p.get(k)
                for k in (
                    "name",
                    "change",
                    "command",
                    "epochs",
                    "best_val_loss",
                    "status",
                    "helped",
                    "seconds",
                    "note",
                )
            }
            for p in tried
        ],
        "tested": [p["command"] for p in helped],
        "probe_epochs": budget,
    }


def advise(
    run_dir: str | Path,
    *,
    epochs: int = PROBE_EPOCHS,
    seconds: float = 120.0,
    limit: int = 4,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Probe the remedies for the run in `run_dir`; print, and write advice.json."""
    from dlx.tracking.console import console

    run_dir = Path(run_dir)
    metrics = _load(run_dir)
    diag = metrics["diagnosis"]
    if diag.get("verdict") in ("good fit", "not judged", "unknown"):
        console.print(f"verdict {diag.get('verdict')}: nothing to probe.")
        return {"verdict": diag.get("verdict"), "tried": [], "tested": []}
    c = candidates(run_dir, metrics, limit)
    cores = os.cpu_count() or 1
    jobs = max(1, min(jobs or cores, 1 + len(c["changes"])))
    plan = _plan(run_dir, c, max(1, int(epochs)), max(1, cores // jobs))
    console.print(
        f"probing {len(plan) - 1} change{'s' * (len(plan) != 2)} and the unchanged config "
        f"({jobs} at a time, up to {max(p['epochs'] for p in plan)} epochs each)..."
    )
    t0 = time.perf_counter()
    run_probes(plan, jobs, seconds)
    out = {"verdict": diag.get("verdict"), "cause": diag.get("cause"), "seed": c["seed"]}
    out.update(report(plan, epochs))
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    _write(run_dir, out)
    _print(out, run_dir)
    return out


def advise_after(run_dir: Path, metrics: dict[str, Any]) -> None:
    """`dlx train ... advise=probe`: advise right after the run; a probe that fails never
    turns the finished run into a failed one."""
    from dlx.tracking.console import console

    if metrics.get("status") == "interrupted":
        return
    try:
        advise(run_dir)
    except UserError as exc:
        console.print(f"[yellow]advise=probe:[/] {exc}")
    except Exception as exc:  # noqa: BLE001 - the run itself is done and recorded
        console.print(f"[yellow]advise=probe failed:[/] {type(exc).__name__}: {exc}")


def _write(run_dir: Path, out: dict[str, Any]) -> None:
    from dlx.record.atomic import write_json
    from dlx.tracking.tensorboard import Tracker

    if not os.access(run_dir, os.W_OK | os.X_OK):
        return
    write_json(run_dir / names.ADVICE, out)
    tracker = Tracker(run_dir)
    lines = [out["summary"] + ".", ""] + [f"    {t}" for t in out["tested"]]
    if out["dropped"]:
        lines += ["", out["dropped"] + "."]
    tracker.text("advice", "\n".join(lines))
    tracker.close()


def _print(out: dict[str, Any], run_dir: Path) -> None:
    from rich.markup import escape

    from dlx.tracking.console import console

    console.print(escape(out["summary"]) + ".", soft_wrap=False)
    if out["dropped"]:
        console.print(escape(out["dropped"]) + ".", highlight=False)
    if out["tested"]:
        console.print("try (tested, best first):")
        for cmd in out["tested"]:
            console.print(f"  {escape(cmd)}", soft_wrap=True, highlight=False)
    console.print(
        f"({out['wall_s']:.0f} s; probes in {escape(str(run_dir / 'advice'))}/, "
        "the result in advice.json)",
        soft_wrap=True,
        highlight=False,
    )
