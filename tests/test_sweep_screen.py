"""A sweep in a real terminal (the pty helpers of test_terminal.py): one line per trial with
the best so far, no trial's model table or summary box, no Hydra internals; Ctrl-C names
`dlx sweep --resume SWEEP_DIR`."""

from __future__ import annotations

import re
import time

from conftest import FAST, read_metrics
from test_terminal import COLS, assert_nothing_half_drawn, dlx


def test_a_four_trial_grid_prints_one_line_a_trial_then_the_table(tmp_path):
    sweep = tmp_path / "sweep"
    term = dlx(
        "sweep", "epochs=1", "opt=adam,sgd", "opt.lr=0.01,0.001",
        f"hydra.sweep.dir={sweep}", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert term.wait() == 0, term.text()
    lines = term.lines()
    table = next(i for i, line in enumerate(lines) if line.startswith("sweep: 4 trials"))
    before = [line for line in lines[:table] if line.strip()]
    assert len(before) <= 15, "\n".join(before)
    trial_lines = [line for line in before if re.match(r"trial [0-3] ", line)]
    assert len(trial_lines) == 4, "\n".join(before)
    assert "opt=adam opt.lr=0.01  completed  val/loss " in trial_lines[0]
    assert all("| best so far " in line for line in trial_lines)
    text = term.text()
    for noise in ("HYDRA", "#0 :", "dlx run summary", "model LeNet", "env_set", "try:"):
        assert noise not in text, f"{noise!r} on screen:\n{text}"
    assert all(len(line) <= COLS for line in lines)
    assert_nothing_half_drawn(term)
    log = (sweep / "0" / "train.log").read_text()
    assert "status: completed" in log and "epoch 1/1" in log, "the trial's own output is kept"


def test_ctrl_c_in_a_sweep_names_the_sweep_resume(tmp_path):
    sweep = tmp_path / "sweep"
    term = dlx(
        "sweep", "epochs=30", "early_stopping.enabled=false", "opt.lr=0.01,0.001,0.0001",
        f"hydra.sweep.dir={sweep}", *FAST, cwd=tmp_path,
    )  # fmt: skip
    term.read_until(r"^trial 0 ")
    deadline = time.monotonic() + 120
    while not (sweep / "1" / "checkpoints" / "last.pt").is_file():  # trial 1 is training
        assert time.monotonic() < deadline, term.text()
        time.sleep(0.2)
    term.child.sendintr()
    assert term.wait() == 130, term.text()
    text = term.text().replace("\n", "")
    assert f"dlx sweep --resume {sweep}" in text and "dlx train --resume" not in text
    assert read_metrics(sweep / "1")["status"] == "interrupted"


def test_a_repeated_sweep_fits_80_columns_one_line_a_trial_and_whole_overrides(tmp_path):
    """At 80 columns a trial's line takes its compact form rather than wrap, and the table
    breaks the configuration between overrides, never inside one (`opt.lr=0` / `.003`)."""
    from test_terminal import assert_fits

    term = dlx(
        "sweep", "epochs=1", "opt.lr=0.003,0.001", "--repeat", "2", "early_stopping.patience=3",
        "early_stopping.min_delta=0.0001", "hydra.sweep.dir=sweep", *FAST, cwd=tmp_path, cols=80,
    )  # fmt: skip
    assert term.wait() == 0, term.text()
    assert_fits(term)
    lines = term.lines()
    trials = [line for line in lines if re.match(r"#[0-3] opt\.lr=0\.00[13] seed=[01] ", line)]
    assert len(trials) == 4 and all("| best " in line for line in trials), term.text()
    cells = [c.strip() for line in lines if line.startswith("│") for c in line.split("│")]
    assert "opt.lr=0.003" in cells and "opt.lr=0.001" in cells, term.text()
    folded = term.text().split("reproduce it:")[1].split("summary:")[0]  # pastes as one command
    assert folded.count("\\\n") >= 1, folded  # it was folded: one line would not fit
    words = folded.replace("\\\n", " ").split()
    assert words[:2] == ["dlx", "train"] and "seed=0" not in words, folded
    assert {"opt.lr=0.003", "epochs=1", "early_stopping.min_delta=0.0001"} <= set(words)
