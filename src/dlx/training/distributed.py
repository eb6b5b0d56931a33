"""Data-parallel training on torch.distributed (DDP), two ways in:

- `dlx train trainer.devices=N`: this process spawns N workers (torch.multiprocessing),
  joins them over a free local port, and returns rank 0's metrics.
- `torchrun --nproc_per_node=N -m dlx train ...`: torchrun starts N copies of the CLI;
  each one finds RANK / WORLD_SIZE in its environment and joins the group torchrun set up.

Either way every rank calls `loop.fit(cfg, run_dir, dist=Dist(rank, N))` with the SAME run
folder: rank 0 picks it (and is the only one that writes into it), the others are told.
The backend follows the device: nccl for CUDA, gloo for the CPU. Each rank trains on its
interleaved share of every global batch (`data/loader.py`), DDP averages the gradients, so
N ranks take the same steps as one process over the same global batch.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.errors import UserError
from dlx.record import names
from dlx.training.world import backend_for, check_devices, torchrun_env  # noqa: F401

log = logging.getLogger("dlx")

# ------------------------------------------------------------------------------------ torchrun


def _destroy_group(sync: bool = False) -> None:
    """Leave the process group while the interpreter is fully alive. With `sync` (a rank that
    finished its work) the ranks first meet at a barrier, so none closes its connections while
    another still talks to it: gloo aborts a process (SIGABRT) whose peer vanished mid-exchange
    or whose group is torn down during interpreter shutdown."""
    import torch.distributed as td

    if td.is_available() and td.is_initialized():
        if sync:
            import gc

            gc.collect()  # a DDP wrapper caught in a reference cycle lets go of its pending work
            with contextlib.suppress(Exception):  # a peer that failed: leave anyway
                td.barrier()
        td.destroy_process_group()


def join_torchrun(cfg: DictConfig) -> None:
    """Join the process group torchrun prepared (env://); once per process."""
    import torch
    import torch.distributed as td

    from dlx.training.device import resolve_device

    if td.is_initialized():
        return
    _, _, local_rank = torchrun_env() or (0, 1, 0)
    device = resolve_device(cfg.device.type)
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    td.init_process_group(backend_for(device))
    atexit.register(_destroy_group)


def shared_run_overrides(
    overrides: list[str],
    cfg: DictConfig,
    fresh_run_dir: Callable[[list[str], DictConfig], list[str]],
) -> list[str]:
    """Under torchrun: rank 0 claims the run folder and tells every rank, so all ranks run in ONE
    folder (not one folder per rank). Ranks > 0 leave `.hydra/` and train.log to rank 0."""
    import torch.distributed as td

    rank = torchrun_env()[0]
    join_torchrun(cfg)
    box: list[Any] = [None]
    if rank == 0:
        try:
            box[0] = ("ok", fresh_run_dir(overrides, cfg))
        except UserError as exc:
            box[0] = ("error", str(exc))
    td.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise UserError(value, key="hydra.run.dir")
    if rank == 0:
        return value
    return [*value, "hydra.output_subdir=null", "hydra/job_logging=none"]


# ------------------------------------------------------------------- trainer.devices=N (spawn)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(
    rank: int,
    world: int,
    port: int,
    plain_cfg: dict,
    run_dir: str,
    choices: dict,
    resume: bool,
    results,
    check: Callable[[list[str], str | None], bool] | None = None,
) -> None:
    """One spawned rank: join the group, train, hand rank 0's metrics (or the error) back."""
    if hasattr(os, "setpgid"):
        # Ctrl-C in the terminal reaches the parent only; it forwards each signal exactly once.
        os.setpgid(0, 0)
    import torch
    import torch.distributed as td

    from dlx.training.device import resolve_device
    from dlx.training.loop import Dist, fit

    cfg = OmegaConf.create(plain_cfg)
    if not cfg.get("num_threads"):  # the processes share the cores
        cfg.num_threads = max(1, (os.cpu_count() or 1) // world)
    OmegaConf.set_struct(cfg, True)
    handler = None
    try:
        device = resolve_device(cfg.device.type)
        if device.type == "cuda":
            torch.cuda.set_device(rank)
        td.init_process_group(
            backend_for(device), init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
        )
        if rank == 0:  # the parent's Hydra logging does not reach a spawned process
            handler = logging.FileHandler(Path(run_dir) / names.TRAIN_LOG)
            handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
            root = logging.getLogger()
            root.addHandler(handler)
            root.setLevel(logging.INFO)
        metrics = fit(
            cfg, run_dir, resume=resume, dist=Dist(rank, world), choices=choices, check=check
        )
        _destroy_group(sync=True)
        if rank == 0:
            results.put(("ok", metrics))
    except Exception as exc:
        key = getattr(exc, "key", None)  # UserError's key does not survive pickling by itself
        try:
            results.put(("error", exc, key))
        except Exception:  # an exception that does not pickle
            results.put(("error", RuntimeError(f"rank {rank}: {type(exc).__name__}: {exc}"), None))
        raise
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
        _destroy_group()


@contextlib.contextmanager
def _forward_signals(pids: list[int]) -> Iterator[list[int]]:
    """Ctrl-C / SIGTERM to this process: pass each one on to the workers (first: stop after the
    step and save; second: stop now), as a single-process run would behave."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def forward(signum, frame) -> None:
        received.append(signum)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def spawn_fit(
    cfg: DictConfig,
    run_dir: str | Path,
    world: int,
    choices: dict[str, str] | None = None,
    resume: bool = False,
    check: Callable[[list[str], str | None], bool] | None = None,
) -> dict[str, Any]:
    """Train with `world` local processes; returns rank 0's metrics."""
    import torch.multiprocessing as mp

    plain = OmegaConf.to_container(cfg, resolve=True)
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    port = free_port()
    procs = mp.start_processes(
        _worker,
        args=(world, port, plain, str(run_dir), dict(choices or {}), resume, results, check),
        nprocs=world,
        join=False,
        start_method="spawn",
    )
    outcome: tuple[str, Any] | None = None
    failure: Exception | None = None
    # torch logs a warning when it stops the other ranks after one failed: the error says it all.
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    with _forward_signals(procs.pids()) as received:
        while True:
            # Read while waiting: a large metrics dict must not block rank 0 on a full pipe.
            while not results.empty():
                message = results.get()
                if outcome is None or outcome[0] == "ok" and message[0] == "error":
                    outcome = message
            try:
                if procs.join(timeout=0.2):
                    break
            except Exception as exc:  # a rank failed; torch has stopped the others
                failure = exc
                break
        while not results.empty():
            message = results.get()
            if outcome is None:
                outcome = message
    if outcome is not None and outcome[0] == "error":
        exc = outcome[1]
        if isinstance(exc, UserError):
            exc.key = outcome[2]
            raise exc
        raise exc from failure  # `failure` carries the worker's traceback
    if outcome is None:
        if received:
            raise KeyboardInterrupt
        raise RuntimeError(f"a data-parallel worker failed without a message: {failure}")
    return outcome[1]


def fit_parallel(
    cfg: DictConfig,
    run_dir: str | Path,
    choices: dict[str, str] | None = None,
    resume: bool = False,
    check: Callable[[list[str], str | None], bool] | None = None,
) -> dict[str, Any]:
    """Data-parallel `fit`: inside torchrun this process is one rank; otherwise spawn
    `trainer.devices` ranks here. Returns rank 0's metrics (the ones in metrics.json);
    `check` as for `fit`."""
    from dlx.training.loop import Dist, fit

    check_devices(cfg)
    env = torchrun_env()
    if env is not None:
        join_torchrun(cfg)
        rank, world, _ = env
        dist = Dist(rank, world)
        metrics = fit(cfg, run_dir, resume=resume, dist=dist, choices=choices, check=check)
        _destroy_group(sync=True)  # not at interpreter exit (atexit is the fallback on errors)
        return metrics
    return spawn_fit(cfg, run_dir, int(cfg.trainer.devices), choices, resume, check)


__all__ = [
    "fit_parallel",
    "spawn_fit",
    "torchrun_env",
    "check_devices",
    "shared_run_overrides",
    "backend_for",
    "free_port",
]
