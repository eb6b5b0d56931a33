"""dlx in a real terminal: a pseudo-terminal with TERM=xterm-256color and a set size, read
back through a terminal emulator (pyte) as a person would read the screen.

The rest of the suite reads dlx through pipes, where rich draws no live bar: these tests
are the ones that see the progress bar, the summary box and what Ctrl-C leaves behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DLX, FAST, read_metrics

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

REPO = Path(__file__).resolve().parents[1]
COLS, ROWS = 100, 40
# the live bar: "epoch 2/3 ━━━━━━╺━━━━━  7/20 loss 2.1733  acc 0.465 0:00:00"
BAR = re.compile(r"epoch (\d+)/(\d+) .*?\b(\d+)/(\d+) loss")
# a bar cut short: its label and some of its track, without the count
HALF_BAR = re.compile(r"epoch \d+/\d+ [━╸╺]+")


class Terminal:
    """One command on a pseudo-terminal of COLS x ROWS; every chunk it writes goes through
    a VT100 emulator, and a copy of the screen is kept after each chunk (the frames a person
    would have seen, at least as often as they changed)."""

    def __init__(self, argv, cwd, cols=COLS, rows=ROWS, env=None, timeout=300):
        self.screen = pyte.HistoryScreen(cols, rows, history=10_000)
        self.stream = pyte.ByteStream(self.screen)
        self.cols = cols
        self.frames: list[list[str]] = []
        self.raw = bytearray()  # every byte written, for the lines as sent (before any wrap)
        e = {**os.environ, "TERM": "xterm-256color", "PYTHONUNBUFFERED": "1"}
        for var in ("COLUMNS", "LINES", "NO_COLOR", "CI"):
            e.pop(var, None)  # the terminal's own size, not a pipe's settings
        e.update(env or {})  # ...unless the test sets them
        self.child = pexpect.spawn(
            argv[0], list(argv[1:]), cwd=str(cwd), env=e, dimensions=(rows, cols), timeout=timeout
        )

    def _feed(self, data: bytes) -> None:
        self.raw += data
        # one read can hold several redraws of the bar (each starts at a carriage return):
        # the screen after each of them is a frame a person saw
        for piece in re.split(rb"(?=\r)", data):
            if piece:
                self.stream.feed(piece)
                self.frames.append(list(self.screen.display))

    def read_until(self, pattern: str, timeout: float = 300) -> None:
        """Read output until the screen shows `pattern` (a regex) on some line."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not any(rx.search(line) for line in self.screen.display):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on screen:\n" + "\n".join(self.lines()))
            try:
                self._feed(self.child.read_nonblocking(65536, timeout=1))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                raise AssertionError(
                    f"exited before {pattern!r} was on screen:\n" + "\n".join(self.lines())
                ) from None

    def wait(self, timeout: float = 300) -> int:
        """Read to the end; the exit code (128 + n when killed by signal n)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._feed(self.child.read_nonblocking(65536, timeout=1))
            except pexpect.TIMEOUT:
                if time.monotonic() > deadline:
                    self.child.kill(signal.SIGKILL)
                    raise AssertionError("still running:\n" + "\n".join(self.lines())) from None
            except pexpect.EOF:
                break
        self.child.close()
        if self.child.signalstatus is not None:
            return 128 + self.child.signalstatus
        return self.child.exitstatus

    def lines(self) -> list[str]:
        """Everything on screen and scrolled off it, top to bottom, trailing blanks cut."""
        cols = self.screen.columns
        top = ["".join(line[x].data for x in range(cols)) for line in self.screen.history.top]
        rows = [*top, *self.screen.display]
        while rows and not rows[-1].strip():
            rows.pop()
        return [r.rstrip() for r in rows]

    def text(self) -> str:
        return "\n".join(self.lines())


def dlx(*args: str, cwd, **kw) -> Terminal:
    return Terminal([sys.executable, "-m", "dlx", *args], cwd, **kw)


ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>78])")


def assert_fits(term: Terminal) -> None:
    """Every line dlx wrote fits the terminal's width, so none was wrapped by it: no word
    broken over two rows. A line is what lies between newlines, after the last carriage
    return (a redrawn bar), colour codes removed."""
    text = ANSI.sub("", term.raw.decode("utf-8", "replace"))
    for line in text.split("\n"):
        shown = line.rstrip("\r").split("\r")[-1].rstrip()
        assert len(shown) <= term.cols, f"{len(shown)} > {term.cols} columns: {shown!r}"
    rows = term.lines()
    for row, below in zip(rows, rows[1:], strict=False):
        if len(row) == term.cols and below[:1].isalnum() and row[-1].isalnum():
            raise AssertionError(f"a word broken at the edge:\n{row}\n{below}")


def assert_bar_moved_within_an_epoch(term: Terminal, steps: int = 20) -> None:
    """Some frame showed the live bar between its ends: k/steps with 0 < k < steps."""
    seen = set()
    for frame in term.frames:
        for line in frame:
            m = BAR.search(line)
            if m and int(m.group(4)) == steps:
                seen.add(int(m.group(3)))
    assert seen, "the live progress bar never showed:\n" + term.text()
    assert seen & set(range(1, steps)), f"the bar only ever read {sorted(seen)} of {steps}"


def assert_nothing_half_drawn(term: Terminal) -> None:
    """After the end: the cursor is back, and no bar is left on screen (it is transient)."""
    assert not term.screen.cursor.hidden, "the cursor was left hidden"
    for line in term.lines():
        assert not BAR.search(line), f"a progress bar was left on screen: {line!r}"
        assert not HALF_BAR.search(line), f"half a progress bar on screen: {line!r}"


def summary_box(term: Terminal) -> list[str]:
    """The summary's table, as on screen: its rows from the top border to the bottom one.
    A table wider than the terminal would wrap there: its right border lands on the next
    row, and this finds no closed box."""
    lines = term.lines()
    title = max(i for i, line in enumerate(lines) if "dlx run summary" in line)
    box = []
    for line in lines[title + 1 :]:
        box.append(line)
        if line.startswith("└"):
            break
    assert box and box[0].startswith("┌") and box[-1].startswith("└"), "\n".join(lines)
    for line in box:
        assert len(line) <= term.cols
        assert line[-1] in "┐│┤┘", f"summary row not closed on its own line: {line!r}"
    return box


def box_value(box: list[str], key: str) -> str:
    """The text in the right-hand cell of the row(s) whose left cell is `key`."""
    out, on = [], False
    for line in box:
        cells = [c.strip() for c in line.strip("│").split("│")]
        if len(cells) != 2:
            on = False
            continue
        if cells[0] == key:
            on = True
        elif cells[0]:
            on = False
        if on:
            out.append(cells[1])
    return "".join(out)


def test_train_in_a_terminal_shows_a_moving_bar_and_a_summary_that_fits(tmp_path):
    run = tmp_path / "run"
    term = dlx("train", "epochs=3", f"hydra.run.dir={run}", *FAST, cwd=tmp_path)
    assert term.wait() == 0, term.text()
    assert_bar_moved_within_an_epoch(term)
    box = summary_box(term)
    assert box_value(box, "status") == "completed"
    assert box_value(box, "run folder") == str(run)  # whole, even if folded over rows
    assert_nothing_half_drawn(term)
    for n in (1, 2, 3):
        assert re.search(rf"^epoch\s+{n}/3\s+train loss", term.text(), re.M)
    assert_fits(term)
    assert read_metrics(run)["status"] == "completed"


def test_the_summary_fits_a_narrow_terminal(tmp_path):
    run = tmp_path / "a-rather-long-folder-name-for-the-run-that-a-narrow-terminal-must-fold"
    term = dlx("train", "epochs=1", f"hydra.run.dir={run}", *FAST, cwd=tmp_path, cols=60)
    assert term.wait() == 0, term.text()
    box = summary_box(term)
    assert box_value(box, "run folder") == str(run)
    assert_nothing_half_drawn(term)


def test_epoch_lines_fit_80_columns_and_a_compact_form_narrower(tmp_path):
    run = tmp_path / "run"
    args = ["epochs=12", "early_stopping.enabled=false", "data.limit=200", f"hydra.run.dir={run}"]
    term = dlx("train", *args, *FAST, cwd=tmp_path, cols=80)
    assert term.wait() == 0, term.text()
    epochs = [line for line in term.lines() if re.match(r"epoch\s+\d+/12 ", line)]
    assert len(epochs) == 12 and all("train loss" in e and "val loss" in e for e in epochs)
    assert_fits(term)
    assert "train loss" in (run / "train.log").read_text()  # the log keeps the whole line
    narrow_dir = f"hydra.run.dir={tmp_path / 'n'}"
    narrow = dlx("train", *args[:-1], narrow_dir, *FAST, cwd=tmp_path, cols=50)
    assert narrow.wait() == 0, narrow.text()
    compact = [line for line in narrow.lines() if re.match(r"\s*\d+/12 ", line)]
    assert len(compact) == 12, narrow.text()
    assert_fits(narrow)
    folded = [line for line in narrow.lines() if line.rstrip().endswith("\\")]
    # a command folded to paste: the shell's one backslash, not markup's escaped two
    assert all(not line.rstrip().endswith("\\\\") for line in folded), folded


def test_a_stale_wider_columns_does_not_widen_the_output_past_the_terminal(tmp_path):
    """COLUMNS=160 exported from a wider window, in an 80-column terminal: rich, typer and
    Python would all draw 160 wide and the terminal would wrap every full line; dlx draws at
    the terminal's 80 (a narrower COLUMNS still narrows it)."""
    env = {"COLUMNS": "160"}
    term = dlx("train", "epochs=2", "hydra.run.dir=run", *FAST, cwd=tmp_path, cols=80, env=env)
    assert term.wait() == 0, term.text()
    assert_fits(term)
    helped = dlx("--help", cwd=tmp_path, cols=80, env=env)
    assert helped.wait() == 0 and "train" in helped.text()
    assert_fits(helped)
    narrow = dlx("train", "epochs=1", "hydra.run.dir=n", *FAST, cwd=tmp_path, env={"COLUMNS": "60"})
    assert narrow.wait() == 0, narrow.text()
    assert all(len(line) <= 60 for line in narrow.lines()), narrow.text()


