"""`dlx board`: TensorBoard over a folder of runs, reachable from this machine only.

It binds 127.0.0.1 (never 0.0.0.0: a run's logs are nobody else's business); to look from
another machine, forward the port (`ssh -L 6006:127.0.0.1:6006 host`). Every run folder
under LOGDIR is one TensorBoard run, so a sweep's trials sit side by side in the HParams
dashboard.
"""

from __future__ import annotations

import errno
import signal
import socket
import time
from pathlib import Path

from dlx.errors import UserError

HOST = "127.0.0.1"


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise UserError(f"Invalid `--port` {port}. Allowed: 1..65535.", key="--port")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"Port {port} on {HOST} is already in use (another TensorBoard?). "
                    "Pick another one with --port N.",
                    key="--port",
                ) from None
            raise UserError(
                f"Cannot listen on {HOST}:{port}: {exc.strerror}.", key="--port"
            ) from None


def start(logdir: str | Path, port: int = 6006) -> str:
    """Start TensorBoard in a background thread of this process; returns its URL."""
    path = Path(logdir)
    if not path.is_dir():
        raise UserError(
            f"No folder {path.resolve()}: nothing to show yet. Train a run first "
            "(`dlx train`), or name the folder that holds your runs: dlx board DIR."
        )
    _check_port(port)
    from tensorboard import program

    tb = program.TensorBoard()
    tb.configure(argv=[None, "--logdir", str(path.resolve()), "--host", HOST, "--port", str(port)])
    try:
        return tb.launch()
    except program.TensorBoardServerException as exc:
        raise UserError(f"TensorBoard could not start: {exc.msg}", key="--port") from None


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(logdir: str | Path, port: int = 6006) -> None:
    """Run TensorBoard on 127.0.0.1 until Ctrl-C."""
    from dlx.tracking.console import console

    url = start(logdir, port)
    console.print(f"TensorBoard for {Path(logdir).resolve()} at [bold]{url}[/]  (Ctrl-C stops it)")
    for sig in (signal.SIGINT, signal.SIGTERM):  # even where the shell started us ignoring SIGINT
        signal.signal(sig, _stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("TensorBoard stopped.")
