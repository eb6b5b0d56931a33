"""Shell completion: what one <TAB> costs. bash runs `dlx` afresh for every TAB (Typer's
protocol, _DLX_COMPLETE=complete_bash, with dlx's script's _DLX_LINE: the line up to the
cursor), so the whole process counts:
`dlx train model=<TAB>` against `dlx --help` (the same start-up, no config read) and against
the interpreter alone. Fresh processes, interleaved."""

from __future__ import annotations

import os
import sys
import tempfile

from benchlib import Row, check, dlx_cmd, median, rotated, run_proc, spread


def run(quick: bool = False, repeats: int | None = None, log=print) -> list[Row]:
    reps = repeats or (3 if quick else 10)
    env = {**os.environ, "_DLX_COMPLETE": "complete_bash", "_DLX_LINE": "dlx train model="}
    t: dict[str, list[float]] = {"python": [], "help": [], "complete": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(reps):
            for v in rotated(list(t), r):
                if v == "python":
                    p = check(run_proc([sys.executable, "-c", "pass"], cwd=tmp), "python")
                elif v == "help":
                    p = check(run_proc(dlx_cmd("--help"), cwd=tmp), "dlx --help")
                else:
                    p = check(run_proc(dlx_cmd(), cwd=tmp, env=env), "completion")
                    assert "mlp" in p.output.split(), p.output  # bash's part: after the `=`
                t[v].append(p.seconds)
        log(f"  completion: {median(t['complete']):.3f} s per TAB")
    bench = "completion (fresh process per TAB)"
    done = median(t["complete"])
    return [
        Row(bench, "`python -c pass`", spread(t["python"], digits=3), runs=reps),
        Row(bench, "`dlx --help`", spread(t["help"], digits=3), runs=reps),
        Row(
            bench,
            "`dlx train model=<TAB>` (bash), end to end",
            spread(t["complete"], digits=3),
            "< 0.3 s",
            done < 0.3,
            reps,
        ),
    ]
