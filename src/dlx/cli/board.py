"""`dlx board`: TensorBoard over a folder of runs, reachable from this machine only (default).

It binds 127.0.0.1 by default (a run's logs are nobody else's business); to look from another
machine, forward the port (`ssh -L 6006:127.0.0.1:6006 host`), or bind another address with
`--host ADDR` (a warning says who can then read the runs: TensorBoard has no login).

On a loopback address, requests whose `Host:` header is not a local name (localhost,
127.0.0.1, ::1, with any port) are refused (403): a web page on another site cannot read the
runs through DNS rebinding (its own name resolved to 127.0.0.1). TensorBoard's own server is
kept; its WSGI app is wrapped by `HostCheck`.

Every run folder under LOGDIR is one TensorBoard run, so a sweep's trials sit side by side in
the HParams dashboard.
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import time
from pathlib import Path
from typing import Any

from dlx.errors import UserError

HOST = "127.0.0.1"
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """`Host:` without its port: `localhost:6006` -> localhost, `[::1]:6006` -> [::1]."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostCheck:
    """WSGI middleware: answer only requests addressed to a local name (DNS rebinding)."""

    def __init__(self, app: Any, allowed: tuple[str, ...] = LOCAL_NAMES) -> None:
        self.app, self.allowed = app, allowed

    def __call__(self, environ: dict[str, Any], start_response: Any):
        name = _host_name(environ.get("HTTP_HOST", ""))
        if name in self.allowed or (name.startswith("127.") and is_loopback(name)):
            return self.app(environ, start_response)
        body = b"dlx board answers requests to localhost only (Host header refused)\n"
        start_response(
            "403 Forbidden",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        )
        return [body]


def _family(host: str) -> int:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


def _check_port(port: int, host: str = HOST) -> None:
    if not 0 < port < 65536:
        raise UserError(f"Invalid `--port` {port}. Allowed: 1..65535.", key="--port")
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"Port {port} on {host} is already in use (another TensorBoard?). "
                    "Pick another one with --port N.",
                    key="--port",
                ) from None
            key = "--host" if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) else "--port"
            raise UserError(
                f"Cannot listen on {host}:{port}: {exc.strerror}. `--host` takes an address of "
                "this machine (127.0.0.1, the default, or e.g. 0.0.0.0 for every interface).",
                key=key,
            ) from None


def _server_class(loopback: bool):
    from tensorboard import program

    def make(app, flags):
        return program.WerkzeugServer(HostCheck(app) if loopback else app, flags)

    return make


def start(logdir: str | Path, port: int = 6006, host: str = HOST) -> str:
    """Start TensorBoard in a background thread of this process; returns its URL."""
    path = Path(logdir)
    if not path.is_dir():
        raise UserError(
            f"No folder {path.resolve()}: nothing to show yet. Train a run first "
            "(`dlx train`), or name the folder that holds your runs: dlx board DIR."
        )
    try:
        host = str(ipaddress.ip_address(host.strip("[]"))) if host != "localhost" else HOST
    except ValueError:
        raise UserError(
            f"`--host {host}`: not an IP address. Allowed: an address of this machine, e.g. "
            "127.0.0.1 (the default, this machine only) or 0.0.0.0 (every interface).",
            key="--host",
        ) from None
    _check_port(port, host)
    from tensorboard import program

    tb = program.TensorBoard(server_class=_server_class(is_loopback(host)))
    tb.configure(argv=[None, "--logdir", str(path.resolve()), "--host", host, "--port", str(port)])
    try:
        return tb.launch()
    except program.TensorBoardServerException as exc:
        raise UserError(f"TensorBoard could not start: {exc.msg}", key="--port") from None


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(logdir: str | Path, port: int = 6006, host: str = HOST) -> None:
    """Run TensorBoard until Ctrl-C."""
    from dlx.record.text import safe_text
    from dlx.tracking.console import console

    url = start(logdir, port, host)
    if not is_loopback(host.strip("[]")):
        console.print(
            f"[yellow]warning:[/] listening on {safe_text(host)}: anyone who can reach this "
            "machine on that address can read these runs (TensorBoard has no login). On a "
            "shared network prefer the default and `ssh -L 6006:127.0.0.1:6006 HOST`."
        )
    where = safe_text(Path(logdir).resolve())
    console.print(f"TensorBoard for {where} at [bold]{safe_text(url)}[/]  (Ctrl-C stops it)")
    for sig in (signal.SIGINT, signal.SIGTERM):  # even where the shell started us ignoring SIGINT
        signal.signal(sig, _stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("TensorBoard stopped.")
