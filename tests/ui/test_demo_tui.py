"""`taskwatch demo` with its UI, in a real pseudo-terminal, as a person runs it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from tests.cluster import REPO_ROOT, child_env, descendants, pid_alive

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-B]|\x1b.")


class Terminal:
    """A child process on a pty of a given size; its output kept as plain text."""

    def __init__(self, argv: list[str], cols: int = 80, rows: int = 24) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = child_env({"TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)})
        env = {k: v for k, v in env.items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO_ROOT,
            start_new_session=True,
        )
        os.close(slave)
        self.raw = b""

    def read(self, timeout: float = 0.2) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], timeout)
            if not ready:
                return
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.raw += chunk

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", errors="replace"))

    def wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{pattern!r} not on screen; last output: {self.text[-500:]!r}")
            self.read()

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read(0.1)
        return self.process.wait(timeout=1)


@pytest.mark.parametrize("quit_key", ["q", "\x03"], ids=["q", "ctrl-c"])
def test_demo_opens_the_ui_on_its_workers_and_cleans_up(quit_key):
    term = Terminal([sys.executable, "-m", "taskwatch", "demo"])
    try:
        term.wait_for(r"2/2 workers", timeout=60)
        family = descendants(term.process.pid)
        assert len(family) >= 9
        term.send(quit_key)
        assert term.wait_exit(timeout=20) == 0
        deadline = time.monotonic() + 5
        while [p for p in family if pid_alive(p)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in family if pid_alive(p)] == []
    finally:
        if term.process.poll() is None:
            os.killpg(term.process.pid, 9)
        os.close(term.master)
