"""(advice) The closed loop of the fit verdict: is it right, and does following it help?

Labelled situations from the lecture (each experiment preset that runs offline, the learning
rate too small and too large for SGD and Adam, too few epochs, too little capacity, overfitting
without regularization, naive init, regression, augmentation), each a seeded run on `digits` or
`function`. For each: does the verdict (with its cause) match the label; then the FIRST
suggested command, exactly as printed (parsed with shlex), is run and its monitored validation
metric (best val loss) compared with the original's. Where the two are within NOISE of each
other, both are repeated over seeds 1 and 2 and the means over 3 seeds compared.

    python tests/benchmarks/run.py --only advice     # or: python tests/benchmarks/advice.py

`transfer_learning` is not in the suite: it needs ImageNet weights, a download.
"""

from __future__ import annotations

import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Row, dlx_fit  # noqa: E402

NOISE = 0.10  # a relative difference below this on seed 0: repeat over 3 seeds
SEEDS = (0, 1, 2)
FAST = ["log.graph=false"]


@dataclass
class Case:
    name: str
    overrides: list[str]
    label: str  # "verdict" or "verdict: cause"
    index: int = 0
    results: dict = field(default_factory=dict)


CASES = [
    Case("preset overfitting", ["experiment=overfitting"], "overfitting"),
    Case("preset regularized", ["experiment=regularized"], "good fit"),
    Case("preset underfitting", ["experiment=underfitting"], "underfitting: capacity"),
    Case("preset lr_too_high (SGD)", ["experiment=lr_too_high"], "underfitting: lr too large"),
    Case("preset lr_too_low (SGD)", ["experiment=lr_too_low"], "underfitting: lr too small"),
    Case("preset naive_init", ["experiment=naive_init"], "underfitting: saturated gradients"),
    Case("preset universal_approximation", ["experiment=universal_approximation"], "good fit"),
    Case(
        "SGD lr too small (cnn)",
        ["opt=sgd", "opt.lr=0.01", "epochs=10"],
        "underfitting: lr too small",
    ),
    Case("Adam lr too small (cnn)", ["opt.lr=1e-5", "epochs=10"], "underfitting: lr too small"),
    Case(
        "SGD lr too large (cnn)",
        ["opt=sgd", "opt.lr=1.0", "epochs=10"],
        "underfitting: lr too large",
    ),
    Case("Adam lr too large (cnn)", ["opt.lr=0.1", "epochs=10"], "underfitting: lr too large"),
    Case("too few epochs (cnn)", ["epochs=3"], "underfitting: too few epochs"),
    Case(
        "too little capacity (regression)",
        ["data=function", "model=mlp", "model.width=3", "model.depth=1", "epochs=100"],
        "underfitting: capacity",
    ),
    Case(
        "augmentation (overfitting + aug=mnist)",
        ["experiment=overfitting", "aug=mnist"],
        "underfitting: too few epochs",
    ),
    Case("the defaults (cnn on digits)", [], "good fit"),
]


def label_of(d: dict) -> str:
    return f"{d['verdict']}: {d['cause']}" if d.get("cause") else d["verdict"]


def best(m: dict) -> float:
    return float(m["best_value"]) if m.get("best_value") is not None else float("inf")


def fit(overrides: list[str], tmp: Path, tag: str) -> dict:
    return dlx_fit(
        [*overrides, *FAST], tmp / tag.replace(" ", "_").replace("/", "_"), config_dir=None
    )


