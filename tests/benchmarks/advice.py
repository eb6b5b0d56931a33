"""(advice) The closed loop of the fit verdict: is it right, and does following it help?

37 labelled situations (`advice_cases.py`: every lecture preset that runs offline, the
learning rate too small and too large for every optimizer, too few epochs, too little capacity,
bad initializations, overfitting, regression, solved tasks, every model family), each a seeded
run on `digits`, `function` or a benchmark dataset. For each: does the verdict (with its cause)
match the label; then the FIRST suggested command, exactly as printed (parsed with shlex), is
run and its monitored validation metric (best val loss) compared with the original's. Where the
two are within NOISE of each other, both are repeated over seeds 1 and 2 and the means over 3
seeds compared. The cases are split once into a tuning half and a held-out half (frozen in
`advice_cases.py`); each half is reported on its own.

    python tests/benchmarks/run.py --only advice     # or: python tests/benchmarks/advice.py
    python tests/benchmarks/advice.py --held-out     # one half only (--tuning: the other)
    python tests/benchmarks/advice.py --verdicts-only --seeds=0,1,2   # verdicts on 3 seeds

`transfer_learning` is not in the suite: it needs ImageNet weights, a download.
"""

from __future__ import annotations

import math
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from advice_cases import CASES, HELD_OUT, Case  # noqa: E402
from benchlib import CONF, Row, quiet  # noqa: E402

NOISE = 0.10  # a relative difference below this on seed 0: repeat over 3 seeds
SEEDS = (0, 1, 2)
FAST = ["log.graph=false"]
PROBE = "--no-probe" not in sys.argv  # also `dlx advise` each problem run and follow it
PROBE_EPOCHS = 5


def label_of(d: dict) -> str:
    return f"{d['verdict']}: {d['cause']}" if d.get("cause") else d["verdict"]


def best(m: dict) -> float:
    return float(m["best_value"]) if m.get("best_value") is not None else float("inf")


def fit(overrides: list[str], tmp: Path, tag: str) -> dict:
    """`dlx train OVERRIDES` in this process; a run that diverged is a result here too (its
    best val loss: inf when no epoch finished), not an error."""
    import dlx

    run_dir = tmp / tag.replace(" ", "_").replace("/", "_")
    with quiet():
        m = dlx.train([*overrides, *FAST, f"hydra.run.dir={run_dir}"], config_dir=str(CONF))
    if m.get("status") not in ("completed", "stopped_early", "diverged"):
        raise RuntimeError(f"dlx run {overrides} ended {m.get('status')}: {m.get('error')}")
    return m


def train_args(cmd: str) -> list[str]:
    """The overrides of a printed `dlx train ...` command (its --config-dir is the bench's)."""
    words = shlex.split(cmd)[2:]
    if words[:1] == ["--config-dir"]:
        words = words[2:]
    return [a for a in words if a not in FAST]


def follow(case: Case, args: list[str], before: float, tmp: Path, tag: str) -> dict:
    """Run a suggested command; over 3 seeds (and the original too) when seed 0 is too close."""
    r = {"before": [before], "after": [best(fit(args, tmp, f"c{case.index}-{tag}"))], "seeds": 1}
    if math.isfinite(before) and abs(r["after"][0] - before) <= NOISE * abs(before):
        for s in SEEDS[1:]:
            r["before"].append(_before(case, s, tmp))
            r["after"].append(best(fit([*args, f"seed={s}"], tmp, f"c{case.index}-{tag}s{s}")))
        r["seeds"] = len(SEEDS)
    mb, ma = statistics.mean(r["before"]), statistics.mean(r["after"])
    change = (ma - mb) / abs(mb) if math.isfinite(mb) else -1.0  # from diverged: -100%
    return {**r, "improved": ma < mb, "change": change}


def _before(case: Case, seed: int, tmp: Path) -> float:
    """The unchanged situation on another seed: run once a case, whichever suggestion asks."""
    cache = case.results.setdefault("_before", {})
    if seed not in cache:
        cache[seed] = best(fit([*case.overrides, f"seed={seed}"], tmp, f"c{case.index}-b{seed}"))
    return cache[seed]


def tested(case: Case, tmp: Path, before: float) -> list[dict]:
    """`dlx advise` on the run, then each command it printed as tested, run in full."""
    from dlx.launch.advise import advise

    with quiet():
        out = advise(tmp / f"c{case.index}-base", epochs=PROBE_EPOCHS)
    results = []
    for i, command in enumerate(out.get("tested") or []):
        res = follow(case, train_args(command), before, tmp, f"probe{i}")
        results.append({"command": command, **res})
    return results


def run_case(case: Case, tmp: Path, log=print) -> dict:
    t0 = time.perf_counter()
    case.results = {}  # filled below; the unchanged runs on seeds 1-2 are kept here meanwhile
    base = fit(case.overrides, tmp, f"c{case.index}-base")
    d = base["diagnosis"]
    r = {
        "verdict": label_of(d),
        "ok": case.accepts(label_of(d)),
        "try": d["try"],
        "good": case.good,
    }
    r["before"], r["after"], r["seeds"] = [best(base)], [], 1
    first = d["try"][0] if d["try"] else None
    r["first"] = first
    if first is None or not first.startswith("dlx train "):
        r["improved"] = None  # nothing to run (a good fit), or lr-find: not a training run
    else:
        r.update(follow(case, train_args(first), r["before"][0], tmp, "try0"))
    if PROBE and not case.good:
        r["tested"] = tested(case, tmp, r["before"][0])
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


