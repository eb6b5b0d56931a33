"""Reading run folders back, fast: what `dlx runs` and `dlx compare` know about a run.

A run folder is one with `.hydra/config.yaml`. How it went is in `metrics.json`, which the
loop writes with its summary first and the per-epoch history last: the table parses the
summary only (the history is most of the file). What it was: the group choices and the
flat config in metrics.json (`.hydra/config.yaml`, YAML, only for runs older than that),
the command-line overrides from `.hydra/overrides.yaml`. Nothing read here is executed:
JSON and safe YAML are data.

A damaged folder (metrics.json that is not an object, truncated, unreadable, a status
nobody writes) is one row that says what is wrong; it never hides the good runs.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlx.record import names
from dlx.record import status as st
from dlx.record.lock import held_locks, is_locked
from dlx.record.metrics import flatten

# Where metrics.json's summary ends: the loop writes these (big) keys last, indent=2. The
# table stops before the config too; a filter on a config key reads on to the verdict.
_CONFIG_KEY = b'\n  "config": '
_TAIL_KEYS = (b'\n  "diagnosis": ', b'\n  "history": ')
_SMALL = 8192  # below this a whole parse is as cheap as cutting
_MAX_READ = 1 << 20  # the summary is within the first MiB of any metrics.json dlx writes
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "epochs_run": (int,),
    "best_epoch": (int,),
    "best_value": (int, float),
    "monitor": (str,),
    "val": (dict,),
    "test": (dict,),
    "early_stopping": (dict,),
    "choices": (dict,),
    "config": (dict,),
    "wall_time_s": (int, float),
    "task": (str,),
    "error": (str,),
}


def _read_bytes(path: str, limit: int = _MAX_READ) -> tuple[bytes, int, bytes]:
    """(the first `limit` bytes, the size, the last bytes) of a regular file. A FIFO, a
    device or a link to one never blocks or streams forever: OSError."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "not a regular file")
        head = os.read(fd, min(st.st_size, limit)) if st.st_size else b""
        if st.st_size <= limit:
            return head, st.st_size, head[-16:]
        return head, st.st_size, os.pread(fd, 16, st.st_size - 16)
    finally:
        os.close(fd)


def read_summary(
    path: str | Path, with_config: bool = False
) -> tuple[dict[str, Any] | None, str | None]:
    """metrics.json without its history (and config): (summary, None), or (None, what is
    wrong)."""
    try:
        head, size, tail = _read_bytes(str(path))
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read metrics.json ({exc.strerror or exc})"
    if size > _SMALL and not tail.rstrip().endswith(b"}"):
        return None, "metrics.json is truncated"
    data: Any = None
    if size > _SMALL:
        keys = _TAIL_KEYS if with_config else (_CONFIG_KEY, *_TAIL_KEYS)
        cut = min((i for i in (head.find(k) for k in keys) if i > 0), default=-1)
        if cut > 0:
            try:
                data = json.loads(head[:cut].rstrip().rstrip(b",") + b"\n}")
            except ValueError:
                data = None
    if data is None:
        if size > _MAX_READ:
            return None, f"metrics.json is {size // (1 << 20)} MiB and not dlx's layout"
        try:
            data = json.loads(head)
        except (ValueError, RecursionError):
            return None, "metrics.json is not valid JSON (truncated?)"
    return check_summary(data)


