"""Is it really better? Trials grouped by configuration, mean ± std, and Welch's t-test.

A configuration is a trial's overrides without the ones that only repeat it: `seed` (the
init and batch order), `data.seed` (the split), `cv.fold` (the validation fold), and
Hydra's internal ones. Configurations are ranked by the mean of the monitored metric; one
whose difference from the best is within noise (Welch's t-test, p >= 0.05) is tied with it.
`dlx compare --group` uses the same `welch_p` and `describe`: one implementation.
"""

from __future__ import annotations

import csv
import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlx.record.atomic import atomic_path
from dlx.record.status import OK as OK_STATUSES

REPEAT_KEYS = ("seed", "data.seed", "cv.fold")  # what varies between repeats of one config
ALPHA = 0.05
TIE_NOTE = (
    "≈ best: the difference from the best is within noise (Welch's t-test, p ≥ 0.05); "
    "mean ± std over the n trials that finished"
)
GROUP_FIELDS = [
    "rank",
    "configuration",
    "task",
    "monitor",
    "n",
    "failed",
    "pruned",
    "best_val_mean",
    "best_val_std",
    "test_metric",
    "test_mean",
    "test_std",
    "p_vs_best",
    "tied_with_best",
    "trials",
]


def objective_direction(monitor: str) -> str:
    """What a sweeper does with the objective (the monitored validation metric)."""
    return "maximize" if str(monitor).endswith("acc") else "minimize"


def short_override(override: str) -> str:
    """`reg.dropout=0.043564649850770354` -> `reg.dropout=0.04356`: for tables, not for reuse."""
    key, sep, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    if not sep or "." not in value and "e" not in value.lower() or len(value) <= 8:
        return override
    return f"{key}={number:.4g}"


def reproduce_command(params: list[str]) -> str:
    """The `dlx train` line that reruns a trial (the search preset itself is not needed)."""
    keep = [
        p for p in params if not p.lstrip("+~").startswith(("hparams_search=", "hydra/", "hydra."))
    ]
    return "dlx train " + " ".join(shlex.quote(p) for p in keep)


def override_key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0].strip()


def is_repeat_override(override: str) -> bool:
    """An override that repeats a configuration rather than changing it (or Hydra's own)."""
    key = override_key(override)
    return key in REPEAT_KEYS or key.startswith(("hydra.", "hydra/"))


def configuration(params: Sequence[str]) -> tuple[str, ...]:
    return tuple(p for p in params if not is_repeat_override(p))


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1); std None for one value."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances) for means a vs b; None when a
    side has fewer than two values (nothing to say about noise)."""
    a = [float(x) for x in a if x is not None and math.isfinite(float(x))]
    b = [float(x) for x in b if x is not None and math.isfinite(float(x))]
    if len(a) < 2 or len(b) < 2:
        return None
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    if not sa and not sb:  # no spread at all: equal or not, nothing random about it
        return 1.0 if ma == mb else 0.0
    from scipy.stats import ttest_ind

    p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else 1.0


def describe(values: Sequence[float]) -> str:
    """`0.1234 ± 0.0056` (or the one value), for tables."""
    mean, std = mean_std(values)
    if mean is None:
        return "-"
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g}"


def has_repeats(rows: list[dict[str, Any]]) -> bool:
    """Some configuration ran more than once (repeats, `seed=0,1,2`, cv folds)."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for r in rows:
        key = (r["task"], configuration(r["params"]))
        if key in seen:
            return True
        seen.add(key)
    return False


def group(rows: list[dict[str, Any]], ok: Sequence[str], test_key: str) -> list[dict[str, Any]]:
    """One row a configuration: values of the finished trials, mean ± std, ranked by the
    mean (per task), each compared with its task's best by Welch's t-test."""
    groups: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    for r in rows:
        key = (r["task"], configuration(r["params"]))
        g = groups.setdefault(
            key,
            {"task": r["task"], "params": list(key[1]), "monitor": "", "members": []},
        )
        g["members"].append(r)
        g["monitor"] = g["monitor"] or r["monitor"]
    out = list(groups.values())
    for g in out:
        done = [r for r in g["members"] if r["status"] in ok and _finite(r["best_val"])]
        g["values"] = [float(r["best_val"]) for r in done]
        g["tests"] = [float(r[test_key]) for r in done if _finite(r[test_key])]
        g["n"] = len(done)
        g["pruned"] = sum(r["status"] == "pruned" for r in g["members"])
        g["failed"] = len(g["members"]) - g["n"] - g["pruned"]
        g["mean"], g["std"] = mean_std(g["values"])
        g["sign"] = -1 if objective_direction(g["monitor"] or "val/loss") == "maximize" else 1
    tasks = list(dict.fromkeys(g["task"] for g in out))
    out.sort(
        key=lambda g: (
            tasks.index(g["task"]),
            g["mean"] is None,
            0.0 if g["mean"] is None else g["sign"] * g["mean"],
        )
    )
    best: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for g in out:
        counts[g["task"]] = counts.get(g["task"], 0) + 1
        g["rank"] = counts[g["task"]]
        b = best.setdefault(g["task"], g) if g["mean"] is not None else None
        g["best"] = b is g
        g["p"] = None if b is None or b is g else welch_p(b["values"], g["values"])
        g["tied"] = g["p"] is not None and g["p"] >= ALPHA
    return out


