"""Using a trained run: `dlx predict` against a plain torchvision script, and `dlx export`'s
parity (issue 25).

(a) `dlx predict RUN new/ --out p.csv` on N new 32x32 PNGs (1,000; --quick 200) against
    `plain_predict.py` (the checkpoint, torchvision transforms, a DataLoader with 2 workers),
    whole processes, interleaved; target: dlx no slower (plain / dlx >= 1.0). Both must
    classify every file.
(b) `dlx export --format torchscript|onnx` on runs of model=cnn, mlp and resnet (resnet18,
    random init: nothing is downloaded), one epoch on digits: the parity the export checked
    (largest |exported - PyTorch| on a batch of the test split), against 1e-5 / 1e-4.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

from benchlib import HERE, Row, bench_env, check, dlx_cmd, median, rotated, run_proc, spread
from imagefolder import make_folder

TIMEOUT = 1800
MODELS = (("cnn", []), ("mlp", []), ("resnet", ["model.arch=resnet18"]))


def _train(root: Path, *overrides: str) -> Path:
    run_dir = root / "run"
    cmd = dlx_cmd("train", *overrides, "epochs=1", "log.graph=false", f"hydra.run.dir={run_dir}")
    check(run_proc(cmd, env=bench_env(), timeout=TIMEOUT), f"dlx train {' '.join(overrides)}")
    return run_dir


def predict_rows(tmp: Path, quick: bool, repeats: int | None, log) -> list[Row]:
    n = 200 if quick else 1000
    reps = repeats or (1 if quick else 3)
    log(f"  predict: training a LeNet on a small folder, then {n} new PNGs")
    train = make_folder(tmp / "train", 300, 32, 4, seed=0)
    run = _train(tmp, "data=imagefolder", f"data.root={train}", "data.image_size=32", "model=cnn")
    new = make_folder(tmp / "new", n, 32, 4, seed=1)
    out = tmp / "p.csv"
    cmds = {
        "dlx": dlx_cmd("predict", str(run), str(new), "--out", str(out)),
        "plain": [sys.executable, str(HERE / "plain_predict.py"), str(run), str(new)],
    }
    times: dict[str, list[float]] = {k: [] for k in cmds}
    plain_out = ""
    for r in range(reps):
        for name in rotated(list(cmds), r):
            proc = check(run_proc(cmds[name], env=bench_env(), timeout=TIMEOUT), name)
            times[name].append(proc.seconds)
            if name == "plain":
                plain_out = proc.output
            log(f"  predict {name} repeat {r + 1}: {proc.seconds:.2f} s")
    got = list(csv.DictReader(out.open()))
    plain = json.loads(plain_out.strip().splitlines()[-1])
    ratios = [p / d for p, d in zip(times["plain"], times["dlx"], strict=True)]
    ratio = median(ratios)
    return [
        Row(
            "predict (issue 25)",
            f"dlx predict, {n} PNGs 32x32, whole process",
            spread(times["dlx"]),
            "",
            None,
            reps,
        ),
        Row(
            "predict (issue 25)",
            "plain torchvision script (DataLoader, 2 workers)",
            spread(times["plain"]),
            "",
            None,
            reps,
        ),
        Row(
            "predict (issue 25)",
            "plain / dlx (paired)",
            f"{ratio:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})",
            ">= 1.0",
            ratio >= 1.0,
            reps,
        ),
        Row(
            "predict (issue 25)",
            "files classified (dlx / plain)",
            f"{len(got)} / {plain['images']}",
            f"{n} each",
            len(got) == plain["images"] == n,
            1,
        ),
    ]


def parity_rows(tmp: Path, quick: bool, log) -> list[Row]:
    rows = []
    for name, extra in MODELS:
        folder = tmp / f"parity_{name}"
        folder.mkdir()
        log(f"  export parity: model={name}")
        run = _train(folder, f"model={name}", *extra, "data.limit=200")
        for fmt, tol in (("torchscript", 1e-5), ("onnx", 1e-4)):
            proc = run_proc(
                dlx_cmd("export", str(run), "--format", fmt), env=bench_env(), timeout=TIMEOUT
            )
            meta_path = run / "export" / ("best.json" if fmt == "onnx" else "best.torchscript.json")
            if proc.returncode != 0 or not meta_path.is_file():
                last = proc.output.strip().splitlines()[-1:] or [""]
                rows.append(
                    Row(
                        "export parity (issue 25)",
                        f"{name} -> {fmt}",
                        f"exit {proc.returncode}: {last[0][:120]}",
                        f"<= {tol:g}",
                        False,
                        1,
                    )
                )
                continue
            diff = json.loads(meta_path.read_text())["parity"]["max_abs_diff"]
            rows.append(
                Row(
                    "export parity (issue 25)",
                    f"{name} -> {fmt} (max |diff|)",
                    f"{diff:.2e} ({proc.seconds:.1f} s)",
                    f"<= {tol:g}",
                    diff <= tol,
                    1,
                )
            )
    return rows


def run(quick: bool, repeats: int | None, log) -> list[Row]:
    tmp = Path(tempfile.mkdtemp(prefix="dlx-bench-infer-"))
    try:
        return predict_rows(tmp, quick, repeats, log) + parity_rows(tmp, quick, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