def test_ctrl_c_mid_epoch_exits_130_and_resume_finishes_the_run(tmp_path):
    run = tmp_path / "run"
    args = ["epochs=8", "early_stopping.enabled=false", f"hydra.run.dir={run}", *FAST]
    term = dlx("train", *args, cwd=tmp_path)
    term.read_until(r"^epoch\s+1/8\s+train loss")  # one epoch saved, the next one running
    term.read_until(r"epoch [2-8]/8 .*\b([1-9]|1\d)/20 loss")  # its bar between its ends
    term.child.sendintr()  # the terminal's Ctrl-C: SIGINT to the whole foreground group
    assert term.wait() == 130, term.text()
    assert_nothing_half_drawn(term)
    text = term.text()
    joined = re.sub(r"\s+", " ", text)  # the command stands on a line of its own
    assert "interrupted" in text and "continue with: dlx train --resume" in joined
    assert str(run) in text.replace("\n", "").replace(" ", "") or str(run) in joined
    assert box_value(summary_box(term), "status") == "interrupted"
    saved = read_metrics(run)
    assert saved["status"] == "interrupted" and 1 <= saved["epochs_run"] < 8

    again = dlx("train", "--resume", str(run), cwd=tmp_path)
    assert again.wait() == 0, again.text()
    assert f"resuming from epoch {saved['epochs_run']}" in again.text()
    assert box_value(summary_box(again), "status") == "completed"
    assert_nothing_half_drawn(again)
    done = read_metrics(run)
    assert done["status"] == "completed" and done["epochs_run"] == 8