def write_groups_csv(groups: list[dict[str, Any]], test_key: str, path: Path) -> None:
    """groups.csv: one row a configuration, ranked; summary.csv keeps one row a trial."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:  # never via a link
        w = csv.DictWriter(f, fieldnames=GROUP_FIELDS)
        w.writeheader()
        for g in groups:
            test_mean, test_std = mean_std(g["tests"])
            w.writerow(
                {
                    "rank": g["rank"],
                    "configuration": " ".join(g["params"]),
                    "task": g["task"],
                    "monitor": g["monitor"],
                    "n": g["n"],
                    "failed": g["failed"],
                    "pruned": g["pruned"],
                    "best_val_mean": g["mean"],
                    "best_val_std": g["std"],
                    "test_metric": test_key,
                    "test_mean": test_mean,
                    "test_std": test_std,
                    "p_vs_best": g["p"],
                    "tied_with_best": "best" if g["best"] else g["tied"],
                    "trials": " ".join(r["trial"] for r in g["members"]),
                }
            )


def verdict_cell(g: dict[str, Any]) -> str:
    """best | ≈ best (p=0.41) | worse (p=0.003) | ? (n < 2)."""
    if g["best"]:
        return "best"
    if g["mean"] is None:
        return "no result"
    if g["p"] is None:
        return "? (n < 2)"
    return f"≈ best (p={g['p']:.2g})" if g["tied"] else f"worse (p={g['p']:.2g})"


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def print_groups(rows: list[dict[str, Any]], common: list[str], test: tuple[str, str]) -> list:
    """The ranked table of configurations (one per task); returns [(task label, best group)]."""
    from rich.table import Table

    from dlx.record.text import safe_text as escape  # from disk: markup, control chars
    from dlx.tracking.console import console

    groups = group(rows, OK_STATUSES, test[1])
    tasks = list(dict.fromkeys(g["task"] for g in groups))
    bests = []
    for task in tasks:
        members = [g for g in groups if g["task"] == task]
        monitor = next((g["monitor"] for g in members if g["monitor"]), "val/loss")
        trials = sum(len(g["members"]) for g in members)
        what = f"{task} " if len(tasks) > 1 else ""
        table = Table(
            title=f"sweep: {trials} {what}trials, {len(members)} configuration"
            f"{'s' * (len(members) > 1)} ranked by mean {escape(monitor)}",
            title_justify="left",
        )
        table.add_column("#", justify="right", no_wrap=True)
        shown_of = {
            id(g): " ".join(short_override(p) for p in g["params"] if p not in common)
            for g in members
        }
        # broken between overrides, not inside one (up to 30 characters kept whole)
        longest = max((len(w) for v in shown_of.values() for w in v.split()), default=1)
        table.add_column("configuration", overflow="fold", min_width=min(longest, 30))
        for col in ("n", f"best val ({monitor})", test[0]):
            table.add_column(col, justify="right", no_wrap=True)
        table.add_column("vs best")  # wraps first when the terminal is narrow
        for g in members:
            shown = shown_of[id(g)]
            n = f"{g['n']}" + (
                f" (+{len(g['members']) - g['n']})" if g["n"] < len(g["members"]) else ""
            )
            style = "bold" if g["best"] else "green" if g["tied"] else None
            table.add_row(
                str(g["rank"]),
                escape(shown or "(every trial the same)"),
                n,
                describe(g["values"]),
                describe(g["tests"]),
                verdict_cell(g),
                style=style if g["mean"] is not None else "red",
            )
        console.print(table)
        best = next((g for g in members if g["best"]), None)
        if best:
            best["tied_count"] = sum(g["tied"] for g in members)
            bests.append((task if len(tasks) > 1 else "", best))
    console.print(TIE_NOTE, soft_wrap=not console.is_terminal)
    return bests


def print_best(bests: list) -> None:
    """The best configuration (not its luckiest seed) and the command that trains it."""
    from dlx.record.text import safe_text as escape  # from disk: markup, control chars
    from dlx.tracking.console import console

    for task, best in bests:
        config = [p for p in best["params"] if not is_repeat_override(p)]
        tied = best.get("tied_count", 0)
        console.print(
            f"best {task + ' ' if task else ''}configuration: [bold]"
            f"{escape(' '.join(config) or '(the base config)')}[/] "
            f"({escape(best['monitor'])} = {describe(best['values'])}, n={best['n']})"
            + (f"; {tied} more within noise of it" if tied else ""),
            soft_wrap=not console.is_terminal,  # a terminal: wrapped between words
        )
        print_reproduce(config)


def print_reproduce(params: list[str]) -> None:
    """`reproduce it: dlx train ...` on one line; in a terminal too narrow for it, the command
    on lines of its own, folded between words with a backslash at each end (pastes as one)."""
    from dlx.record.text import plain_text
    from dlx.record.text import safe_text as escape
    from dlx.tracking.console import console
    from dlx.tracking.width import command_lines

    command, head = plain_text(reproduce_command(params)), "reproduce it:"
    if not console.is_terminal or len(head) + 1 + len(command) <= console.width:
        console.print(f"{head} [bold]{escape(command)}[/]", soft_wrap=True)
        return
    console.print(head)
    for part in command_lines(command, console.width):
        console.print(part, soft_wrap=True, highlight=False, markup=False)
