"""`make bench`: dlx's benchmarks on this machine, printed as one markdown table.

    python tests/benchmarks/run.py            # everything (< 10 min on an idle 2-core machine)
    python tests/benchmarks/run.py --quick    # smaller data, one repeat: to try it (~2 min)
    python tests/benchmarks/run.py --only 1,3 # some of them: 1 overhead, 2 start-up + 5 memory,
                                              # 3 sweep, 4 time to accuracy, fastpath,
                                              # runs (dlx runs on 1,000/10,000 folders)
    python tests/benchmarks/run.py --only infer  # dlx predict vs torchvision, export parity
                                              # (on request: ~5 min, 3 training runs)
    python tests/benchmarks/run.py --only advice  # the fit verdict's closed loop (not in the
                                              # default set: ~10 min of training runs)
    python tests/benchmarks/run.py --only imagefolder  # the decode cache vs torchvision (not
                                              # in the default set: ~10 min, 50,000 PNGs)

Every figure is a median over repeated runs (the range next to it), and every comparison is
measured side by side, interleaved, in the same process or the same invocation: the
machines are noisy, the ratio within one run is what counts. Progress goes to stderr, the
table to stdout (and to --out FILE).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Row, load_avg, machine_rows  # noqa: E402

SECTIONS = (
    "1",
    "2",
    "3",
    "prune",
    "repeats",
    "4",
    "fastpath",
    "imagefolder",
    "runs",
    "advice",
    "completion",
    "infer",
)
# on request only (`--only advice`, `--only imagefolder`): each takes longer than the rest
ON_REQUEST = ("advice", "imagefolder", "infer")
DEFAULT = tuple(s for s in SECTIONS if s not in ON_REQUEST)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fastpath_rows(quick: bool, repeats: int | None) -> list[Row]:
    """tests/benchmarks/fastpath.py (the data pipeline's own benchmark), if it is there."""
    try:
        import fastpath
    except ImportError:
        return [Row("fast path", "tests/benchmarks/fastpath.py", "skipped: not present")]
    offered = {"quick": quick, "repeats": repeats, "log": log}
    params = inspect.signature(fastpath.run).parameters
    kwargs = {k: v for k, v in offered.items() if k in params}
    rows = []
    for d in fastpath.run(**kwargs):
        if isinstance(d, Row):
            rows.append(d)
            continue
        d = dict(d)
        bench = str(d.pop("bench", d.pop("benchmark", "fast path vs per-sample DataLoader")))
        what = str(d.pop("what", d.pop("name", d.pop("measured", ""))))
        target = str(d.pop("target", ""))
        met = d.pop("met", None)
        runs = d.pop("runs", d.pop("repeats", ""))
        value = d.pop("value", d.pop("result", None))
        if value is None:  # whatever else it reported, as key=value
            value = ", ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items()
            )
        rows.append(Row(bench, what, str(value), target, met, runs))
    return rows


def table(rows: list[Row]) -> str:
    def cell(s: object) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| benchmark | measured | result (median, range) | target | met | runs |",
        "| --- | --- | --- | --- | --- | ---: |",
    ]
    last = None
    for r in rows:
        bench = r.bench if r.bench != last else ""
        last = r.bench
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {cell(bench)} | {cell(r.what)} | {cell(r.value)} | {cell(r.target)} | {met} | "
            f"{r.runs} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller data, one repeat: to try it")
    ap.add_argument(
        "--only", default=",".join(DEFAULT), help="comma-separated: " + ",".join(SECTIONS)
    )
    ap.add_argument("--repeats", type=int, default=None, help="override every benchmark's repeats")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads here and in child processes (default: torch's own)",
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = ap.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        ap.error(f"--only: unknown {sorted(unknown)}; choose from {','.join(SECTIONS)}")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        import torch

        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    rows = machine_rows()
    failed = False
    import accuracy
    import advice
    import completion
    import imagefolder
    import inference
    import overhead
    import runs_table
    import startup
    import sweeps

    plan = [
        ("1", lambda: overhead.run(args.quick, args.repeats, log)),
        ("2", lambda: startup.run(args.quick, args.repeats, log)),
        ("3", lambda: sweeps.run(args.quick, args.repeats, log=log)),
        ("prune", lambda: sweeps.run_pruning(args.quick, log=log)),
        ("repeats", lambda: sweeps.run_repeats(args.quick, log=log)),
        ("4", lambda: accuracy.run(args.quick, log)),
        ("fastpath", lambda: fastpath_rows(args.quick, args.repeats)),
        ("imagefolder", lambda: imagefolder.run(args.quick, args.repeats, log)),
        ("runs", lambda: runs_table.run(args.quick, args.repeats, log)),
        ("advice", lambda: advice.run(args.quick, log)),
        ("completion", lambda: completion.run(args.quick, args.repeats, log)),
        ("infer", lambda: inference.run(args.quick, args.repeats, log)),
    ]
    for key, bench in plan:
        if key not in only:
            continue
        t0 = time.perf_counter()
        log(f"benchmark {key} ...")
        try:
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for the table alone
                rows += bench()
        except Exception as exc:  # one broken benchmark must not hide the others
            failed = True
            traceback.print_exc()
            rows.append(
                Row(f"{key}", "FAILED", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            )
        log(f"benchmark {key}: {time.perf_counter() - t0:.0f} s")
    total = time.perf_counter() - start
    timed = not args.quick and not only & set(ON_REQUEST)  # the 10-minute budget: default set
    rows.append(
        Row(
            "make bench",
            "total wall time",
            f"{total:.0f} s (load avg at end {load_avg()})",
            "< 600 s" if timed else "",
            total < 600 if timed else None,
        )
    )
    text = table(rows)
    print(text, flush=True)
    if args.out:
        args.out.write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
