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


class Browser:
    """Headless chromium driven over its DevTools pipe (`--remote-debugging-pipe`: JSON
    messages on fds 3 and 4, no extra package). `text()` is what the page shows, shadow DOM
    included (TensorBoard's Polymer dashboards live there; `--dump-dom` does not see them)."""

    def __init__(self, profile: Path) -> None:
        self._to_r, self._to_w = os.pipe()
        self._from_r, self._from_w = os.pipe()

        def fds():  # the child's fd 3 reads our commands, its fd 4 writes the replies
            a, b = os.dup(self._to_r), os.dup(self._from_w)  # (either may be 3 or 4 now)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--remote-debugging-pipe", f"--user-data-dir={profile}", "--window-size=1280,900",
                "about:blank",
            ],
            preexec_fn=fds, pass_fds=(3, 4),  # kept open: fds are closed after preexec_fn
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(self._to_r)
        os.close(self._from_w)
        self._buf = b""
        self._id = 0
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]

    def call(self, method: str, session: str | None = None, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + 60
        while time.time() < deadline:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    assert "error" not in reply, reply
                    return reply["result"]
            chunk = os.read(self._from_r, 1 << 20)
            assert chunk, "chromium closed its DevTools pipe"
            self._buf += chunk
        raise AssertionError(f"no answer to {method}")

    def open(self, url: str) -> None:
        self.call("Page.navigate", self.session, url=url)

    def text(self) -> str:
        js = (
            "(() => { const out = []; const walk = (n) => { if (n.shadowRoot) walk(n.shadowRoot);"
            " for (const c of n.childNodes) { if (c.nodeType === 3) out.push(c.textContent);"
            " else if (c.nodeName !== 'SCRIPT' && c.nodeName !== 'STYLE') walk(c); } };"
            " walk(document); return out.join(' ').replace(/\\s+/g, ' '); })()"
        )
        return self.call("Runtime.evaluate", self.session, expression=js)["result"]["value"]

    def wait_for_text(self, *needles: str, timeout: float = 90) -> str:
        deadline = time.time() + timeout
        while True:
            text = self.text()
            if all(n in text for n in needles) or time.time() > deadline:
                return text
            time.sleep(1)

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", self.session, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self._to_w)
        os.close(self._from_r)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (`make e2e` installs it)")
def test_board_in_a_browser_shows_the_cards_the_train_vs_val_chart_and_the_hparams_table(
    board, tmp_path
):
    """What a person opens TensorBoard for, as the page shows it (screenshots kept in
    tmp_path for a look): a card per scalar, the train-vs-val overlay, the HParams table."""
    _, base, _ = board
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(base + "/#timeseries")
        cards = browser.wait_for_text("loss", "/train", "/val", "acc", "2 cards")
        browser.screenshot(tmp_path / "timeseries.png")
        assert "loss" in cards and "/train" in cards and "/val" in cards, cards[:2000]
        assert cards.count("2 cards") >= 2, "loss and acc: a train and a val card each"

        browser.open(base + "/#custom_scalars")
        chart = browser.wait_for_text("train vs val", "Matches (2)")
        browser.screenshot(tmp_path / "custom_scalars.png")
        assert "train vs val" in chart and "loss" in chart, chart[:2000]
        assert "Matches (2)" in chart, "the loss chart overlays two series: train and val"
        assert "loss/train (run1)" in chart and "loss/val (run1)" in chart, chart[-3000:]

        browser.open(base + "/#hparams")
        table = browser.wait_for_text("Table View", "Trial ID", "batch_size", "opt.lr")
        browser.screenshot(tmp_path / "hparams.png")
        for column in ("Trial ID", "run1", "batch_size", "epochs", "opt.lr", "best_val_loss"):
            assert column in table, f"no {column} in the HParams dashboard: {table[:2000]}"
    finally:
        browser.close()


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
