"""Checkpoints: a plain dict, written atomically, read back with `weights_only=True`.

A write goes to a temporary file in the same folder, is fsynced, then renamed over
the old one, so a kill at any moment leaves the previous checkpoint intact. Loading
never unpickles code: a file that needs more than tensors and plain containers is
refused with a clear message.
"""

from __future__ import annotations

import errno
import os
import pickle
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dlx.errors import UserError

if TYPE_CHECKING:
    from dlx.training.run import Run

FORMAT = "dlx-checkpoint/1"


def _file_mode() -> int:
    """The mode an ordinary new file gets (mkstemp's temp files are 0600)."""
    try:  # Linux: read the umask without changing it (os.umask would race other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


TMP_SUFFIX = ".dlx.tmp"  # dlx's own temp files: the only ones it ever cleans up
# The files dlx writes atomically in a run folder: their stale temp files may be removed.
WRITTEN = ("last.pt", "best.pt", "metrics.json", "eval.json", "config.yaml")


def _refuse_link(path: Path) -> None:
    """A run folder may come from someone else: never write through a symlink placed there."""
    for p in (path, path.parent):
        if p.is_symlink() and (p is path or p.name in ("checkpoints", ".hydra")):
            raise UserError(
                f"{p} is a symbolic link (to {os.readlink(p)}); dlx never writes through a "
                "link in a run folder. Remove the link (or copy the folder without it).",
                key=str(p),
            )


def _disk_full(folder: Path, exc: Exception) -> bool:
    """Did a write fail because the disk is full (whatever the writer made of ENOSPC)?"""
    import shutil

    if "unexpected pos" in str(exc) or "No space left" in str(exc):
        return True
    try:
        return shutil.disk_usage(folder).free < (64 << 10)
    except OSError:
        return False


def atomic_write(path: Path, write) -> None:
    """Call `write(fileobj)` on a temp file next to `path`, fsync, then rename it into place.

    The temp file is created with O_EXCL (mkstemp: never an existing file, never through a
    link) and renamed over `path`; a symlink at `path` is refused. A failed write (a full
    disk) leaves the previous file as it was and names `path` in the OSError."""
    path = Path(path)
    _refuse_link(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not exc.filename:
            exc.filename = str(path)
        elif isinstance(exc, Exception) and _disk_full(path.parent, exc):
            # torch.save's zip writer reports a short write as "unexpected pos ..."
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def stale_temp_files(folder: Path) -> list[Path]:
    """The temp files a killed dlx writer left in `folder`: dlx's own names only (a `*.tmp`
    of someone else's is never touched), regular files only."""
    return [
        p
        for name in WRITTEN
        for p in Path(folder).glob(f".{name}.*{TMP_SUFFIX}")
        if p.is_file() and not p.is_symlink()
    ]


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete the temp files a killed writer left behind (call it holding `run_lock`)."""
    removed = []
    for tmp in stale_temp_files(folder):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


_HELD: dict[str, int] = {}  # run folders this process holds the lock of (re-entrant)


@contextmanager
def run_lock(run_dir: Path, share: bool = False) -> Iterator[None]:
    """One writer per run folder: a run and a `--resume` of it (or two resumes) never write
    the same checkpoints at once. The OS drops the lock when the process dies, even by kill -9.

    `share=True` (dlx train with hydra.run.dir=DIR, before Hydra writes there): the run that
    this process then starts in DIR joins the lock instead of being refused by it."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; a run folder is still per run
        yield
        return
    lock_dir = Path(run_dir) / "checkpoints"
    held = os.path.realpath(lock_dir)
    if _HELD.get(held, 0) > 0:  # taken with share=True before Hydra started (dlx train)
        _HELD[held] += 1
        try:
            yield
        finally:
            _HELD[held] -= 1
        return
    try:
        _refuse_link(lock_dir / ".lock")
        lock_dir.mkdir(parents=True, exist_ok=True)
        _refuse_link(lock_dir / ".lock")
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(lock_dir / ".lock", flags, 0o644)
    except OSError as exc:
        raise UserError(
            f"Cannot write to the run folder {run_dir}: {exc.strerror}.", key="hydra.run.dir"
        ) from None
    f = os.fdopen(fd, "a")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{run_dir} is in use by another dlx process (the run, or a `--resume` of it, is "
                "still going). Wait for it to end or stop it first.",
                key="hydra.run.dir",
            ) from None
        remove_stale_temp_files(lock_dir)
        remove_stale_temp_files(Path(run_dir))
        if share:
            _HELD[held] = 1
        try:
            yield
        finally:
            if share:
                _HELD.pop(held, None)
    finally:
        f.close()


def save(path: Path, state: dict[str, Any]) -> None:
    atomic_write(Path(path), lambda f: torch.save({"format": FORMAT, **state}, f))


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a dlx checkpoint safely; every failure is a UserError (exit 2)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"No checkpoint at {path}.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        what = next(
            (ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln), lines[0] if lines else ""
        )
        raise UserError(
            f"Refused to load {path}: it holds more than tensors and plain data, and dlx never "
            f"runs code from a checkpoint (weights_only=True). {what[:300]}"
        ) from None
    except Exception as exc:  # truncated zip, foreign format, ...
        detail = str(exc).split(". ")[0].splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(
            f"{path} is not a readable checkpoint (truncated or corrupt?): {detail}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a dlx checkpoint (no '{FORMAT}' marker).")
    return state


