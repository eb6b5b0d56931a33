"""Shell completion in real shells: bash, zsh and fish run interactively on a pseudo-terminal
with dlx's completion script loaded, TAB is pressed, and the line is read back from the
screen (pyte) as a person would see it: what was inserted, and whether a space followed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

COLS, ROWS = 100, 30
SHELLS = ("bash", "zsh", "fish")


class Shell:
    """An interactive shell on a pty, its prompt `$ `, with dlx's completion script loaded
    and a `dlx` on PATH that runs this checkout's code."""

    def __init__(self, name: str, home, rc: str | None = None):
        self.name = name
        env = {**os.environ, "HOME": str(home), "TERM": "xterm", "PS1": "$ "}
        env["PATH"] = f"{home / 'bin'}:{env['PATH']}"
        for var in ("COLUMNS", "LINES", "PROMPT_COMMAND", "ZDOTDIR", "XDG_CONFIG_HOME"):
            env.pop(var, None)
        (home / "bin").mkdir(exist_ok=True)
        wrapper = home / "bin" / "dlx"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dlx "$@"\n')
        wrapper.chmod(0o755)
        script = subprocess.run(
            ["dlx"], env={**env, "_DLX_COMPLETE": f"source_{name}"},
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        if name == "bash":
            (home / ".bashrc").write_text(f"PS1='$ '\n{script}\n")
            argv = ["bash", "--rcfile", str(home / ".bashrc"), "-i"]
        elif name == "zsh":
            rc = rc or f"PS1='$ '\nautoload -Uz compinit; compinit -u\n{script}\n"
            (home / ".zshrc").write_text(rc)
            argv = ["zsh", "-i"]
        else:
            conf = home / ".config" / "fish"
            (conf / "completions").mkdir(parents=True)
            (conf / "completions" / "dlx.fish").write_text(script + "\n")
            (conf / "config.fish").write_text(
                "function fish_prompt; echo -n '$ '; end\nset -g fish_greeting\n"
            )
            argv = ["fish", "-i"]
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(
            argv[0], argv[1:], env=env, cwd=str(home), dimensions=(ROWS, COLS)
        )
        self.settle(lambda: self.line() == "$ ", 30)

    def _pump(self, wait: float) -> bool:
        try:
            self.stream.feed(self.child.read_nonblocking(65536, timeout=wait))
            return True
        except pexpect.TIMEOUT:
            return False

    def settle(self, done=lambda: True, timeout: float = 30) -> None:
        """Read until `done()` holds and the screen has been still for a moment."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pump(0.8) and done():
                return
        raise AssertionError(f"{self.name}: screen never settled:\n{self.text()}")

    def type(self, text: str) -> None:
        self.child.send(text)
        self.settle(lambda: self.line().endswith(text))

    def tab(self, times: int = 1) -> None:
        """TAB, then wait for the screen to change (dlx answers) and to be still again."""
        before = self.text()
        self.child.send("\t" * times)
        deadline = time.monotonic() + 20
        while self.text() == before and time.monotonic() < deadline:
            self._pump(0.5)
        self.settle()

    def line(self) -> str:
        """The cursor's line up to the cursor: what is typed, and any space after it."""
        return self.screen.display[self.screen.cursor.y][: self.screen.cursor.x]

    def text(self) -> str:
        return "\n".join(row.rstrip() for row in self.screen.display if row.strip())

    def close(self) -> None:
        self.child.terminate(force=True)


@pytest.fixture(params=SHELLS)
def shell(request, tmp_path):
    if shutil.which(request.param) is None:
        pytest.skip(f"no {request.param} here (CI installs bash, zsh and fish from Debian)")
    sh = Shell(request.param, tmp_path)
    yield sh
    sh.close()


def test_a_key_completes_with_its_equals_sign_and_no_space(shell):
    shell.type("dlx train opt.l")
    shell.tab()
    assert shell.line() == "$ dlx train opt.lr=", shell.text()  # the value is typed on
    shell.type("0.01 early_st")
    shell.tab()
    assert shell.line() == "$ dlx train opt.lr=0.01 early_stopping.", shell.text()


def test_a_groups_options_are_offered_after_its_equals_sign(shell):
    shell.type("dlx train model=")
    shell.tab(2 if shell.name == "bash" else 1)  # bash lists them on a second TAB
    screen = shell.text()
    assert "==" not in screen, screen
    assert re.search(r"(^|\s)(model=)?cnn\s", screen) and re.search(r"(model=)?mlp\b", screen)
    assert shell.line() == "$ dlx train model=", screen


def test_a_value_completes_after_the_equals_sign_and_then_a_space(shell):
    shell.type("dlx train opt=sgd model=ml")
    shell.tab()
    assert shell.line() == "$ dlx train opt=sgd model=mlp ", shell.text()
    shell.type("ep")
    shell.tab()
    assert shell.line() == "$ dlx train opt=sgd model=mlp epochs=", shell.text()


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh here")
def test_install_completion_in_zsh_then_tab(tmp_path):
    """`dlx --install-completion` as a zsh user runs it: the script goes to ~/.zfunc/_dlx,
    which zsh autoloads on the first TAB (and the script then completes at once)."""
    sh = Shell("zsh", tmp_path)
    sh.type("dlx --install-completion")
    sh.child.send("\r")
    sh.settle(lambda: "installed" in sh.text() and sh.line() == "$ ")
    sh.close()
    assert "compadd -S ''" in (tmp_path / ".zfunc" / "_dlx").read_text()
    assert "fpath+=~/.zfunc" in (tmp_path / ".zshrc").read_text()
    # a new zsh with only what the install set up: no script sourced by hand
    rc = "PS1='$ '\nfpath+=~/.zfunc; autoload -Uz compinit; compinit -u\n"
    fresh = Shell("zsh", tmp_path, rc=rc)
    fresh.type("dlx train opt.l")
    fresh.tab()
    assert fresh.line() == "$ dlx train opt.lr=", fresh.text()
    fresh.close()
