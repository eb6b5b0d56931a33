"""What every benchmark shares: timing, subprocesses with their peak memory, dlx runs in this
process with the epoch timed, the machine's description and the result rows."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONF = HERE / "conf"  # --config-dir for the benchmark data (conf/data/bench_*.yaml)
BIN = Path(sys.executable).parent
DLX = str(BIN / "dlx") if (BIN / "dlx").exists() else None  # the console script a user types


@dataclass
class Row:
    """One line of the table: which benchmark, what was measured, the figure, the target."""

    bench: str
    what: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target on this line
    runs: int | str = ""


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs: list[float], unit: str = "s", digits: int = 2) -> str:
    """`median unit` plus the range when there were several runs (the noise, in plain sight)."""
    m = median(xs)
    if len(xs) < 2:
        return f"{m:.{digits}f} {unit}"
    return f"{m:.{digits}f} {unit} ({min(xs):.{digits}f}-{max(xs):.{digits}f})"


def rotated(items: list, r: int) -> list:
    """The order for repeat `r`: each variant goes first once in a while, so a slow patch
    of the machine does not always hit the same one."""
    k = r % len(items)
    return items[k:] + items[:k]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_avg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def machine_rows() -> list[Row]:
    import torch

    try:
        import lightning

        lightning_v = lightning.__version__
    except ImportError:
        lightning_v = "not installed"
    return [
        Row(
            "machine",
            f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
            f"load avg at start {load_avg()}",
        ),
        Row(
            "software",
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"lightning {lightning_v}",
            f"torch threads {torch.get_num_threads()}",
        ),
    ]


# ---------------------------------------------------------------------------- subprocesses


@dataclass
class Proc:
    seconds: float
    max_rss_mb: float  # the child's peak resident memory (its own, from wait4)
    returncode: int
    output: str


# Runs the command as ITS child and reports that child's time and peak RSS. Measuring from
# this (big) process directly would not do: a child forked from it and exec'd inherits this
# process's memory high-water mark in ru_maxrss; forked from this small launcher, it does not.
_LAUNCHER = """
import json, os, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(report, "w") as f:
    json.dump({"seconds": seconds, "max_rss_kb": usage.ru_maxrss,
               "code": os.waitstatus_to_exitcode(status)}, f)
"""


def run_proc(
    cmd: list[str],
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> Proc:
    """Run `cmd`: its wall-clock time and its own peak RSS (wait4 in a small launcher)."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        with open(Path(tmp) / "out.txt", "w+") as out:
            p = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(report), *cmd],
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a timeout kills the command too, not just the launcher
            )
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait()
            out.seek(0)
            text = out.read()
        if not report.is_file():
            return Proc(float("nan"), float("nan"), p.returncode or -9, text + "\n(timed out)")
        r = json.loads(report.read_text())
    return Proc(r["seconds"], r["max_rss_kb"] / 1024, r["code"], text)


def check(proc: Proc, what: str) -> Proc:
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}:\n{proc.output[-3000:]}")
    return proc


def bench_env() -> dict[str, str]:
    """For child processes: the benchmark data module importable, output unbuffered."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def dlx_cmd(*args: str) -> list[str]:
    return [DLX, *args] if DLX else [sys.executable, "-m", "dlx", *args]


# ---------------------------------------------------------------------------- dlx in-process


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """dlx's console output and Hydra's logging go to /dev/null while a benchmark runs."""
    import logging

    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        root = logging.getLogger()
        handlers = root.handlers[:]
        try:
            yield
        finally:
            for h in root.handlers[:]:  # Hydra's handlers point at the sink: take them down
                if h not in handlers:
                    root.removeHandler(h)
                    h.close()


def dlx_fit(overrides: list[str], run_dir: Path, config_dir: Path | None = CONF) -> dict[str, Any]:
    """`dlx train OVERRIDES` in this process (the real CLI path: Hydra, `training.loop.fit`).

    Returns the run's metrics plus `epoch_s` (each epoch from its start to its end as the run's
    console sees them: training, validation, checkpoints, TensorBoard) and `call_s` (the call).
    """
    import dlx
    from dlx.training import loop

    marks: list[float] = []
    base = loop.RunConsole

    class TimedConsole(base):  # type: ignore[misc, valid-type]
        def epoch_start(self, epoch: int) -> None:
            marks.append(time.perf_counter())
            super().epoch_start(epoch)

        def epoch_end(self, *args: Any, **kwargs: Any) -> None:
            marks.append(time.perf_counter())
            super().epoch_end(*args, **kwargs)

    loop.RunConsole = TimedConsole
    try:
        start = time.perf_counter()
        with quiet():
            metrics = dlx.train(
                [*overrides, f"hydra.run.dir={run_dir}"],
                config_dir=str(config_dir) if config_dir else None,
            )
        call = time.perf_counter() - start
    finally:
        loop.RunConsole = base
    if metrics.get("status") not in ("completed", "stopped_early"):
        raise RuntimeError(
            f"dlx run {overrides} ended {metrics.get('status')}: {metrics.get('error')}"
        )
    pairs = list(zip(marks[0::2], marks[1::2], strict=False))
    if len(pairs) != metrics.get("epochs_run"):
        raise RuntimeError(
            f"timed {len(pairs)} epochs of {metrics.get('epochs_run')}: the benchmark times an "
            "epoch from RunConsole.epoch_start to .epoch_end in training/loop.py; did that change?"
        )
    return {**metrics, "epoch_s": [b - a for a, b in pairs], "call_s": call}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