def load_model_state(model: torch.nn.Module, state_dict: dict[str, Any], path: Path) -> None:
    """Load weights, turning a shape/key mismatch into a message about the model config."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = [line.strip() for line in str(exc).splitlines() if line.strip()][:3]
        raise UserError(
            f"The checkpoint {path} was made by a different model config than this one "
            f"(check `model=...` and its keys): {' '.join(first)}"
        ) from None


TRAINING_KEYS = ("model", "optimizer", "early_stopping", "run", "rng")


def check_resumable(state: dict[str, Any], model_target: str, path: Path) -> None:
    """A checkpoint to continue training from: complete, and made by the same kind of model."""
    missing = [k for k in TRAINING_KEYS if k not in state]
    if missing:
        raise UserError(
            f"{path} cannot be resumed from: it lacks {', '.join(missing)} "
            "(a weights-only or damaged checkpoint)."
        )
    saved_target = state.get("model_target")
    if saved_target and saved_target != model_target:
        raise UserError(
            f"The checkpoint {path} was made by model `{saved_target}`, but the config asks for "
            f"`{model_target}` (check `model=...`).",
            key="model",
        )


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, state: dict[str, Any], path: Path
) -> None:
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise UserError(
            f"The optimizer state in {path} does not fit this config's optimizer or model "
            f"(check `opt=...` and `model=...`): {exc}",
            key="opt",
        ) from None


def rng_state() -> dict[str, Any]:
    """Every RNG a run draws from, as tensors and plain data (weights_only-safe)."""
    import random

    import numpy as np

    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"].cpu())
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        n = torch.cuda.device_count()  # a run resumed on a machine with fewer GPUs
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"][:n]])


def snapshot(run: Run, best: bool = False) -> dict[str, Any]:
    """Everything `restore` needs to continue `run` exactly as if it had never stopped."""
    rng = rng_state()
    rng["loader"] = run.shuffle_gen.get_state()
    state = run.state
    ema = run.knobs.ema
    return {
        # best.pt: the weights that were validated (the EMA's when on); last.pt: the raw
        # weights training goes on from, with the EMA beside them
        "model": (run.eval_model if best else run.model).state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "optimizer": run.optimizer.state_dict(),
        **run.schedule.state_dict(),  # "scheduler" and "warmup"
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
        "early_stopping": run.stopper.state_dict(),
        "run": {
            "epoch": state.epoch,
            "global_step": state.global_step,
            "initial_loss": state.initial_loss,
            "history": state.history,
        },
        "rng": rng,
        "model_target": str(run.cfg.model._target_),
    }


def save_run(run: Run, name: str) -> None:
    """checkpoints/NAME (last.pt, best.pt) of `run`; rank 0 alone writes."""
    if run.dist.is_main and run.knobs.debug.checkpoints:  # debug=fdr writes none
        save(run.ckpt_dir / name, snapshot(run, best=name == "best.pt"))


def restore(run: Run, path: Path) -> None:
    """Put `run` back where `snapshot` left it: weights, optimizer, scheduler, scaler, early
    stopping, counters, every RNG and the training order, and best.pt's weights."""
    from dlx.training.optim import unfreeze

    # On the CPU: RNG states must be CPU tensors; weights and optimizer state are copied
    # onto the model's device by load_state_dict.
    saved = load(path, map_location="cpu")
    check_resumable(saved, str(run.cfg.model._target_), path)
    load_model_state(run.model, saved["model"], path)
    at = run.cfg.model.get("unfreeze_at_epoch")
    if at and saved["run"]["epoch"] > at:  # the saved optimizer holds the unfrozen group
        mult = float(run.cfg.opt.get("backbone_lr_mult", 1.0))
        unfreeze(run.model, run.optimizer, run.scheduler, mult)
    load_optimizer_state(run.optimizer, saved["optimizer"], path)
    run.schedule.load_state_dict(saved)  # the scheduler's state and warmup's
    if run.knobs.ema is not None and saved.get("ema"):
        run.knobs.ema.load_state_dict(saved["ema"])
    if run.scaler is not None and saved.get("scaler"):
        run.scaler.load_state_dict(saved["scaler"])
    run.stopper.load_state_dict(saved["early_stopping"])
    run.state = type(run.state)(**saved["run"])
    run.shuffle_gen.set_state(saved["rng"]["loader"])
    set_rng_state(saved["rng"])
    best = path.parent / "best.pt"
    if best.is_file():
        run.best_weights = load(best, map_location="cpu")["model"]
