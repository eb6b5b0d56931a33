"""`dlx board`: TensorBoard over finished runs, on 127.0.0.1 only, stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import DLX, FAST, run_dlx

CHROMIUM = Path("/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    import dlx

    root = tmp_path_factory.mktemp("board") / "outputs"
    dlx.train(["epochs=2", "data.limit=300", *FAST, f"hydra.run.dir={root / 'run1'}"])
    return root


@pytest.fixture
def board(logdir, tmp_path):
    """`dlx board LOGDIR --port N` in the background; yields (process, base url, stdout file)."""
    port = free_port()
    out = tmp_path / "board.out"
    with open(out, "w") as f:
        proc = subprocess.Popen(
            [*DLX, "board", str(logdir), "--port", str(port)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, out.read_text()
            try:
                get_json(base + "/data/runs")
                break
            except OSError:
                assert time.time() < deadline, "TensorBoard did not answer in 120 s"
                time.sleep(0.5)
        yield proc, base, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(fetch, ok, timeout=60):
    deadline = time.time() + timeout
    while True:
        value = fetch()
        if ok(value) or time.time() > deadline:
            return value
        time.sleep(0.5)


def test_board_serves_a_finished_runs_scalars_on_localhost_and_stops_on_ctrl_c(board):
    proc, base, out = board
    tags = wait_for(lambda: get_json(base + "/data/plugin/scalars/tags"), lambda t: "run1" in t)
    assert {"loss/train", "loss/val", "acc/train", "acc/val", "lr"} <= set(tags["run1"])
    assert base + "/" in out.read_text(), "prints the URL"
    port = int(base.rsplit(":", 1)[1])
    with socket.socket() as s:  # bound to 127.0.0.1 alone: another address of this host is refused
        s.settimeout(5)
        assert s.connect_ex(("127.0.0.2", port)) != 0
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert "Traceback" not in out.read_text()


def test_board_on_a_missing_folder_or_a_busy_port_exits_2(tmp_path, logdir):
    proc = run_dlx(["board", str(tmp_path / "nothing")], cwd=tmp_path, check=2)
    assert "dlx train" in proc.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        proc = run_dlx(["board", str(logdir), "--port", str(busy)], cwd=tmp_path, check=2)
    assert "already in use" in proc.stderr and "--port" in proc.stderr


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (`make e2e` installs it)")
def test_board_page_renders_in_a_headless_browser_screenshot(board, tmp_path):
    from PIL import Image

    proc, base, _ = board
    shot = tmp_path / "board.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--window-size=1280,900",
            "--virtual-time-budget=15000",
            f"--screenshot={shot}",
            base + "/#timeseries",
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 900)
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "a rendered page, not a blank one"
    orange = sum(n for n, (r, g, b) in colors if r > 230 and 100 < g < 130 and b < 40)
    assert orange > 1280 * 20, "TensorBoard's orange header bar is on the page"