def test_grid_sweep_of_four_trials_in_a_terminal(tmp_path):
    sweep = tmp_path / "sweep"
    term = dlx(
        "sweep", "epochs=1", "opt=adam,sgd", "opt.lr=0.01,0.001",
        f"hydra.sweep.dir={sweep}", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert term.wait() == 0, term.text()
    text = term.text()
    assert "sweep: 4 trials ranked by val/loss" in text
    ranked = [line for line in term.lines() if re.match(r"│ [1-4] │", line)]
    assert len(ranked) == 4 and all("completed" in line for line in ranked), text
    assert all(len(line) <= COLS for line in term.lines())
    assert_nothing_half_drawn(term)
    for trial in range(4):
        assert read_metrics(sweep / str(trial))["status"] == "completed"


def test_lr_find_and_eval_in_a_terminal(tmp_path):
    term = dlx("lr-find", "lr_find.steps=30", *FAST, cwd=tmp_path)
    assert term.wait() == 0, term.text()
    assert re.search(r"opt\.lr=\S+", term.text()), term.text()
    assert_nothing_half_drawn(term)

    run = tmp_path / "run"
    assert dlx("train", "epochs=1", f"hydra.run.dir={run}", *FAST, cwd=tmp_path).wait() == 0
    ev = dlx("eval", str(run), cwd=tmp_path)
    assert ev.wait() == 0, ev.text()
    assert re.search(r"\bacc\b", ev.text()) and all(len(x) <= COLS for x in ev.lines())
    assert_nothing_half_drawn(ev)
    saved = json.loads((run / "eval.json").read_text())
    assert saved["split"] == "test"
    assert json.loads((run / "eval_best_test.json").read_text()) == saved
    # a second eval, of another split: the first one's file is kept
    assert dlx("eval", str(run), "--split", "val", cwd=tmp_path).wait() == 0
    assert json.loads((run / "eval_best_test.json").read_text()) == saved
    assert json.loads((run / "eval_best_val.json").read_text())["split"] == "val"
    assert json.loads((run / "eval.json").read_text())["split"] == "val"  # the latest
    (found,) = tmp_path.glob("outputs/lr_find/*/*/lr_find.json")  # where the README says
    assert json.loads(found.read_text())["suggested"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_train_in_a_terminal(tmp_path):
    """`make train` as the README's first command, with this test's own venv as VENV. `-o`
    tells make the venv's dlx is up to date: it must not rebuild or reinstall a venv here."""
    bindlx = Path(sys.prefix) / "bin" / "dlx"
    if not bindlx.exists():
        pytest.skip(f"no {bindlx}: dlx is not installed in this venv")
    run = tmp_path / "run"
    args = f"ARGS=epochs=2 hydra.run.dir={run} log.graph=false"
    term = Terminal(
        ["make", "-C", str(REPO), "train", f"VENV={sys.prefix}", "-o", str(bindlx), args],
        tmp_path,
    )
    assert term.wait() == 0, term.text()
    assert "pip install" not in term.text() and "-m venv" not in term.text()
    assert_bar_moved_within_an_epoch(term)
    assert box_value(summary_box(term), "status") == "completed"
    assert_nothing_half_drawn(term)
    assert read_metrics(run)["status"] == "completed"


# --- through a pipe: plain lines, no colour codes, tables as wide as their content ---------


def test_piped_output_has_no_colour_codes_and_tables_sized_to_content(tmp_path):
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    proc = subprocess.run(
        [*DLX, "train", "epochs=1", f"hydra.run.dir={run}", *FAST],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    box = [line for line in proc.stdout.splitlines() if line.startswith(("┌", "│", "└"))]
    assert box, proc.stdout
    width = len(box[0])
    assert all(len(line) == width for line in box)
    assert width <= 130, f"the summary is {width} columns wide: padded, not sized to content"
    assert str(run) in proc.stdout


def test_colour_codes_of_loggers_are_off_when_stderr_is_not_a_terminal():
    """colorlog (Optuna's log lines) colours whatever its stream; dlx turns that off."""
    code = (
        "import logging, sys, colorlog\n"
        "from dlx.cli.boundary import no_colour_in_logs\n"
        "no_colour_in_logs()\n"
        "f = colorlog.ColoredFormatter('%(log_color)s[%(levelname)s]%(reset)s %(message)s')\n"
        "r = logging.LogRecord('optuna', logging.INFO, 'x', 1, 'Trial 0 finished', (), None)\n"
        "print(repr(f.format(r)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.strip() == repr("[INFO] Trial 0 finished")


def test_a_reader_that_goes_away_ends_quietly_and_the_run_is_interrupted(tmp_path):
    """`dlx train | head -2`: the reader takes two lines and leaves."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [*DLX, "train", "epochs=50", "early_stopping.enabled=false", f"hydra.run.dir={run}", *FAST],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    head = [proc.stdout.readline() for _ in range(2)]
    proc.stdout.close()  # what head does after its two lines
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 130
    assert head[0].startswith("model ")
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    saved = read_metrics(run)
    assert saved["status"] == "interrupted" and saved["epochs_run"] < 50
    assert (run / "train.log").read_text().count("reader of the output went away") == 1


def test_a_space_for_an_equals_sign_and_a_wrong_case_option_get_the_fix(tmp_path):
    term = dlx("train", "opt.lr", "0.01", cwd=tmp_path, cols=80)
    assert term.wait() == 2, term.text()
    said = " ".join(term.lines())
    assert "Did you mean `opt.lr=0.01`?" in said and "EQUAL" not in said, term.text()
    assert_fits(term)
    case = dlx("train", "model=CNN", cwd=tmp_path, cols=80)
    assert case.wait() == 2, case.text()
    said = " ".join(case.lines())
    assert "Did you mean `cnn`?" in said and "alexnet" in said, case.text()
    assert_fits(case)
    assert "Traceback" not in term.text() + case.text()


# --- tables at the width a person has: 80, 100 and 200 columns --------------------------------


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """A sweep of four trials, with a long swept value, and a single run, laid out as dlx
    lays them out (outputs/multirun/DATE/TIME/N, outputs/DATE/TIME_NAME)."""
    root = tmp_path_factory.mktemp("tables")
    out = root / "outputs"
    tiny = ["model=mlp", "epochs=2", "data.limit=200", *FAST]
    sweep = out / "multirun" / "2026-12-03" / "18-07-17"
    subprocess.run(
        [*DLX, "sweep", "opt=adam,sgd", "opt.lr=0.01,0.001", "reg=dropout",
         "reg.dropout=0.43564649850770354", *tiny, f"hydra.sweep.dir={sweep}"],
        cwd=root, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    one = out / "2026-12-03" / "18-10-00_overfitting"
    subprocess.run(
        [*DLX, "train", "experiment=overfitting", *tiny, f"hydra.run.dir={one}"],
        cwd=root, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return root, sweep


@pytest.mark.parametrize("cols", [80, 100, 200])
def test_runs_and_compare_tables_fit_the_terminal(outputs, cols):
    root, sweep = outputs
    table = dlx("runs", cwd=root, cols=cols)
    assert table.wait() == 0, table.text()
    assert_fits(table)
    assert table.text().count("completed") == 5, table.text()
    if cols == 80:  # the run names shortened from the left; a column left out, and said so
        assert "…/18-07-17/0" in table.text() or "…/0" in table.text(), table.text()
        assert "--wide" in table.text()
    if cols == 200:
        assert "multirun/2026-12-03/18-07-17/0" in table.text() and "config" in table.text()

    trials = dlx("runs", "--sweep", str(sweep), cwd=root, cols=cols)
    assert trials.wait() == 0, trials.text()
    assert_fits(trials)
    head = next(line for line in trials.lines() if " opt.lr " in line)
    assert " opt " in head, trials.text()  # each swept key once, as a column
    assert "opt.lr=" not in trials.text() and "opt=adam" not in trials.text()
    rows = [line for line in trials.lines() if re.search(r"\b(adam|sgd)\b", line)]
    assert len(rows) == 4 and all(re.search(r"\b0\.0?01\b", r) for r in rows), trials.text()

    both = dlx("compare", *(str(sweep / str(i)) for i in range(4)), cwd=root, cols=cols)
    assert both.wait() == 0, both.text()
    assert_fits(both)
    for i in range(4):
        assert re.search(rf"(…/|/){i}\b", both.text()), both.text()
    assert "0.4356" not in both.text() or "0.43564649850770354" not in both.text()


def test_runs_wide_and_columns_on_request(outputs):
    root, _ = outputs
    wide = dlx("runs", "--wide", cwd=root, cols=80)
    assert wide.wait() == 0 and "config" in wide.text() and "--wide" not in wide.text()
    picked = dlx("runs", "--columns", "run,opt.lr,test,status", cwd=root, cols=80)
    assert picked.wait() == 0, picked.text()
    assert_fits(picked)
    head = next(line for line in picked.lines() if "opt.lr" in line)
    assert re.search(r"run .*opt\.lr .*test .*status", head), picked.text()


def test_a_preset_under_overrides_is_named_for_the_change(tmp_path):
    args = ["experiment=overfitting", "data.limit=200", "epochs=1", "model.width=32", *FAST]
    term = dlx("train", *args, cwd=tmp_path, cols=80)
    assert term.wait() == 0, term.text()
    (run,) = (tmp_path / "outputs").glob("*/*")
    assert run.name.endswith("_overfitting+limit=200+epochs=1+width=32"), run.name
    assert read_metrics(run)["status"] == "completed"
    assert_fits(term)
    same = dlx("train", "experiment=overfitting", "epochs=1", *FAST, "name=mine", cwd=tmp_path)
    assert same.wait() == 0, same.text()
    assert any(p.name.endswith("_mine") for p in (tmp_path / "outputs").glob("*/*"))


def test_the_profiler_on_a_cpu_machine_prints_no_library_noise(tmp_path):
    run = tmp_path / "run"
    args = ["debug=profiler", "epochs=1", "data.limit=200", f"hydra.run.dir={run}", *FAST]
    term = dlx("train", *args, cwd=tmp_path, cols=80, env={"CUDA_VISIBLE_DEVICES": ""})
    assert term.wait() == 0, term.text()
    text = term.text()
    assert "profiler: top ops" in text and list((run / "profiler").glob("*.pt.trace.json"))
    for noise in ("gpuGetDeviceCount", "USDT:", "STAGE:", "Glyph"):
        assert noise not in text, f"{noise!r} reached the screen:\n{text}"


def test_the_compare_figure_is_readable(outputs, monkeypatch):
    """Legend below the panels, values to 4 significant digits, whole epochs on the axis."""
    import matplotlib.pyplot as plt

    from dlx.runs.compare import compare

    root, sweep = outputs
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    out = root / "compare.png"
    one = root / "outputs" / "2026-12-03" / "18-10-00_overfitting"
    compare([str(sweep / "0"), str(sweep / "3"), str(one)], str(out))
    assert out.is_file() and kept
    fig = kept[-1]
    fig.canvas.draw()
    (legend,) = fig.legends
    assert all(ax.get_legend() is None for ax in fig.axes)  # no legend over a curve
    box = legend.get_window_extent()
    for ax in fig.axes:  # below every panel, its tick labels and axis label included
        assert box.y1 <= ax.get_tightbbox().y0 + 1
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    labels = [t.get_text() for t in legend.get_texts()]
    assert any("reg.dropout=0.4356" in label for label in labels), labels
    assert not any("0.43564649" in label for label in labels)
    assert all(label.startswith("…/") for label in labels), labels
