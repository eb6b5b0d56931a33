"""(4) Time to accuracy: model=cnn on digits until test accuracy >= 0.98, over seeds 0-4 (the
seed also picks the train/val/test split), in this process after a warm-up run, so the
figure is the run (`wall_time_s`: data, training, validation, checkpoints, test), not
Python's and torch's imports.

The defaults (LeNet-style cnn with 16/32 filters and batch norm, Adam lr 1e-3, batch 64, up
to 30 epochs with early stopping) are measured as they are; LECTURE is the lecture's LeNet-5
(6/16 filters, no batch norm), the default before; TUNED the settings this benchmark found
to get there on every seed, faster.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchlib import Row, dlx_fit, median, spread

SEEDS = (0, 1, 2, 3, 4)
TARGET_ACC, TARGET_S = 0.98, 5.0
DEFAULTS: list[str] = []
LECTURE = ["model.channels=[6,16]", "model.batchnorm=false"]
# Found by trying lr, batch size, batch norm and width over seeds 0-2 (seed 1's split is the
# hard one: the lecture's LeNet ends there at 0.93 after 30 epochs).
TUNED = ["model.channels=[32,64]", "opt.lr=0.003", "batch_size=64", "epochs=15"]


def measure(overrides: list[str], tmp: Path, tag: str, log=print) -> dict[str, list]:
    out: dict[str, list] = {"wall": [], "epochs": [], "acc": []}
    for seed in SEEDS:
        m = dlx_fit(
            ["model=cnn", "data=digits", *overrides, f"seed={seed}"],
            tmp / f"{tag}{seed}",
            config_dir=None,
        )
        out["wall"].append(m["wall_time_s"])
        out["epochs"].append(m["epochs_run"])
        out["acc"].append(m["test"]["acc"])
        log(
            f"  (4) {tag} seed {seed}: {m['wall_time_s']:.2f} s, {m['epochs_run']} epochs, "
            f"test acc {m['test']['acc']:.4f}"
        )
    return out


def run(quick: bool = False, log=print) -> list[Row]:
    bench = "4 time to accuracy: digits, model=cnn, test acc >= 0.98"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dlx_fit(["model=cnn", "data=digits", "epochs=1"], Path(tmp) / "warmup", config_dir=None)
        for name, overrides in (("defaults", DEFAULTS), ("lecture", LECTURE), ("tuned", TUNED)):
            if quick and name != "defaults":
                continue
            r = measure(overrides, Path(tmp), name, log)
            ok = min(r["acc"]) >= TARGET_ACC and median(r["wall"]) < TARGET_S
            label = " ".join(overrides) if overrides else "(the defaults)"
            epochs = "-".join(str(e) for e in sorted({min(r["epochs"]), max(r["epochs"])}))
            rows.append(
                Row(
                    bench,
                    f"{name}: `{label}`",
                    f"{spread(r['wall'])}, {epochs} epochs, test acc by seed "
                    + " ".join(f"{a:.3f}" for a in r["acc"]),
                    f">= {TARGET_ACC} in < {TARGET_S:g} s",
                    ok,
                    len(SEEDS),
                )
            )
    return rows
