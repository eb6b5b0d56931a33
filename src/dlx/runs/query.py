"""`dlx runs --filter` and `--sort`: the override grammar over a run's flat keys.

A key is anything in a run's row: its metrics (`status`, `test.acc`, `val.loss`,
`best_value`, `epochs_run`, `wall_time_s`), its group choices (`opt`, `model`, `data`) and
its composed config (`opt.lr`, `batch_size`, `model.width`). A filter is `KEY=VALUE`
(several values: `opt=adam,sgd`), `KEY!=VALUE`, or `<`, `<=`, `>`, `>=` against a number;
several filters must all hold.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from dlx.errors import UserError
from dlx.runs.load import Run

_FILTER = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*(!=|<=|>=|==|=|<|>)\s*(.*?)\s*$")
_NUMERIC_OPS = ("<", "<=", ">", ">=")


def _value(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "~"):  # `none` stays text: aug=none, sched=none are choices
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _split(text: str) -> list[str]:
    """`adam,sgd` -> two values; `[l2,dropout]` and quoted text stay one."""
    out, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        cur += ch
    return [*out, cur]


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(text(x) for x in v) + "]"
    if v is None:
        return "null"
    return str(v).lower() if isinstance(v, bool) else str(v)


def printable(v: Any) -> str:
    """Text for a terminal: control characters (escape sequences) from a folder shown escaped
    (`\\x1b`, record.text.plain_text: the one rule for names from disk)."""
    from dlx.record.text import plain_text

    s = v if isinstance(v, str) else text(v)
    return s if s.isprintable() else plain_text(s)


def cell(v: Any) -> str:
    """A table cell: - for missing, 4 significant digits for a float."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return printable(v)


def _equal(have: Any, want: Any, typed: str) -> bool:
    if is_number(have) and is_number(want):
        return math.isclose(have, want, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(want, bool) or want is None:
        return have is want if not isinstance(have, str) else text(want) == have.lower()
    return text(have) == typed or text(have) == text(want)


@dataclass
class Filter:
    key: str
    op: str
    values: list[tuple[Any, str]]

    def __str__(self) -> str:
        return f"{self.key}{self.op}{','.join(t for _, t in self.values)}"

    def holds(self, have: Any, present: bool) -> bool:
        if self.op in _NUMERIC_OPS:
            want = self.values[0][0]
            if not present or not is_number(have):
                return False
            return {
                "<": have < want,
                "<=": have <= want,
                ">": have > want,
                ">=": have >= want,
            }[self.op]
        equal = present and any(_equal(have, v, t) for v, t in self.values)
        return not equal if self.op == "!=" else equal


def parse_filter(raw: str) -> Filter:
    m = _FILTER.match(raw)
    if not m or not m.group(3):
        raise UserError(
            f"--filter {raw!r}: write KEY=VALUE, KEY!=VALUE or KEY<NUMBER (also <=, >, >=), "
            "e.g. opt=adam, opt=adam,sgd, opt.lr<0.01, status=completed.",
            key="--filter",
        )
    key, op, rest = m.group(1), m.group(2), m.group(3)
    op = "=" if op == "==" else op
    values = [(_value(t.strip()), t.strip()) for t in _split(rest)] if op in ("=", "!=") else []
    if op in _NUMERIC_OPS:
        v = _value(rest)
        if not is_number(v):
            raise UserError(
                f"--filter {raw!r}: {op} compares numbers; {rest!r} is not one.", key="--filter"
            )
        values = [(v, rest)]
    return Filter(key, op, values)


def lookup(run: Run, key: str) -> tuple[Any, bool]:
    """(value, present): the metrics and choices first, the config only when needed."""
    row = run.flat()
    if key not in row:
        row = run.flat(with_config=True)
    return row.get(key), key in row


def _unknown(key: str, runs: list[Run], option: str) -> UserError:
    known: set[str] = set()
    for r in runs[:50]:
        known.update(r.flat(with_config=True))
    known -= {"path", "problem"}
    near = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    examples = ", ".join(
        k for k in ("status", "test.acc", "val.loss", "opt", "opt.lr") if k in known
    )
    return UserError(
        f"{option} {key}: no run has the key {key!r}.{hint} Keys are a run's metrics and its "
        f"config, e.g. {examples}.",
        key=option,
    )


def apply_filters(runs: list[Run], filters: list[Filter]) -> list[Run]:
    for f in filters:
        seen = False
        kept = []
        for r in runs:
            have, present = lookup(r, f.key)
            seen = seen or present
            if f.holds(have, present):
                kept.append(r)
        if not seen and runs:
            raise _unknown(f.key, runs, "--filter")
        runs = kept
    return runs


def default_descending(key: str) -> bool:
    """Accuracy-like keys sort best first (high to low); losses, errors and the rest low first."""
    last = key.rsplit(".", 1)[-1].lower()
    return "acc" in last or last in ("samples_per_s", "f1", "precision", "recall", "auc")


def sort_runs(runs: list[Run], spec: str, descending: bool | None) -> tuple[list[Run], str, bool]:
    """Runs by `spec` (`test.acc`, `-val.loss`, `+opt.lr`); runs without that key go last
    either way. Returns (runs, key, descending)."""
    key = spec.lstrip("+-")
    if descending is None:
        descending = spec.startswith("-") or (not spec.startswith("+") and default_descending(key))
    values = [(lookup(r, key), r) for r in runs]
    if runs and not any(present for (_, present), _ in values):
        raise _unknown(key, runs, "--sort")
    numbers = [(v, r) for (v, p), r in values if p and is_number(v) and not math.isnan(v)]
    texts = [(text(v), r) for (v, p), r in values if p and v is not None and not is_number(v)]
    rest = [r for (v, p), r in values if not p or v is None or (is_number(v) and math.isnan(v))]
    numbers.sort(key=lambda x: x[0], reverse=descending)
    texts.sort(key=lambda x: x[0], reverse=descending)
    return [r for _, r in numbers] + [r for _, r in texts] + rest, key, descending
