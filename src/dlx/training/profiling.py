"""`debug=profiler`: torch.profiler over a few training steps.

The trace goes to `RUN_DIR/profiler/*.pt.trace.json` (`tensorboard_trace_handler`): open it in
TensorBoard's PyTorch profiler plugin (`pip install torch-tb-profiler`, then `dlx board`) or
drag it into chrome://tracing or ui.perfetto.dev. At the end a table of the top ops (by
their own time) is printed and kept as `profiler/top_ops.txt`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

WAIT, WARMUP = 1, 1  # the first step pays one-off costs; the second warms the profiler up
# What libkineto (the profiler's C++ side) writes straight to stderr that tells a user
# nothing: its start/stop trace points, and, on a machine without a GPU, that it found none
# while writing the trace's device list. Anything else it writes still reaches the screen.
NOISE = re.compile(r"^(USDT|STAGE):.*\] |^ERROR:.*\] gpuGetDeviceCount failed")


@contextlib.contextmanager
def kineto_quiet(cpu_only: bool):
    """Run the profiler's start/step/stop with stderr (file descriptor 2, where libkineto
    writes) caught; put back every line but the NOISE above (the GPU one only on CPU)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (a test's capture): nothing to catch
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode("utf-8", "replace").splitlines(keepends=True):
                gpu = "gpuGetDeviceCount" in line
                if NOISE.search(line) and (cpu_only or not gpu):
                    continue
                sys.stderr.write(line)
            sys.stderr.flush()


class StepProfiler:
    """Profile `steps` training steps, after WAIT + WARMUP; call `step()` after each one."""

    def __init__(self, steps: int, out_dir: Path, device: torch.device, console: Any) -> None:
        from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

        self.out_dir, self.console, self.steps = Path(out_dir), console, int(steps)
        activities = [ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        self.sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        if self.out_dir.is_symlink():  # a run folder from elsewhere: never write through it
            from dlx.errors import UserError

            raise UserError(
                f"{self.out_dir} is a symbolic link; dlx never writes through a link in a run "
                "folder. Remove it.",
                key="profile",
            )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prof = profile(
            activities=activities,
            schedule=schedule(wait=WAIT, warmup=WARMUP, active=self.steps, repeat=1),
            on_trace_ready=tensorboard_trace_handler(str(self.out_dir)),
            record_shapes=True,
        )
        self.cpu_only = device.type != "cuda"
        with kineto_quiet(self.cpu_only):
            self.prof.__enter__()
        self.left = WAIT + WARMUP + self.steps

    def step(self) -> None:
        if self.prof is None:
            return
        with kineto_quiet(self.cpu_only):
            self.prof.step()
        self.left -= 1
        if self.left <= 0:
            self.close()

    def close(self) -> None:
        """Stop (also when the run had fewer steps), then print and save the top ops."""
        if self.prof is None:
            return
        prof, self.prof = self.prof, None
        with kineto_quiet(self.cpu_only):
            prof.__exit__(None, None, None)
        events = prof.key_averages()
        if not len(events):
            self.console.print(
                f"profiler: fewer than {WAIT + WARMUP + 1} training steps ran: nothing profiled."
            )
            return
        table = events.table(sort_by=self.sort, row_limit=15)
        from dlx.record.atomic import write_text

        write_text(self.out_dir / "top_ops.txt", table + "\n")
        traces = sorted(p.name for p in self.out_dir.glob("*.pt.trace.json"))
        self.console.print(
            f"profiler: top ops over {self.steps} steps (trace: {self.out_dir}/"
            f"{traces[-1] if traces else '?'}; view it with TensorBoard's profiler plugin or "
            "chrome://tracing):",
            markup=False,
            highlight=False,
        )
        self.console.print(table, markup=False, highlight=False)