def run_case(case: Case, tmp: Path, log=print) -> dict:
    t0 = time.perf_counter()
    base = fit(case.overrides, tmp, f"c{case.index}-base")
    d = base["diagnosis"]
    r = {
        "verdict": label_of(d),
        "ok": label_of(d) == case.label,
        "try": d["try"],
        "good": case.label == "good fit",
    }
    r["before"], r["after"], r["seeds"] = [best(base)], [], 1
    first = d["try"][0] if d["try"] else None
    r["first"] = first
    if first is None or not first.startswith("dlx train "):
        r["improved"] = None  # nothing to run (a good fit), or lr-find: not a training run
    else:
        args = [a for a in shlex.split(first)[2:] if a not in FAST]
        r["after"].append(best(fit(args, tmp, f"c{case.index}-try0")))
        close = abs(r["after"][0] - r["before"][0]) <= NOISE * abs(r["before"][0])
        if close:
            for s in SEEDS[1:]:
                r["before"].append(
                    best(fit([*case.overrides, f"seed={s}"], tmp, f"c{case.index}-b{s}"))
                )
                r["after"].append(best(fit([*args, f"seed={s}"], tmp, f"c{case.index}-t{s}")))
            r["seeds"] = len(SEEDS)
        mb, ma = statistics.mean(r["before"]), statistics.mean(r["after"])
        r["improved"] = ma < mb
        r["change"] = (ma - mb) / abs(mb)
    r["wall_s"] = time.perf_counter() - t0
    log(
        f"  (advice) {case.name}: verdict {r['verdict']!r} ({'ok' if r['ok'] else 'MISS'}); "
        f"first try {first!r}; val {r['before']} -> {r['after']} ({r['wall_s']:.0f} s)"
    )
    return r


def _v(xs: list[float]) -> str:
    if not xs:
        return ""
    m = statistics.mean(xs)
    return f"{m:.3g}" if len(xs) == 1 else f"{m:.3g} (mean of {len(xs)} seeds)"


def markdown(cases: list[Case]) -> str:
    head = [
        "situation",
        "`dlx train ...`",
        "label",
        "verdict",
        "= label",
        "first suggestion",
        "best val loss before -> after",
        "better",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for c in cases:
        r = c.results
        if r["improved"] is None:
            better = "nothing to fix" if r["good"] and not r["first"] else "n/a"
        else:
            better = f"{'yes' if r['improved'] else '**no**'} ({100 * r['change']:+.0f}%)"
        cells = [
            c.name,
            f"`{' '.join(c.overrides) or '(defaults)'}`",
            c.label,
            r["verdict"],
            "yes" if r["ok"] else "**no**",
            f"`{r['first']}`" if r["first"] else "(none)",
            f"{_v(r['before'])} -> {_v(r['after']) or '-'}",
            better,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rates(cases: list[Case]) -> dict:
    right = sum(c.results["ok"] for c in cases)
    problems = [c for c in cases if c.label != "good fit"]
    helped = sum(bool(c.results["improved"]) for c in problems)
    good = [c for c in cases if c.label == "good fit"]
    not_worse = sum(c.results["improved"] is not False for c in good)
    return {
        "verdict": (right, len(cases)),
        "helped": (helped, len(problems)),
        "good_not_worse": (not_worse, len(good)),
    }


def run(quick: bool = False, log=print) -> list[Row]:
    cases = CASES if not quick else [c for c in CASES if "preset" not in c.name][:4]
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            case.index = i
            case.results = run_case(case, Path(tmp), log)
    table = markdown(cases)
    log("\n" + table + "\n")
    r = rates(cases)
    bench = f"advice: {len(cases)} labelled situations (digits/function, seed 0)"
    (v, n), (h, p), (g, q) = r["verdict"], r["helped"], r["good_not_worse"]
    return [
        Row(bench, "verdict (and cause) = label", f"{v}/{n}", ">= 11/12", v / n >= 11 / 12, n),
        Row(
            bench,
            "first suggested run improves best val loss (situations with a problem)",
            f"{h}/{p}",
            ">= 10/12",
            h / max(p, 1) >= 10 / 12,
            p,
        ),
        Row(bench, "good fit: the advice never makes it worse", f"{g}/{q}", "all", g == q, q),
    ]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv, log=lambda m: print(m, file=sys.stderr, flush=True)):
        print(f"{row.what}: {row.value} (target {row.target}, met {row.met})")