def _tested_cell(r: dict) -> str:
    if "tested" not in r:
        return "-"
    t = r["tested"]
    return f"{sum(bool(x['improved']) for x in t)}/{len(t)}" if t else "none printed"


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
        "`dlx advise`: tested, improved in full",
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
            c.label.replace(
                "underfitting: lr too large|diverged: ", "underfitting or diverged: "
            ).replace("|", " or "),
            r["verdict"],
            "yes" if r["ok"] else "**no**",
            f"`{r['first'].replace(f' --config-dir {CONF}', '')}`" if r["first"] else "(none)",
            f"{_v(r['before'])} -> {_v(r['after']) or '-'}",
            better,
            _tested_cell(r),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rates(cases: list[Case]) -> dict:
    right = sum(c.results["ok"] for c in cases)
    problems = [c for c in cases if not c.good]
    helped = sum(bool(c.results["improved"]) for c in problems)
    good = [c for c in cases if c.good]
    not_worse = sum(c.results["improved"] is not False for c in good)
    probed = [t for c in problems for t in c.results.get("tested", [])]
    return {
        "verdict": (right, len(cases)),
        "helped": (helped, len(problems)),
        "good_not_worse": (not_worse, len(good)),
        "tested": (sum(bool(t["improved"]) for t in probed), len(probed)),
    }


def half_rows(bench: str, half: str, cases: list[Case]) -> list[Row]:
    r = rates(cases)
    (v, n), (h, p), (g, q) = r["verdict"], r["helped"], r["good_not_worse"]
    (t, u) = r["tested"]
    return [
        Row(
            bench,
            f"{half}: `dlx advise`'s tested suggestions improve best val loss (run in full)",
            f"{t}/{u}",
            ">= 90%",
            t >= 0.9 * u if u else None,
            u,
        ),
        Row(bench, f"{half}: verdict (and cause) = label", f"{v}/{n}", ">= 90%", v >= 0.9 * n, n),
        Row(
            bench,
            f"{half}: untested first suggestion improves best val loss (problem situations)",
            f"{h}/{p}",
            ">= 80%",
            h >= 0.8 * p,
            p,
        ),
        Row(
            bench,
            f"{half}: good fit, the advice never makes it worse",
            f"{g}/{q}",
            "all",
            g == q,
            q,
        ),
    ]


def selected(argv: list[str], quick: bool) -> list[Case]:
    """--held-out / --tuning: one half only; --quick: 4 cheap held-out situations;
    --case=TEXT: the situations whose name holds TEXT (repeatable)."""
    cases = list(CASES)
    if "--held-out" in argv or quick:
        cases = [c for c in cases if c.name in HELD_OUT]
    elif "--tuning" in argv:
        cases = [c for c in cases if c.name not in HELD_OUT]
    if quick:
        cases = [c for c in cases if "preset" not in c.name and "regression" not in c.name][:4]
    named = [a.split("=", 1)[1] for a in argv if a.startswith("--case=")]
    return [c for c in cases if any(n in c.name for n in named)] if named else cases


def verdicts_on_seeds(cases: list[Case], seeds: list[int], log=print) -> list[Row]:
    """--verdicts-only --seeds=0,1,2: each situation run on each seed, its verdict (and cause)
    checked against the label, per half; no suggestion is run (a few minutes, not ~17)."""
    right: dict[tuple[str, int], list[bool]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            for seed in seeds:
                m = fit([*case.overrides, f"seed={seed}"], Path(tmp), f"c{i}-s{seed}")
                got, half = (
                    label_of(m["diagnosis"]),
                    "held-out" if case.name in HELD_OUT else "tuning",
                )
                right.setdefault((half, seed), []).append(case.accepts(got))
                if not case.accepts(got):
                    log(f"  (advice) {half}, seed {seed}: {case.name}: {got!r} ({case.label!r})")
    bench = "advice: verdicts only, per seed"
    rows = []
    for (half, seed), oks in sorted(right.items()):
        rows.append(Row(bench, f"{half}, seed {seed}: verdict = label", f"{sum(oks)}/{len(oks)}"))
    return rows


def run(quick: bool = False, log=print, argv: list[str] | None = None) -> list[Row]:
    """--save=PATH: each situation's result is written there as it finishes, and a rerun with
    the same PATH skips the situations already in it (a crash or Ctrl-C loses nothing)."""
    import json

    argv = list(argv or [])
    cases = selected(argv, quick)
    if "--verdicts-only" in argv:
        seeds = next((a.split("=", 1)[1] for a in argv if a.startswith("--seeds=")), "0")
        return verdicts_on_seeds(cases, [int(x) for x in seeds.split(",")], log)
    save = next((Path(a.split("=", 1)[1]) for a in argv if a.startswith("--save=")), None)
    done = json.loads(save.read_text()) if save and save.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            case.index = i
            if case.name in done:
                case.results = done[case.name]
                continue
            case.results = run_case(case, Path(tmp), log)
            case.results.pop("_before", None)
            if save:
                done[case.name] = case.results
                save.write_text(json.dumps(done, indent=1))
    bench = "advice: labelled situations (digits/function, seed 0)"
    rows = []
    for half, names in (("held-out", HELD_OUT), ("tuning", None)):
        part = [c for c in cases if (c.name in HELD_OUT) == (names is not None)]
        if part:
            log(f"\n{half} half:\n" + markdown(part) + "\n")
            rows += half_rows(bench, half, part)
    return rows


if __name__ == "__main__":
    rows = run("--quick" in sys.argv, lambda m: print(m, file=sys.stderr, flush=True), sys.argv)
    for row in rows:
        print(f"{row.what}: {row.value} (target {row.target}, met {row.met})")