def check_summary(data: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The summary if its fields have the types dlx writes; else what is wrong with it."""
    if not isinstance(data, dict):
        kind = "null" if data is None else type(data).__name__
        return None, f"metrics.json holds {kind}, not an object"
    status = data.get("status")
    if status not in st.WRITTEN:
        return data, f"metrics.json has status {str(status)[:40]!r}"
    for key, types in _FIELD_TYPES.items():
        v = data.get(key)
        if v is not None and (not isinstance(v, types) or isinstance(v, bool)):
            return data, f"metrics.json's {key} is {type(v).__name__}"
    return data, None


def read_overrides(run: str | Path) -> list[str]:
    """`.hydra/overrides.yaml` (Hydra writes a YAML list of strings), hydra.* left out."""
    try:
        text = _read_bytes(os.path.join(run, names.HYDRA, names.OVERRIDES), 1 << 16)[0].decode()
    except (OSError, UnicodeDecodeError):
        return []
    items: list[str] | None = []
    for line in text.splitlines():
        if not line.strip() or line.strip() == "[]":
            continue
        v = line[2:] if line.startswith("- ") else None
        if v is None or v[:1] in '"&*!|>{[%@`' or v.endswith(":") or ": " in v or " #" in v:
            items = None  # not the plain list Hydra usually writes: let YAML read it
            break
        if v[:1] == "'":
            if not (len(v) > 1 and v.endswith("'")):
                items = None
                break
            v = v[1:-1].replace("''", "'")
        items.append(v)
    if items is None:  # bounded: no anchors/aliases (a 500-byte alias bomb), depth, size
        from dlx.errors import UserError
        from dlx.record.read import parse_yaml

        try:
            loaded = parse_yaml(text, "overrides.yaml", omegaconf=False)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        items = [str(o) for o in loaded] if isinstance(loaded, list) else []
    return [o for o in items if not o.lstrip("+~").startswith("hydra")]


def read_yaml(path: Path) -> Any:
    """A YAML file as plain data, through `record.read` (bounded, no aliases); UserError."""
    from dlx.record.read import load_yaml

    return load_yaml(path, 1 << 22, omegaconf=False)


@dataclass
class Run:
    path: Path
    name: str
    time: float
    summary: dict[str, Any]
    problem: str | None
    status: str
    overrides: list[str]
    _flat: dict[str, Any] | None = field(default=None, repr=False)
    _with_config: bool = field(default=False, repr=False)

    @property
    def choices(self) -> dict[str, str]:
        c = self.summary.get("choices")
        if isinstance(c, dict) and c:
            return {str(k): str(v) for k, v in c.items() if v is not None}
        try:  # runs from before metrics.json held them, and runs that are still going
            hydra = read_yaml(names.hydra_yaml(self.path))
            c = hydra["hydra"]["runtime"]["choices"]
            return {str(k): str(v) for k, v in c.items() if v is not None and "hydra" not in k}
        except Exception:
            return {}

    def config(self) -> dict[str, Any]:
        """The run's composed config, flat: from metrics.json, else .hydra/config.yaml."""
        c = self.summary.get("config")
        if c is None and not self.problem:  # the table's read stopped before it
            c = (read_summary(names.metrics(self.path), with_config=True)[0] or {}).get("config")
            self.summary["config"] = c if c is not None else False  # read once
        if isinstance(c, dict):
            return c
        try:
            return flatten(read_yaml(names.config(self.path)))
        except Exception:
            return {}

    def flat(self, with_config: bool = False) -> dict[str, Any]:
        """One row of flat dotted keys: the metrics summary, the group choices (`opt`: `adam`)
        and, `with_config`, the whole composed config (`opt.lr`)."""
        if self._flat is None:
            s = {
                k: v
                for k, v in self.summary.items()
                if k not in ("choices", "config", "diagnosis", "history")
            }
            row: dict[str, Any] = {"run": self.name, "path": str(self.path)}
            row.update(flatten(s) if not self.problem else {})
            row.update(status=self.status, problem=self.problem)
            row["overrides"] = " ".join(self.overrides)
            row.update(self.choices)
            self._flat = row
        if with_config and not self._with_config:
            for k, v in self.config().items():
                self._flat.setdefault(k, v)
            self._with_config = True
        return self._flat


def find_runs(directory: Path) -> list[Path]:
    """Every run folder under `directory` (itself included). Neither checkpoints/ nor hidden
    folders are walked into, nor links to folders (a link loop ends nowhere)."""
    found, stack = [], [str(directory)]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        except OSError:
            continue
        if any(n == names.HYDRA and is_dir for n, is_dir in entries) and os.path.isfile(
            os.path.join(d, names.HYDRA, names.CONFIG)
        ):
            found.append(Path(d))
        stack.extend(
            os.path.join(d, n)
            for n, is_dir in entries
            if is_dir and n[0] != "." and n != names.CHECKPOINTS and n != "__pycache__"
        )
    return found


def load_run(run: Path, root: Path, held: set[int] | None) -> Run:
    p = str(run)
    summary, problem = read_summary(os.path.join(p, names.METRICS))
    try:
        started = os.stat(os.path.join(p, names.HYDRA, names.OVERRIDES)).st_mtime
    except OSError:
        started = os.stat(os.path.join(p, names.HYDRA, names.CONFIG)).st_mtime
    if is_locked(p, held):
        status = st.RUNNING  # started, or resumed: another process is writing this folder
    elif problem:
        status = st.DAMAGED
    elif summary is None:
        went = os.path.isdir(os.path.join(p, names.CHECKPOINTS))
        status = ("killed" if held is not None else "running or killed") if went else "no metrics"
    else:
        status = summary["status"]
    name = run.relative_to(root).as_posix() if run != root else run.name
    try:
        overrides = read_overrides(p)
    except ValueError as exc:  # refused by record.read (an alias bomb, too deep, too big)
        overrides, problem, status = [], f"overrides.yaml refused: {str(exc)[-160:]}", "damaged"
    return Run(run, name, started, summary or {}, problem, status, overrides)


def load_runs(directory: Path) -> list[Run]:
    """The runs under `directory`, oldest first (sweep trials interleave with single runs)."""
    root = Path(directory)
    held = held_locks()
    runs = []
    for path in find_runs(root):
        try:
            runs.append(load_run(path, root, held))
        except OSError:  # vanished while we looked (a sweep cleaning up): not a run any more
            continue
    runs.sort(key=lambda r: (r.time, r.name))
    return runs
